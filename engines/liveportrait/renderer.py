"""The LivePortrait engine: implicit-keypoint neural rendering behind the renderer contract.

``prepare`` crops the face LivePortrait's way and runs the appearance and motion networks
once; ``render`` maps FaceControls to driving keypoints, runs warping and the generator,
and pastes the 512x512 face back into the portrait with a feathered mask.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from engines.controls import FaceControls
from engines.errors import EngineUnavailable, ModelMissing
from engines.face.landmarker import FaceLandmarker, FaceLandmarks, detect_face
from engines.face.portrait import checked_portrait
from engines.liveportrait.backend import Backend
from engines.liveportrait.crop import NETWORK_SIZE, PasteBack, crop_image, face_crop
from engines.liveportrait.mapping import (
    KeypointDriver,
    Mlp,
    Retargeting,
    SourceState,
    open_ratios,
)
from engines.liveportrait.weights import FETCH_COMMAND, weights_dir

ONNX_ENV_VAR = "AVATAR_LIVEPORTRAIT_ONNX"
"""Folder of the exported ONNX models; default ``<weights dir>/onnx``."""
EXPORT_COMMAND = "avatar-app engines export liveportrait"


def onnx_dir() -> Path:
    override = os.environ.get(ONNX_ENV_VAR)
    return Path(override).expanduser() if override else weights_dir() / "onnx"


@dataclass(frozen=True)
class PreparedPortrait:
    driver: KeypointDriver
    feature: np.ndarray  # the appearance volume, (1, C, D, 64, 64)
    kp_source: np.ndarray  # (1, 21, 3) float32
    paste: PasteBack


class LivePortraitRenderer:
    """Renders through any :class:`Backend` (ONNX Runtime, TensorRT)."""

    def __init__(
        self, backend: Backend, name: str = "liveportrait", landmarker: FaceLandmarker | None = None
    ) -> None:
        self.name = name
        self.backend = backend
        self._landmarker = landmarker
        self._retargeting = Retargeting(
            stitching=self._mlp("stitching"), lip=self._mlp("lip"), eye=self._mlp("eye")
        )

    def _mlp(self, network: str) -> Mlp:
        def run(x: np.ndarray) -> np.ndarray:
            out = self.backend.run(network, {"x": x.astype(np.float32)[None]})
            return out["delta"][0].astype(np.float64)

        return run

    def prepare(
        self, portrait_rgb: np.ndarray, landmarks: FaceLandmarks | None = None
    ) -> PreparedPortrait:
        portrait = checked_portrait(portrait_rgb)
        face = landmarks if landmarks is not None else detect_face(portrait, self._landmarker)
        crop = face_crop(face)
        image = crop_image(portrait, crop, NETWORK_SIZE).astype(np.float32) / 255.0
        image = np.ascontiguousarray(image.transpose(2, 0, 1)[None])
        feature = self.backend.run("appearance", {"image": image})["feature"]
        motion = self.backend.run("motion", {"image": image})
        eyes, lip = open_ratios(face.points[:, :2])
        driver = KeypointDriver(SourceState.from_motion(motion, eyes, lip), self._retargeting)
        kp_source = driver.x_s.astype(np.float32)[None]
        for fixed in (feature, kp_source):
            fixed.setflags(write=False)  # lets a back end keep them on the GPU between frames
        return PreparedPortrait(
            driver=driver,
            feature=feature,
            kp_source=kp_source,
            paste=PasteBack.for_portrait(portrait, crop),
        )

    def render(self, prepared: PreparedPortrait, controls: FaceControls) -> np.ndarray:
        image = self.generate(prepared, controls)
        face = np.clip(image.transpose(1, 2, 0) * 255.0 + 0.5, 0, 255).astype(np.uint8)
        return prepared.paste(face)

    def generate(self, prepared: PreparedPortrait, controls: FaceControls) -> np.ndarray:
        """The generator's face crop for ``controls``: ``(3, 512, 512)`` float32 in [0, 1]."""
        kp_driving = prepared.driver.keypoints(controls.clamped())
        inputs = {
            "feature": prepared.feature,
            "kp_driving": kp_driving.astype(np.float32)[None],
            "kp_source": prepared.kp_source,
        }
        warped = self.backend.run("warping", inputs)["warped"]
        image: np.ndarray = self.backend.run("generator", {"warped": warped})["image"][0]
        return image


def _models_dir() -> Path:
    folder = onnx_dir()
    if not (folder / "manifest.json").is_file():
        raise EngineUnavailable(
            f"The LivePortrait models are not set up (no {folder / 'manifest.json'}). Run "
            f"`{FETCH_COMMAND}` to get the official weights, then `{EXPORT_COMMAND}`."
        )
    return folder


def create_onnxruntime() -> LivePortraitRenderer:
    """``--engine liveportrait``: ONNX Runtime, on CUDA when onnxruntime-gpu has it."""
    from engines.liveportrait.onnx_backend import OnnxRuntimeBackend

    try:
        return LivePortraitRenderer(OnnxRuntimeBackend(_models_dir()))
    except ModelMissing as exc:
        raise EngineUnavailable(str(exc)) from exc


def check_onnxruntime() -> None:
    """Raise EngineUnavailable unless the ONNX models are there (loads nothing)."""
    _models_dir()


def check_tensorrt() -> None:
    """Raise EngineUnavailable unless TensorRT imports and the ONNX models are there."""
    import importlib.util

    if importlib.util.find_spec("tensorrt") is None:
        raise EngineUnavailable(
            "TensorRT is not installed: on a machine with an NVIDIA GPU run `pip install "
            '"tensorrt>=10,<11"`, or use the liveportrait engine (ONNX Runtime).'
        )
    check_onnxruntime()


def create_tensorrt() -> LivePortraitRenderer:
    """``--engine liveportrait-trt``: TensorRT engines built for this GPU (cached)."""
    from engines.liveportrait.tensorrt_backend import TensorRTBackend

    try:
        return LivePortraitRenderer(TensorRTBackend(_models_dir()), name="liveportrait-trt")
    except ModelMissing as exc:
        raise EngineUnavailable(str(exc)) from exc
