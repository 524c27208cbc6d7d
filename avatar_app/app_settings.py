"""The desktop app's settings: typed, versioned, in the platform's config folder.

A file that cannot be read (broken JSON, wrong types, from a newer version) is set aside as
``settings.json.broken-<time>`` with a warning and the defaults are used: never a crash, and
nothing the user wrote is deleted.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import os
import time
from dataclasses import dataclass, field, fields
from pathlib import Path
from types import UnionType
from typing import Any, Literal, Union, get_args, get_origin, get_type_hints

from platformdirs import user_config_path, user_log_path, user_videos_path

from avatar_app.pipeline.settings import Fit, PipelineSettings, PushToTalk
from engines.motion.mixer import Policy

log = logging.getLogger(__name__)

APP_NAME = "avatar-app"
VERSION = 1
"""Bumped when a field changes meaning; older files are migrated in ``_migrate``."""
SETTINGS_ENV_VAR = "AVATAR_APP_CONFIG_DIR"
"""Overrides the config folder (tests, portable installs)."""


@dataclass
class AppSettings:
    """What the window remembers between runs. Devices are kept by name, never by index."""

    portraits: list[str] = field(default_factory=list)  # the user's own photos, newest first
    portrait: str | None = None  # the chosen photo; None: the bundled one
    microphone: str | None = None  # None: the system's default input
    webcam: str = "off"
    mode: Policy = "audio"
    engine: str = "auto"
    width: int = 1280
    height: int = 720
    fps: int = 30
    fit: Fit = "fill"
    push_to_talk: PushToTalk = "vad"
    hotkey: str = "F9"
    vad_aggressiveness: int = 2
    voice_out: str = "off"  # "auto": the voice goes to the call delayed to match the mouth
    voice_offset_ms: int = 0  # -100..100, for the call app's own video buffering
    voice_follows_gate: bool = True  # push-to-talk and mute silence the voice too
    recordings: str = ""  # folder; "" means the platform's videos folder
    start_in_tray: bool = False
    tray_notice_shown: bool = False

    def pipeline(self, virtual_camera: str = "auto") -> PipelineSettings:
        """The pipeline these settings ask for."""
        return PipelineSettings(
            portrait=Path(self.portrait) if self.portrait else None,
            size=(self.width, self.height),
            fit=self.fit,
            fps=self.fps,
            engine=self.engine,
            mode=self.mode,
            vad_aggressiveness=self.vad_aggressiveness,
            push_to_talk=self.push_to_talk,
            microphone=self.microphone,
            webcam=self.webcam,
            virtual_camera=virtual_camera,
            voice_out=self.voice_out,
            voice_offset_ms=float(self.voice_offset_ms),
            voice_follows_gate=self.voice_follows_gate,
        )

    def recordings_folder(self) -> Path:
        return Path(self.recordings) if self.recordings else user_videos_path() / APP_NAME


def config_dir() -> Path:
    override = os.environ.get(SETTINGS_ENV_VAR)
    return Path(override) if override else user_config_path(APP_NAME, appauthor=False)


def log_dir() -> Path:
    override = os.environ.get(SETTINGS_ENV_VAR)
    return Path(override) / "logs" if override else user_log_path(APP_NAME, appauthor=False)


def settings_path() -> Path:
    return config_dir() / "settings.json"


def load_settings(path: Path | None = None) -> AppSettings:
    """The saved settings, or the defaults when there are none or they cannot be read."""
    path = path or settings_path()
    if not path.exists():
        return AppSettings()
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
        return _from_dict(_migrate(data))
    except (OSError, UnicodeDecodeError, ValueError, TypeError) as exc:
        aside = _unused(path.with_name(f"{path.name}.broken-{time.strftime('%Y%m%d-%H%M%S')}"))
        try:
            path.replace(aside)
            where = f"it was moved to {aside}"
        except OSError:
            where = "it was left where it is"
        log.warning(
            "The settings file %s could not be read (%s); %s. Using defaults.", path, exc, where
        )
        return AppSettings()


def _unused(path: Path) -> Path:
    """``path``, or ``path-2``, ``path-3`` ... whichever does not exist yet."""
    candidate, number = path, 1
    while candidate.exists():
        number += 1
        candidate = path.with_name(f"{path.name}-{number}")
    return candidate


def save_settings(settings: AppSettings, path: Path | None = None) -> None:
    """Write atomically (a crash mid-write leaves the old file)."""
    path = path or settings_path()
    path.parent.mkdir(parents=True, exist_ok=True)
    data = {"version": VERSION, **dataclasses.asdict(settings)}
    partial = path.with_name(path.name + ".partial")
    partial.write_text(json.dumps(data, indent=2), encoding="utf-8")
    partial.replace(path)


def _migrate(data: Any) -> dict[str, Any]:
    if not isinstance(data, dict):
        raise ValueError("the file does not hold a JSON object")
    version = data.pop("version", None)
    if version != VERSION:
        raise ValueError(f"version {version!r}; this app reads version {VERSION}")
    return data


def _from_dict(data: dict[str, Any]) -> AppSettings:
    """Fields by name and type; unknown keys are ignored, a value of the wrong type is an error."""
    hints = get_type_hints(AppSettings)
    values: dict[str, Any] = {}
    for f in fields(AppSettings):
        if f.name in data:
            values[f.name] = _checked(f.name, data[f.name], hints[f.name])
    return AppSettings(**values)


def _checked(name: str, value: Any, hint: Any) -> Any:
    allowed = get_args(hint) if get_origin(hint) in (Union, UnionType, Literal) else (hint,)
    literals = [a for a in allowed if isinstance(a, str | int) and not isinstance(a, type)]
    if literals:
        if value not in literals:
            raise ValueError(f"{name} is {value!r}; expected one of {literals}")
        return value
    for kind in allowed:
        if kind is type(None) and value is None:
            return value
        origin = getattr(kind, "__origin__", kind)
        if origin is list and isinstance(value, list) and all(isinstance(v, str) for v in value):
            return value
        if isinstance(origin, type) and origin is not list and type(value) is origin:
            return value
    raise TypeError(f"{name} is {value!r}, of the wrong type")
