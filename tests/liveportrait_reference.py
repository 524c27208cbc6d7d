"""The LivePortrait pipeline run in PyTorch, to check the ONNX engine end to end."""

from __future__ import annotations

import numpy as np
import torch

from engines.controls import FaceControls
from engines.face.landmarker import FaceLandmarks
from engines.liveportrait.crop import NETWORK_SIZE, crop_image, face_crop
from engines.liveportrait.mapping import KeypointDriver, Retargeting, SourceState, open_ratios
from engines.liveportrait.motion import HEADS
from engines.liveportrait.network_set import NetworkSet


def _mlp(model: torch.nn.Module):  # type: ignore[no-untyped-def]
    def run(x: np.ndarray) -> np.ndarray:
        with torch.no_grad():
            out: np.ndarray = (
                model(torch.from_numpy(x.astype(np.float32))[None])[0].double().numpy()
            )
        return out

    return run


@torch.no_grad()
def reference_face(
    nets: NetworkSet, portrait: np.ndarray, face: FaceLandmarks, controls: FaceControls
) -> np.ndarray:
    """The generator's ``(3, 512, 512)`` output for ``controls``, all in PyTorch."""
    crop = face_crop(face)
    image = crop_image(portrait, crop, NETWORK_SIZE).astype(np.float32) / 255.0
    x = torch.from_numpy(np.ascontiguousarray(image.transpose(2, 0, 1)[None]))
    feature = nets.appearance(x)
    motion = {k: v.numpy() for k, v in zip(HEADS, nets.motion(x), strict=True)}
    eyes, lip = open_ratios(face.points[:, :2])
    source = SourceState.from_motion(motion, eyes, lip)
    retargeting = Retargeting(_mlp(nets.stitching), _mlp(nets.lip), _mlp(nets.eye))
    driver = KeypointDriver(source, retargeting)
    kp_driving = driver.keypoints(controls.clamped())
    kp_source = torch.from_numpy(driver.x_s.astype(np.float32))[None]
    warped = nets.warping(feature, torch.from_numpy(kp_driving.astype(np.float32))[None], kp_source)
    out: np.ndarray = nets.generator(warped)[0].numpy()
    return out
