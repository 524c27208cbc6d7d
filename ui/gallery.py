"""The portrait gallery: the bundled photo and the user's own, each checked before it is added.

``picked`` carries the chosen photo (None: the bundled one); ``said`` carries what to tell the
user about a photo (checking, refused and why). The list is kept in the settings' portraits.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from PySide6.QtCore import QSize, Qt, QUrl, Signal
from PySide6.QtGui import QIcon, QPixmap
from PySide6.QtWidgets import (
    QFileDialog,
    QGroupBox,
    QListWidget,
    QListWidgetItem,
    QPushButton,
    QVBoxLayout,
)

from avatar_app.app_settings import AppSettings
from avatar_app.portrait_check import CheckedPortrait, check_portrait
from engines.errors import AvatarError
from ui.worker import run_async

IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".webp", ".bmp", ".tif", ".tiff")
IMAGE_FILTER = "Photos (" + " ".join(f"*{suffix}" for suffix in IMAGE_SUFFIXES) + ")"
BUNDLED = "bundled"  # the key of the bundled photo's item
THUMBNAIL = 96


class PortraitGallery(QGroupBox):
    picked = Signal(object)  # Path | None
    said = Signal(str)

    def __init__(self, settings: AppSettings, output_size: Callable[[], tuple[int, int]]) -> None:
        super().__init__("Portrait")
        self.settings = settings
        self._output_size = output_size
        self.list = QListWidget()
        self.list.setViewMode(QListWidget.ViewMode.IconMode)
        self.list.setIconSize(QSize(THUMBNAIL, THUMBNAIL))
        self.list.setMovement(QListWidget.Movement.Static)
        self.list.setResizeMode(QListWidget.ResizeMode.Adjust)
        self.list.setSpacing(6)
        self.list.setToolTip("Your portraits. Drop photos here or on the window to add them.")
        self.list.currentItemChanged.connect(self._on_current)
        add = QPushButton("Add photo…")
        add.setToolTip("Pick a photo of one face looking toward the camera")
        add.clicked.connect(self.add_from_dialog)
        layout = QVBoxLayout(self)
        layout.addWidget(self.list, 1)
        layout.addWidget(add)
        self.setFixedWidth(240)

    def load(self) -> None:
        """Fill the list from the settings and select the remembered photo."""
        from avatar_app.portrait_file import bundled_portrait_path

        self.list.clear()
        self._add_item(bundled_portrait_path(), BUNDLED, "Astronaut (bundled)")
        for path in self.settings.portraits:
            if Path(path).is_file():
                self._add_item(Path(path), path, Path(path).name)
        self._select(self.settings.portrait or BUNDLED)
        if self.list.currentRow() < 0:
            self.list.setCurrentRow(0)

    def add_photo(self, path: Path) -> None:
        """Check ``path`` off the GUI thread; it joins the gallery only if it can be animated."""
        self.said.emit(f"Checking {path.name}…")
        run_async(
            lambda: check_portrait(path, self._output_size(), self.settings.fit),
            self._accepted,
            lambda exc: self._refused(path, exc),
            name="portrait-check",
        )

    def add_from_dialog(self) -> None:
        names, _ = QFileDialog.getOpenFileNames(self, "Add a portrait photo", "", IMAGE_FILTER)
        for name in names:
            self.add_photo(Path(name))

    def _accepted(self, checked: CheckedPortrait) -> None:
        key = str(checked.path)
        if key not in self.settings.portraits:
            self.settings.portraits.insert(0, key)
            self._add_item(checked.path, key, checked.path.name)
        self._select(key)

    def _refused(self, path: Path, exc: Exception) -> None:
        message = str(exc) if isinstance(exc, AvatarError) else f"It cannot be read ({exc})."
        self.said.emit(f"<b>{path.name} was not added.</b> {message}")

    def _add_item(self, path: Path, key: str, label: str) -> None:
        item = QListWidgetItem(QIcon(_thumbnail(path)), label)
        item.setData(Qt.ItemDataRole.UserRole, key)
        item.setToolTip(str(path))
        self.list.addItem(item)

    def _select(self, key: str) -> None:
        for index in range(self.list.count()):
            if self.list.item(index).data(Qt.ItemDataRole.UserRole) == key:
                self.list.setCurrentRow(index)

    def _on_current(self, item: QListWidgetItem | None) -> None:
        if item is not None:
            key = item.data(Qt.ItemDataRole.UserRole)
            self.picked.emit(None if key == BUNDLED else Path(key))


def is_image(url: QUrl) -> bool:
    return url.isLocalFile() and Path(url.toLocalFile()).suffix.lower() in IMAGE_SUFFIXES


def _thumbnail(path: Path) -> QPixmap:
    pixmap = QPixmap(str(path))
    if pixmap.isNull():
        pixmap = QPixmap(THUMBNAIL, THUMBNAIL)
        pixmap.fill(Qt.GlobalColor.darkGray)
    return pixmap.scaled(
        THUMBNAIL,
        THUMBNAIL,
        Qt.AspectRatioMode.KeepAspectRatio,
        Qt.TransformationMode.SmoothTransformation,
    )
