"""The desktop app's window: pick a portrait, go live, talk, record.

Everything slow (checking a photo, starting or stopping the session, probing devices, the
doctor) runs on a worker thread; the session reports through ``SessionBridge`` signals.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path
from typing import Any

from PySide6.QtCore import QEvent, Qt, QTimer, Signal
from PySide6.QtGui import (
    QAction,
    QCloseEvent,
    QDragEnterEvent,
    QDropEvent,
    QIcon,
    QKeyEvent,
    QKeySequence,
    QPainter,
    QPen,
    QPixmap,
    QResizeEvent,
)
from PySide6.QtWidgets import (
    QApplication,
    QCheckBox,
    QComboBox,
    QFormLayout,
    QFrame,
    QGroupBox,
    QHBoxLayout,
    QLabel,
    QMainWindow,
    QProgressBar,
    QPushButton,
    QScrollArea,
    QSizePolicy,
    QSlider,
    QSpinBox,
    QVBoxLayout,
    QWidget,
)

from avatar_app.app_settings import AppSettings, save_settings
from avatar_app.pipeline.session import (
    CommandFinished,
    LiveSession,
    SessionEvent,
    State,
    StateChanged,
    StatsUpdated,
)
from avatar_app.portrait_check import CheckedPortrait, check_portrait
from engines.errors import AvatarError, VirtualCameraUnavailable
from ui.bridge import FrameSlot, SessionBridge, pixmap_of
from ui.gallery import PortraitGallery, is_image
from ui.open_folder import open_folder
from ui.probes import probe_devices, virtual_camera_advice
from ui.talk_controls import TalkControls
from ui.worker import run_async

log = logging.getLogger(__name__)

SIZES = ((1280, 720), (1920, 1080), (960, 540), (640, 480), (512, 512))
MODES = (("Voice", "audio"), ("Webcam", "webcam"), ("Voice + webcam", "hybrid"))
METER_FLOOR_DB = -60.0
MISSING = " (missing)"  # after a remembered device that is not connected now


class MainWindow(QMainWindow):
    """``live_changed(bool)`` tells the tray when the camera goes live or stops."""

    live_changed = Signal(bool)
    hidden_to_tray = Signal()
    _command_done = Signal(object, object)  # (future, report) from a session thread

    def __init__(self, settings: AppSettings, icon: QIcon) -> None:
        super().__init__()
        self.settings = settings
        self.session: LiveSession | None = None
        self.preview_only = False
        self.checked: CheckedPortrait | None = None
        self.recording_started: float | None = None
        self.recording_path: Path | None = None
        self.quitting = False
        self._shown_pixmap: QPixmap | None = None  # the preview at full size
        self.camera_backend: str | None = None  # a pyvirtualcam backend; None: this OS's own
        self.audio_file: Path | None = None  # played in place of the microphone (demos, tests)
        self._slot = FrameSlot()
        self._slot.ready.connect(self._show_frame, Qt.ConnectionType.QueuedConnection)
        self._bridge = SessionBridge(self)
        self._bridge.received.connect(self._on_event, Qt.ConnectionType.QueuedConnection)
        self._command_done.connect(
            lambda future, report: report(future), Qt.ConnectionType.QueuedConnection
        )
        self.setWindowTitle("avatar-app")
        self.setWindowIcon(icon)
        self.setAcceptDrops(True)
        self.setMinimumSize(1024, 700)
        self._build()
        self._fill_devices()
        self.portraits.load()
        self._timer = QTimer(self)
        self._timer.timeout.connect(self._tick)
        self._timer.start(50)

    # -- building ---------------------------------------------------------------------------

    def _build(self) -> None:
        central = QWidget()
        row = QHBoxLayout(central)
        self.portraits = PortraitGallery(self.settings, self._size)
        self.portraits.picked.connect(self._on_portrait_picked)
        self.portraits.said.connect(self.portrait_note_text)
        self.gallery = self.portraits.list
        row.addWidget(self.portraits)
        row.addLayout(self._build_centre(), 1)
        row.addWidget(self._build_controls())
        self.setCentralWidget(central)
        self._build_menu()
        self.statusBar().showMessage("Pick a portrait, then press Go live.")

    def _build_centre(self) -> QVBoxLayout:
        column = QVBoxLayout()
        self.preview = QLabel(alignment=Qt.AlignmentFlag.AlignCenter)
        self.preview.setMinimumSize(384, 216)
        # Ignored: the pixmap never dictates the layout (it is scaled to the label instead).
        self.preview.setSizePolicy(QSizePolicy.Policy.Ignored, QSizePolicy.Policy.Ignored)
        self.preview.setStyleSheet("background: #1d2230; border-radius: 8px;")
        self.preview.setAccessibleName("Camera preview")
        self.on_air = QLabel()
        self.on_air.setAccessibleName("Camera state")
        self.mouth_state = QLabel()
        self.mouth_state.setToolTip("Whether the mouth follows your microphone right now")
        self.portrait_note = QLabel(wordWrap=True)
        badges = QHBoxLayout()
        badges.addWidget(self.on_air)
        badges.addWidget(self.mouth_state)
        badges.addStretch(1)
        column.addLayout(badges)
        column.addWidget(self.preview, 1)
        column.addWidget(self.portrait_note)
        column.addWidget(self._build_problem_panel())
        self._show_on_air()
        return column

    def _build_problem_panel(self) -> QFrame:
        self.problem = QFrame()
        self.problem.setFrameShape(QFrame.Shape.StyledPanel)
        self.problem.setStyleSheet(
            "QFrame { background: #fff4e5; border: 1px solid #f0b46c; border-radius: 6px; }"
            "QLabel { color: #4a3000; border: none; }"
        )
        layout = QVBoxLayout(self.problem)
        self.problem_title = QLabel(wordWrap=True)
        self.problem_title.setStyleSheet("font-weight: bold;")
        self.problem_text = QLabel(wordWrap=True)
        self.problem_text.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        buttons = QHBoxLayout()
        self.preview_only_button = QPushButton("Preview only")
        self.preview_only_button.setToolTip("Run the avatar in this window without a camera")
        self.preview_only_button.clicked.connect(lambda: self.go_live(preview_only=True))
        self.check_again_button = QPushButton("Check again")
        self.check_again_button.setToolTip("Re-run the checks after fixing the camera")
        self.check_again_button.clicked.connect(self._check_again)
        buttons.addWidget(self.preview_only_button)
        buttons.addWidget(self.check_again_button)
        buttons.addStretch(1)
        layout.addWidget(self.problem_title)
        layout.addWidget(self.problem_text)
        layout.addLayout(buttons)
        self.problem.hide()
        return self.problem

    def _build_controls(self) -> QWidget:
        panel = QWidget()
        layout = QVBoxLayout(panel)
        self.live_button = QPushButton("Go live")
        self.live_button.setMinimumHeight(44)
        self.live_button.setStyleSheet("font-size: 16px; font-weight: bold;")
        self.live_button.setToolTip("Start or stop the virtual camera that call apps can pick")
        self.live_button.clicked.connect(self.toggle_live)
        layout.addWidget(self.live_button)
        layout.addWidget(self._build_inputs())
        self.talk = TalkControls(self.settings)
        self.talk.changed.connect(self._on_talk_changed)
        layout.addWidget(self.talk)
        layout.addWidget(self._build_output())
        layout.addWidget(self._build_voice())
        layout.addWidget(self._build_record())
        layout.addStretch(1)
        scroll = QScrollArea()
        scroll.setWidget(panel)
        scroll.setWidgetResizable(True)
        scroll.setFixedWidth(330)
        scroll.setFrameShape(QFrame.Shape.NoFrame)
        return scroll

    def _build_inputs(self) -> QGroupBox:
        box = QGroupBox("Inputs")
        form = QFormLayout(box)
        self.mic_combo = QComboBox()
        self.mic_combo.setToolTip("The microphone that moves the mouth")
        self.mic_combo.activated.connect(self._on_mic_chosen)
        self.level = QProgressBar()
        self.level.setRange(0, 100)
        self.level.setTextVisible(False)
        self.level.setMaximumHeight(10)
        self.level.setToolTip("Microphone level")
        self.webcam_combo = QComboBox()
        self.webcam_combo.setToolTip("A webcam whose head, eyes and brows the avatar follows")
        self.webcam_combo.activated.connect(self._on_webcam_chosen)
        self.mode_combo = QComboBox()
        for label, mode in MODES:
            self.mode_combo.addItem(label, mode)
        self.mode_combo.setToolTip(
            "Voice: the microphone moves the mouth, idle life the rest. Webcam: your face moves "
            "everything. Voice + webcam: the mouth from the voice, the rest from the webcam."
        )
        self.mode_combo.setCurrentIndex(max(0, self.mode_combo.findData(self.settings.mode)))
        self.mode_combo.activated.connect(self._on_mode_chosen)
        form.addRow("Microphone", self.mic_combo)
        form.addRow("", self.level)
        form.addRow("Webcam", self.webcam_combo)
        form.addRow("Driven by", self.mode_combo)
        return box

    def _build_output(self) -> QGroupBox:
        box = QGroupBox("Camera output")
        form = QFormLayout(box)
        self.engine_combo = QComboBox()
        self.engine_combo.setToolTip("The renderer; unavailable ones say why")
        self.engine_combo.activated.connect(self._on_engine_chosen)
        self.size_combo = QComboBox()
        for width, height in SIZES:
            self.size_combo.addItem(f"{width} x {height}", (width, height))
        current = (self.settings.width, self.settings.height)
        if self.size_combo.findData(current) < 0:
            self.size_combo.addItem(f"{current[0]} x {current[1]}", current)
        self.size_combo.setCurrentIndex(self.size_combo.findData(current))
        self.size_combo.setToolTip("The camera's picture size (call apps often use 1280 x 720)")
        self.size_combo.activated.connect(self._on_size_chosen)
        self.fps_spin = QSpinBox()
        self.fps_spin.setRange(10, 60)
        self.fps_spin.setValue(self.settings.fps)
        self.fps_spin.setSuffix(" fps")
        self.fps_spin.setToolTip("Frames per second; changes apply the next time you go live")
        self.fps_spin.valueChanged.connect(self._on_fps_changed)
        self.fit_combo = QComboBox()
        self.fit_combo.addItem("Fill (crop around the face)", "fill")
        self.fit_combo.addItem("Fit (whole photo)", "fit")
        self.fit_combo.setCurrentIndex(self.fit_combo.findData(self.settings.fit))
        self.fit_combo.activated.connect(self._on_fit_chosen)
        form.addRow("Engine", self.engine_combo)
        form.addRow("Size", self.size_combo)
        form.addRow("Rate", self.fps_spin)
        form.addRow("Framing", self.fit_combo)
        return box

    def _build_voice(self) -> QGroupBox:
        box = QGroupBox("Voice to the call")
        layout = QVBoxLayout(box)
        self.voice_sync = QCheckBox("Sync my voice")
        self.voice_sync.setToolTip(
            "Your voice reaches the call through a virtual microphone, delayed by exactly the "
            "picture's delay, so the other side hears it in step with the mouth. "
            "Pick 'Avatar Microphone' in the call app."
        )
        self.voice_sync.setChecked(self.settings.voice_out != "off")
        self.voice_sync.toggled.connect(self._on_voice_changed)
        self.voice_offset = QSlider(Qt.Orientation.Horizontal)
        self.voice_offset.setRange(-100, 100)
        self.voice_offset.setValue(self.settings.voice_offset_ms)
        self.voice_offset.setToolTip(
            "Extra voice delay in ms, for the call app's own video buffering (-100 to 100)"
        )
        self.voice_offset_label = QLabel()
        self.voice_offset.valueChanged.connect(self._on_voice_changed)
        self.voice_gated = QCheckBox("Push-to-talk and mute it too")
        self.voice_gated.setToolTip("Push-to-talk and mute silence the delayed voice as well")
        self.voice_gated.setChecked(self.settings.voice_follows_gate)
        self.voice_gated.toggled.connect(self._on_voice_changed)
        offset_row = QHBoxLayout()
        offset_row.addWidget(QLabel("Offset"))
        offset_row.addWidget(self.voice_offset)
        offset_row.addWidget(self.voice_offset_label)
        hint = QLabel("Then pick “Avatar Microphone” as the microphone in the call.", wordWrap=True)
        hint.setStyleSheet("color: #666;")
        layout.addWidget(self.voice_sync)
        layout.addWidget(hint)
        layout.addLayout(offset_row)
        layout.addWidget(self.voice_gated)
        self._show_voice_offset()
        return box

    def _on_voice_changed(self) -> None:
        self.settings.voice_out = "auto" if self.voice_sync.isChecked() else "off"
        self.settings.voice_offset_ms = self.voice_offset.value()
        self.settings.voice_follows_gate = self.voice_gated.isChecked()
        self._show_voice_offset()
        self._save()
        if self.session is not None:
            self._command(
                self.session.set_voice_out(
                    self.settings.voice_out,
                    self.settings.voice_offset_ms,
                    self.settings.voice_follows_gate,
                ),
                "Voice settings changed",
            )

    def _show_voice_offset(self) -> None:
        self.voice_offset_label.setText(f"{self.voice_offset.value():+d} ms")

    def _build_record(self) -> QGroupBox:
        box = QGroupBox("Recording")
        layout = QVBoxLayout(box)
        row = QHBoxLayout()
        self.record_button = QPushButton("Record")
        self.record_button.setToolTip("Record what the camera shows, with your sound, to MP4")
        self.record_button.setEnabled(False)
        self.record_button.clicked.connect(self.toggle_recording)
        self.record_time = QLabel("")
        row.addWidget(self.record_button)
        row.addWidget(self.record_time, 1)
        self.record_path = QLabel(wordWrap=True)
        self.record_path.setStyleSheet("color: #666;")
        self.open_folder = QPushButton("Open folder")
        self.open_folder.setToolTip("Show the recordings folder")
        self.open_folder.clicked.connect(self._open_recordings)
        layout.addLayout(row)
        layout.addWidget(self.record_path)
        layout.addWidget(self.open_folder)
        return box

    def _build_menu(self) -> None:
        file_menu = self.menuBar().addMenu("&File")
        add = QAction("&Add photo…", self)
        add.setShortcut(QKeySequence.StandardKey.Open)
        add.triggered.connect(self.portraits.add_from_dialog)
        quit_action = QAction("&Quit", self)
        quit_action.setShortcut(QKeySequence.StandardKey.Quit)
        quit_action.triggered.connect(self.quit)
        file_menu.addAction(add)
        file_menu.addAction(quit_action)
        help_menu = self.menuBar().addMenu("&Help")
        about = QAction("&About avatar-app", self)
        about.triggered.connect(self._about)
        logs = QAction("Open the &log folder", self)
        logs.triggered.connect(self._open_logs)
        help_menu.addAction(about)
        help_menu.addAction(logs)

    # -- portraits --------------------------------------------------------------------------

    def add_photo(self, path: Path) -> None:
        self.portraits.add_photo(path)

    def portrait_note_text(self, text: str) -> None:
        self.portrait_note.setText(text)

    def _on_portrait_picked(self, path: Path | None) -> None:
        self.settings.portrait = None if path is None else str(path)
        self._save()
        self._check_chosen_portrait()
        if self.session is not None:
            self._command(self.session.set_portrait(path), "Portrait changed")

    def _check_chosen_portrait(self) -> None:
        path = Path(self.settings.portrait) if self.settings.portrait else None
        run_async(
            lambda: check_portrait(path, self._size(), self.settings.fit),
            self._show_checked,
            lambda exc: self.portrait_note.setText(str(exc)),
            name="portrait-check",
        )

    def _show_checked(self, checked: CheckedPortrait) -> None:
        self.checked = checked
        self.portrait_note.setText(checked.note)
        if self.session is None:
            self._show_pixmap(_with_face_box(pixmap_of(checked.framed), checked.face_box))

    def dragEnterEvent(self, event: QDragEnterEvent) -> None:
        if any(is_image(url) for url in event.mimeData().urls()):
            event.acceptProposedAction()

    def dropEvent(self, event: QDropEvent) -> None:
        for url in event.mimeData().urls():
            if is_image(url):
                self.add_photo(Path(url.toLocalFile()))
        event.acceptProposedAction()

    # -- going live -------------------------------------------------------------------------

    def toggle_live(self) -> None:
        if self.session is None:
            self.go_live()
        else:
            self.stop_live()

    def go_live(self, preview_only: bool = False) -> None:
        """Start the session on a worker; the window follows its events."""
        if self.session is not None:
            return
        self.problem.hide()
        self.preview_only = preview_only
        settings = replace(
            self.settings.pipeline(virtual_camera="off" if preview_only else "auto"),
            microphone=self._present(self.mic_combo, self.settings.microphone, "microphone"),
            webcam=self._present(self.webcam_combo, self.settings.webcam, "webcam") or "off",
            virtual_camera_backend=self.camera_backend,
            audio_file=self.audio_file,
        )
        session = LiveSession(settings, sinks=[self._slot])
        self._bridge.attach(session)
        self.session = session
        self._apply_talk_gate()
        self.live_button.setEnabled(False)
        self.live_button.setText("Starting…")
        run_async(session.start, lambda _: self._started(), self._start_failed, "go-live")

    def _present(self, combo: QComboBox, device: str | None, kind: str) -> str | None:
        """``device`` if it is connected; else None (the default) and the window says so. The
        remembered choice is kept, so the device is used again once it is back."""
        index = combo.findData(device)
        missing = index >= 0 and combo.itemText(index).endswith(MISSING)
        if not missing:
            return device
        self.statusBar().showMessage(
            f"The {kind} {device!r} is not connected: using "
            f"{'the system default' if kind == 'microphone' else 'none'} until it is back.",
            15000,
        )
        return None

    def _started(self) -> None:
        if self.session is None:  # stopped (from the tray) while it was starting
            return
        self.live_button.setEnabled(True)
        self.live_button.setText("Stop")
        self.record_button.setEnabled(True)
        self.fps_spin.setEnabled(False)
        self.talk.start_hotkey()
        self._show_on_air()
        self.live_changed.emit(True)

    def _start_failed(self, exc: Exception) -> None:
        self._bridge.detach()
        self.session = None
        self.live_button.setEnabled(True)
        self.live_button.setText("Go live")
        self._show_on_air()
        if isinstance(exc, VirtualCameraUnavailable):
            self._show_camera_problem(str(exc))
        else:
            message = str(exc) if isinstance(exc, AvatarError) else f"{exc!r}; see the log."
            self._show_problem("Could not go live", message, camera=False)

    def stop_live(self, then: Callable[[], object] | None = None) -> None:
        session = self.session
        if session is None:
            if then:
                then()
            return
        self.live_button.setEnabled(False)
        self.live_button.setText("Stopping…")
        self.talk.stop_hotkey()

        def stopped(_: object) -> None:
            self._bridge.detach()
            self.session = None
            self._recording_ended()
            self.live_button.setEnabled(True)
            self.live_button.setText("Go live")
            self.record_button.setEnabled(False)
            self.fps_spin.setEnabled(True)
            self._show_on_air()
            if self.checked is not None:
                self._show_pixmap(pixmap_of(self.checked.framed))
            self.statusBar().showMessage("Off air.")
            self.live_changed.emit(False)
            if then:
                then()

        run_async(session.stop, stopped, lambda exc: stopped(None), "stop-live")

    def _show_camera_problem(self, message: str) -> None:
        self._show_problem("The virtual camera could not start", message, camera=True)
        run_async(virtual_camera_advice, self._show_advice, lambda exc: None, "doctor")

    def _show_advice(self, advice: str) -> None:
        if advice and self.problem.isVisible():
            self.problem_text.setText(advice)

    def _show_problem(self, title: str, text: str, camera: bool) -> None:
        self.problem_title.setText(title)
        self.problem_text.setText(text)
        self.preview_only_button.setVisible(camera)
        self.check_again_button.setVisible(camera)
        self.problem.show()

    def _check_again(self) -> None:
        self.problem_text.setText("Checking…")
        run_async(virtual_camera_advice, self._checked_again, lambda exc: None, "doctor")

    def _checked_again(self, advice: str) -> None:
        if advice:
            self.problem_text.setText(advice)
        else:
            self.problem.hide()
            self.go_live()

    # -- session events ---------------------------------------------------------------------

    def _on_event(self, event: SessionEvent) -> None:
        if isinstance(event, StateChanged):
            self._show_on_air()
            if event.state is State.DEGRADED:
                self.statusBar().showMessage(f"Attention: {event.reason}", 10000)
        elif isinstance(event, StatsUpdated):
            stats = event.stats
            latency = "-" if stats.latency_ms_p95 is None else f"{stats.latency_ms_p95:.0f} ms"
            self.statusBar().showMessage(
                f"{stats.fps:.1f} fps · mic → frame {latency} (p95) · CPU "
                f"{stats.cpu_percent_of_all_cores:.0f}% · dropped {stats.dropped}"
            )
            if stats.recording_error:
                self._recording_ended(f"Recording stopped: {stats.recording_error}")
        elif isinstance(event, CommandFinished) and event.error:
            self.statusBar().showMessage(event.error, 10000)
            if event.command == "portrait":
                self.portrait_note.setText(event.error)

    def _show_frame(self) -> None:
        rgb = self._slot.take()
        if rgb is not None and self.session is not None:
            self._show_pixmap(pixmap_of(rgb))

    def _show_pixmap(self, pixmap: QPixmap) -> None:
        self._shown_pixmap = pixmap
        self.preview.setPixmap(
            pixmap.scaled(
                self.preview.size(),
                Qt.AspectRatioMode.KeepAspectRatio,
                Qt.TransformationMode.SmoothTransformation,
            )
        )

    def resizeEvent(self, event: QResizeEvent) -> None:
        super().resizeEvent(event)
        if self._shown_pixmap is not None:  # the preview's size changed: scale it again
            self._show_pixmap(self._shown_pixmap)

    def _show_on_air(self) -> None:
        session = self.session
        if session is None:
            text, colour = "OFF AIR", "#5b6478"
        elif session.state in (State.IDLE, State.STARTING):
            text, colour = "STARTING", "#8a6d00"
        elif self.preview_only:
            text, colour = "PREVIEW ONLY", "#2f6fb3"
        elif session.state is State.DEGRADED:
            text, colour = "● ON AIR (problem)", "#c2410c"
        else:
            text, colour = "● ON AIR", "#d92d20"
        self.on_air.setText(text)
        self.on_air.setStyleSheet(
            f"background: {colour}; color: white; font-weight: bold; padding: 3px 10px;"
            "border-radius: 4px;"
        )

    def _tick(self) -> None:
        """20 times a second: the level meter, the mouth badge, the recording clock."""
        session = self.session
        if session is None or session.state not in (State.LIVE, State.DEGRADED):
            self.level.setValue(0)
            self.mouth_state.setText("")
            return
        meter = session.meter
        span = -METER_FLOOR_DB
        self.level.setValue(round(100 * min(1.0, max(0.0, (meter.level_db + span) / span))))
        is_open = meter.gate > 0.5
        self.mouth_state.setText("mouth open to the mic" if is_open else "mouth shut")
        self.mouth_state.setStyleSheet(
            f"color: {'#0a7a3d' if is_open else '#666'}; font-weight: bold; padding: 3px;"
        )
        if self.recording_started is not None:
            elapsed = int(time.monotonic() - self.recording_started)
            self.record_time.setText(f"● {elapsed // 60:02d}:{elapsed % 60:02d}")

    # -- controls ---------------------------------------------------------------------------

    def _fill_devices(self) -> None:
        self.mic_combo.clear()
        self.mic_combo.addItem("System default", None)
        self.webcam_combo.clear()
        self.webcam_combo.addItem("Off", "off")
        self.webcam_combo.addItem("Automatic", "auto")
        self.engine_combo.clear()
        run_async(probe_devices, self._devices_found, lambda exc: None, "device-probe")

    def _devices_found(self, found: dict[str, list[tuple[str, Any, str]]]) -> None:
        for label, value, tip in found["microphones"]:
            self.mic_combo.addItem(label, value)
            self.mic_combo.setItemData(self.mic_combo.count() - 1, tip, Qt.ItemDataRole.ToolTipRole)
        for label, value, tip in found["webcams"]:
            self.webcam_combo.addItem(label, value)
            self.webcam_combo.setItemData(
                self.webcam_combo.count() - 1, tip, Qt.ItemDataRole.ToolTipRole
            )
        for label, value, reason in found["engines"]:
            self.engine_combo.addItem(label, value)
            index = self.engine_combo.count() - 1
            self.engine_combo.setItemData(index, reason or label, Qt.ItemDataRole.ToolTipRole)
            if reason:  # listed with the reason, not choosable
                item = self.engine_combo.model().item(index)  # type: ignore[attr-defined]
                item.setEnabled(False)
        _select(self.mic_combo, self.settings.microphone, missing="microphone")
        _select(self.webcam_combo, self.settings.webcam, missing="webcam")
        _select(self.engine_combo, self.settings.engine, missing="engine")

    def _on_mic_chosen(self) -> None:
        name = self.mic_combo.currentData()
        self.settings.microphone = name
        self._save()
        if self.session is not None:
            self._command(self.session.set_microphone(name), "Microphone changed")

    def _on_webcam_chosen(self) -> None:
        name = self.webcam_combo.currentData()
        self.settings.webcam = name
        if name != "off" and self.settings.mode == "audio":
            self.settings.mode = "hybrid"  # a webcam was picked: let it move the head
            self.mode_combo.setCurrentIndex(self.mode_combo.findData("hybrid"))
            if self.session is not None:
                self.session.set_mode("hybrid")
        self._save()
        if self.session is not None:
            self._command(self.session.set_webcam(name), "Webcam changed")

    def _on_mode_chosen(self) -> None:
        mode = self.mode_combo.currentData()
        self.settings.mode = mode
        self._save()
        if self.session is not None:
            self._command(self.session.set_mode(mode), "Driving mode changed")

    def _on_engine_chosen(self) -> None:
        engine = self.engine_combo.currentData()
        self.settings.engine = engine
        self._save()
        if self.session is not None:
            self._command(self.session.set_engine(engine), f"Engine: {engine}")

    def _on_size_chosen(self) -> None:
        width, height = self.size_combo.currentData()
        self.settings.width, self.settings.height = width, height
        self._save()
        self._check_chosen_portrait()
        if self.session is not None:
            self._command(self.session.set_output_size((width, height)), "Size changed")

    def _on_fps_changed(self, value: int) -> None:
        self.settings.fps = value
        self._save()

    def _on_fit_chosen(self) -> None:
        self.settings.fit = self.fit_combo.currentData()
        self._save()
        self._check_chosen_portrait()
        if self.session is not None:
            self._command(self.session.set_framing(self.settings.fit), "Framing changed")

    def _on_talk_changed(self) -> None:
        self._save()
        self._apply_talk_gate()

    def _apply_talk_gate(self) -> None:
        if self.session is not None:
            detection, is_open = self.talk.gate()
            self.session.set_voice_detection(detection)
            self.session.set_push_to_talk(is_open)

    def keyPressEvent(self, event: QKeyEvent) -> None:
        if not self.talk.window_key(event, pressed=True):
            super().keyPressEvent(event)

    def keyReleaseEvent(self, event: QKeyEvent) -> None:
        if not self.talk.window_key(event, pressed=False):
            super().keyReleaseEvent(event)

    def changeEvent(self, event: QEvent) -> None:
        if event.type() == QEvent.Type.ActivationChange and not self.isActiveWindow():
            self.talk.window_left()
        super().changeEvent(event)

    # -- recording --------------------------------------------------------------------------

    def toggle_recording(self) -> None:
        session = self.session
        if session is None:
            return
        if self.recording_started is not None:
            self._command(session.stop_recording(), "Recording saved")
            self._recording_ended()
            return
        folder = self.settings.recordings_folder()
        try:
            folder.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            self.statusBar().showMessage(f"Cannot create {folder}: {exc.strerror}", 10000)
            return
        path = folder / time.strftime("avatar-%Y%m%d-%H%M%S.mp4")
        self.recording_path = path
        self.recording_started = time.monotonic()
        self.record_button.setText("Stop recording")
        self.record_path.setText(f"Recording to {path}")
        self._command(session.start_recording(path), f"Recording to {path.name}")

    def _recording_ended(self, message: str = "") -> None:
        if self.recording_started is None:
            return
        self.recording_started = None
        self.record_button.setText("Record")
        self.record_time.setText("")
        if self.recording_path is not None:
            self.record_path.setText(message or f"Saved {self.recording_path}")

    def _open_recordings(self) -> None:
        folder = self.settings.recordings_folder()
        folder.mkdir(parents=True, exist_ok=True)
        open_folder(folder)

    # -- the rest ---------------------------------------------------------------------------

    def _command(self, future: Any, done_message: str) -> None:
        """Say when a session command worked; failures arrive as CommandFinished events."""

        def report(result: Any) -> None:
            if result.exception() is None:
                self.statusBar().showMessage(done_message, 4000)

        future.add_done_callback(lambda f: self._command_done.emit(f, report))

    def _size(self) -> tuple[int, int]:
        return self.settings.width, self.settings.height

    def _save(self) -> None:
        try:
            save_settings(self.settings)
        except OSError as exc:
            self.statusBar().showMessage(f"Settings not saved: {exc.strerror}", 8000)

    def _about(self) -> None:
        from ui.dialogs import show_about

        show_about(self)

    def _open_logs(self) -> None:
        from avatar_app.app_settings import log_dir

        log_dir().mkdir(parents=True, exist_ok=True)
        open_folder(log_dir())

    def quit(self) -> None:
        """Stop everything and close for good."""
        self.quitting = True
        self.stop_live(then=self._close_and_quit)

    def _close_and_quit(self) -> None:
        self.close()
        app = QApplication.instance()
        if app is not None:
            app.quit()

    def closeEvent(self, event: QCloseEvent) -> None:
        if self.quitting or self.session is None:
            self.talk.stop_hotkey()
            self._save()
            event.accept()
            if self.session is not None:
                self.session.stop()
            return
        event.ignore()  # live: keep running in the tray
        self.hide()
        self.hidden_to_tray.emit()

    def showEvent(self, event: Any) -> None:
        super().showEvent(event)
        if self.checked is None:
            self._check_chosen_portrait()


def _with_face_box(pixmap: QPixmap, box: tuple[float, float, float, float]) -> QPixmap:
    painter = QPainter(pixmap)
    pen = QPen(Qt.GlobalColor.green)
    pen.setWidth(max(2, pixmap.width() // 300))
    painter.setPen(pen)
    left, top, right, bottom = box
    painter.drawRect(round(left), round(top), round(right - left), round(bottom - top))
    painter.end()
    return pixmap


def _select(combo: QComboBox, value: object, missing: str) -> None:
    """Select ``value``; a remembered device that is gone shows as missing and is selected."""
    index = combo.findData(value)
    if index < 0 and value not in (None, "off", "auto"):
        combo.addItem(f"{value}{MISSING}", value)
        index = combo.count() - 1
        combo.setItemData(
            index,
            f"This {missing} is not connected now; the default is used until it returns.",
            Qt.ItemDataRole.ToolTipRole,
        )
    combo.setCurrentIndex(max(0, index))
