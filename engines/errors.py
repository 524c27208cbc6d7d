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
