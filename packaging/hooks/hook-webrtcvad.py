"""webrtcvad comes from the webrtcvad-wheels distribution, which reads its own version from
that name; the stock hook asks for a distribution called webrtcvad and fails the build."""

from PyInstaller.utils.hooks import copy_metadata

datas = copy_metadata("webrtcvad-wheels")
