"""When the mouth may move: voice activation with a sensitivity, push-to-talk on a key the user
sets (a global hook where the desktop allows one, else while the window has focus), any
sound, and a mute. ``changed`` fires whenever the gate's inputs change."""

from __future__ import annotations

from typing import Any

from PySide6.QtCore import Qt, Signal
from PySide6.QtGui import QKeyEvent, QKeySequence
from PySide6.QtWidgets import (
    QButtonGroup,
    QCheckBox,
    QGroupBox,
    QHBoxLayout,
    QKeySequenceEdit,
    QLabel,
    QRadioButton,
    QSlider,
    QVBoxLayout,
)

from avatar_app.app_settings import AppSettings


class TalkControls(QGroupBox):
    changed = Signal()  # the mode, sensitivity, key, mute or key-held state changed
    _hotkey_signal = Signal(bool)  # from the global hook's thread

    def __init__(self, settings: AppSettings) -> None:
        super().__init__("Talking")
        self.settings = settings
        self.key_held = False
        self.listening = False  # between start_hotkey and stop_hotkey (while live)
        self.hotkey: Any = None  # the global push-to-talk listener, while one runs
        self._hotkey_signal.connect(self.set_key_held, Qt.ConnectionType.QueuedConnection)
        self.voice_radio = QRadioButton("Voice activation")
        self.voice_radio.setToolTip("The mouth moves when you speak; breath and noise do not")
        self.key_radio = QRadioButton("Push-to-talk")
        self.key_radio.setToolTip("The mouth moves only while the key is held")
        self.always_radio = QRadioButton("Any sound")
        self.always_radio.setToolTip("Every sound moves the mouth (no voice detection)")
        group = QButtonGroup(self)
        for button, mode in (
            (self.voice_radio, "vad"),
            (self.key_radio, "key"),
            (self.always_radio, "always"),
        ):
            group.addButton(button)
            button.setChecked(settings.push_to_talk == mode)
            button.toggled.connect(self._on_mode)
        self.sensitivity = QSlider(Qt.Orientation.Horizontal)
        self.sensitivity.setRange(0, 3)
        self.sensitivity.setValue(3 - settings.vad_aggressiveness)
        self.sensitivity.setToolTip("Voice activation sensitivity: right lets quieter speech in")
        self.sensitivity.valueChanged.connect(self._on_sensitivity)
        self.hotkey_edit = QKeySequenceEdit(QKeySequence(settings.hotkey))
        self.hotkey_edit.setMaximumSequenceLength(1)
        self.hotkey_edit.setToolTip("The key to hold while talking")
        self.hotkey_edit.editingFinished.connect(self._on_hotkey_edited)
        self.scope = QLabel(wordWrap=True)
        self.scope.setStyleSheet("color: #666;")
        self.mute = QCheckBox("Mute the mouth")
        self.mute.setToolTip("Freeze the mouth shut whatever the microphone hears")
        self.mute.toggled.connect(lambda _: self.changed.emit())
        layout = QVBoxLayout(self)
        layout.addWidget(self.voice_radio)
        layout.addLayout(_row("Sensitivity", self.sensitivity))
        layout.addWidget(self.key_radio)
        layout.addLayout(_row("Key", self.hotkey_edit))
        layout.addWidget(self.scope)
        layout.addWidget(self.always_radio)
        layout.addWidget(self.mute)

    def gate(self) -> tuple[int | None, bool]:
        """(voice detection strictness, or None for any sound; whether the mouth may open)."""
        mode = self.settings.push_to_talk
        detection = None if mode == "always" else self.settings.vad_aggressiveness
        is_open = not self.mute.isChecked() and (mode != "key" or self.key_held)
        return detection, is_open

    def set_key_held(self, held: bool) -> None:
        """Push-to-talk key down or up (from the global hook or the focused window)."""
        self.key_held = held
        self.changed.emit()

    def set_push_to_talk(self, on: bool) -> None:
        """Push-to-talk on the hotkey (on), or back to voice activation (off)."""
        (self.key_radio if on else self.voice_radio).setChecked(True)

    def start_hotkey(self) -> None:
        """While live: listen for the key everywhere if this desktop allows it, and say which
        is in effect. Changes of mode or key restart it until ``stop_hotkey``."""
        self._stop_listener()
        self.listening = True
        if self.settings.push_to_talk != "key":
            self.scope.setText("")
            return
        try:
            from avatar_app.hotkeys import GlobalPushToTalk, parse_hotkey

            listener = GlobalPushToTalk(parse_hotkey(self.settings.hotkey), self._from_hook)
            listener.start()
        except Exception as exc:  # no global hook here: the focused window still works
            self.scope.setText(f"Works while this window has focus ({exc}).")
            return
        self.hotkey = listener
        self.scope.setText("Works everywhere, also while the call app has focus.")

    def stop_hotkey(self) -> None:
        self.listening = False
        self._stop_listener()

    def _stop_listener(self) -> None:
        listener, self.hotkey = self.hotkey, None
        if listener is not None:
            listener.stop()
        if self.key_held:
            self.set_key_held(False)

    def window_key(self, event: QKeyEvent, pressed: bool) -> bool:
        """The window-focused fallback: True when ``event`` was the push-to-talk key."""
        if self.hotkey is not None or self.settings.push_to_talk != "key":
            return False
        if event.isAutoRepeat():
            return False
        typed = QKeySequence(event.keyCombination()).toString()
        if typed != QKeySequence(self.settings.hotkey).toString():
            return False
        self.set_key_held(pressed)
        return True

    def window_left(self) -> None:
        """A key released while another window has focus never reaches the window."""
        if self.hotkey is None and self.key_held:
            self.set_key_held(False)

    def _from_hook(self, held: bool) -> None:
        self._hotkey_signal.emit(held)

    def _on_mode(self) -> None:
        mode = "key" if self.key_radio.isChecked() else "vad"
        if self.always_radio.isChecked():
            mode = "always"
        if mode == self.settings.push_to_talk:
            return
        self.settings.push_to_talk = mode  # type: ignore[assignment]
        if self.listening:
            self.start_hotkey()
        self.changed.emit()

    def _on_sensitivity(self, value: int) -> None:
        self.settings.vad_aggressiveness = 3 - value
        self.changed.emit()

    def _on_hotkey_edited(self) -> None:
        sequence = self.hotkey_edit.keySequence().toString()
        if sequence and sequence != self.settings.hotkey:
            self.settings.hotkey = sequence
            if self.listening:
                self.start_hotkey()
            self.changed.emit()


def _row(label: str, widget: Any) -> QHBoxLayout:
    row = QHBoxLayout()
    row.addWidget(QLabel(label))
    row.addWidget(widget)
    return row
