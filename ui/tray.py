"""The tray icon: the live state at a glance and the common actions, menu rebuilt on show."""

from __future__ import annotations

from PySide6.QtGui import QAction, QIcon
from PySide6.QtWidgets import QMenu, QSystemTrayIcon

from avatar_app.pipeline.session import State
from ui.main_window import MainWindow


class Tray(QSystemTrayIcon):
    def __init__(self, window: MainWindow, icon: QIcon, idle_icon: QIcon) -> None:
        super().__init__(idle_icon)
        self.window = window
        self._icons = (idle_icon, icon)
        self.menu = QMenu()
        self.menu.aboutToShow.connect(self.rebuild)
        self.setContextMenu(self.menu)
        self.setToolTip("avatar-app: off air")
        self.activated.connect(self._on_activated)
        window.live_changed.connect(self._on_live_changed)
        window.hidden_to_tray.connect(self._on_hidden)
        self.rebuild()

    def rebuild(self) -> None:
        """The menu as things are now (called each time it opens)."""
        self.menu.clear()
        window = self.window
        session = window.session
        state = "Off air" if session is None else _state_text(session.state, window.preview_only)
        title = QAction(f"avatar-app: {state}", self.menu)
        title.setEnabled(False)
        self.menu.addAction(title)
        self.menu.addSeparator()
        self._add("Stop" if session is not None else "Go live", window.toggle_live)
        talk = window.talk
        ptt_on = window.settings.push_to_talk == "key"
        key = window.settings.hotkey
        ptt = self._add(f"Push-to-talk ({key})", lambda: talk.set_push_to_talk(not ptt_on))
        ptt.setCheckable(True)
        ptt.setChecked(ptt_on)
        muted = talk.mute.isChecked()
        mute = self._add("Mute the mouth", lambda: talk.mute.setChecked(not muted))
        mute.setCheckable(True)
        mute.setChecked(muted)
        recording = window.recording_started is not None
        self._add(
            "Stop recording" if recording else "Record",
            window.toggle_recording,
            session is not None,
        )
        self.menu.addSeparator()
        self._add("Show window", self.show_window)
        self._add("Quit", window.quit)

    def _add(self, text: str, slot: object, enabled: bool = True) -> QAction:
        action = QAction(text, self.menu)
        action.triggered.connect(slot)
        action.setEnabled(enabled)
        self.menu.addAction(action)
        return action

    def show_window(self) -> None:
        self.window.showNormal()
        self.window.raise_()
        self.window.activateWindow()

    def _on_activated(self, reason: QSystemTrayIcon.ActivationReason) -> None:
        if reason == QSystemTrayIcon.ActivationReason.Trigger:
            self.show_window()

    def _on_live_changed(self, live: bool) -> None:
        self.setIcon(self._icons[int(live)])
        self.setToolTip("avatar-app: live" if live else "avatar-app: off air")

    def _on_hidden(self) -> None:
        settings = self.window.settings
        if not settings.tray_notice_shown:
            self.showMessage(
                "avatar-app is still live",
                "The avatar keeps running here in the tray. Use the tray menu to stop or quit.",
            )
            settings.tray_notice_shown = True


def _state_text(state: State, preview_only: bool) -> str:
    if state is State.LIVE:
        return "preview only" if preview_only else "live"
    return state.value
