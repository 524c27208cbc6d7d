"""The one error tree of the app. Every message says what the user can do about it."""


class AvatarError(Exception):
    """Base of every error the app raises on purpose."""


class PortraitError(AvatarError):
    """The portrait photo cannot be used (no face, corrupt file, ...)."""


class ModelMissing(AvatarError):
    """A model file is absent and could not be fetched."""


class EngineUnavailable(AvatarError):
    """A renderer cannot run on this machine (missing package, no GPU, ...)."""


class DeviceError(AvatarError):
    """A microphone, camera or output device failed."""


class RecordingError(AvatarError):
    """A video file cannot be written (missing folder, no permission, full disk, ...)."""


class VirtualCameraUnavailable(DeviceError):
    """No virtual camera can be opened (no v4l2loopback device, no OBS camera, ...)."""


class HotkeyUnavailable(AvatarError):
    """A global push-to-talk hotkey cannot work in this session (Wayland, no X display, no
    macOS permission, ...); the message says why and that the window-focused key still works."""
