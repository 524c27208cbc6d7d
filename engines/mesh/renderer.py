"""The mesh engine: the embedded default renderer, CPU only.

``prepare`` builds a mesh over the face, hair and neck from the landmarks; ``render`` deforms
it from FaceControls and warps the portrait with one backward map, then paints what a warp
cannot show: the mouth's inside and closed eyelids.
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

from engines.controls import FaceControls
from engines.face.landmarker import FaceLandmarker, FaceLandmarks, detect_face
from engines.face.portrait import checked_portrait
from engines.mesh.eyes import EyelidPainter
from engines.mesh.geometry import Mesh, build_mesh
from engines.mesh.glasses import wears_glasses
from engines.mesh.motion import Motion, build_motion, pose_vertices
from engines.mesh.mouth import MouthPainter
from engines.mesh.raster import Region, warp_maps, winding

GRID_SAMPLES_PER_FACE = 50


@dataclass(frozen=True)
class PreparedMesh:
    portrait: np.ndarray
    mesh: Mesh
    motion: Motion
    region: Region
    orientation: np.ndarray  # (T,) winding of each triangle in the photo
    mouth: MouthPainter
    eyelids: EyelidPainter


class MeshRenderer:
    """Warps the portrait along a face mesh; 3-9 ms per frame on one core (512² to 720p)."""

    name = "mesh"

    def __init__(self, landmarker: FaceLandmarker | None = None) -> None:
        self._landmarker = landmarker

    def prepare(
        self, portrait_rgb: np.ndarray, landmarks: FaceLandmarks | None = None
    ) -> PreparedMesh:
        portrait = checked_portrait(portrait_rgb)
        face = landmarks if landmarks is not None else detect_face(portrait, self._landmarker)
        mesh = build_mesh(face)
        glasses = wears_glasses(portrait, mesh.vertices[:, :2])
        return PreparedMesh(
            portrait=portrait,
            mesh=mesh,
            motion=build_motion(mesh, glasses),
            region=_region(mesh, portrait.shape[1], portrait.shape[0]),
            orientation=winding(mesh.triangles, mesh.vertices[:, :2]),
            mouth=MouthPainter.from_portrait(portrait, mesh, glasses),
            eyelids=EyelidPainter.from_portrait(portrait, mesh),
        )

    def render(self, prepared: PreparedMesh, controls: FaceControls) -> np.ndarray:
        c = controls.clamped()
        p = prepared
        offsets = p.motion.expression_offsets(c)
        dst_xy, dst_depth = pose_vertices(p.mesh, p.motion, offsets, c)
        map_x, map_y = warp_maps(
            p.region,
            p.mesh.triangles,
            dst_xy,
            dst_depth,
            p.mesh.vertices[:, :2],
            p.mesh.depth_bias,
            p.orientation,
        )
        r = p.region
        patch = cv2.remap(p.portrait, map_x, map_y, cv2.INTER_LINEAR, borderMode=cv2.BORDER_REFLECT)
        p.mouth.paint(patch, (r.x, r.y), dst_xy)
        p.eyelids.paint(patch, (r.x, r.y), dst_xy, c)
        frame = p.portrait.copy()
        frame[r.y : r.y + r.height, r.x : r.x + r.width] = patch
        return frame


def _region(mesh: Mesh, width: int, height: int) -> Region:
    ring = mesh.vertices[mesh.outer_ring, :2]
    x0, y0 = np.floor(ring.min(axis=0)).astype(int)
    x1, y1 = np.ceil(ring.max(axis=0)).astype(int)
    x0, y0 = max(x0, 0), max(y0, 0)
    x1, y1 = min(x1, width), min(y1, height)
    step = max(1, round(max(mesh.frame.width, mesh.frame.height) / GRID_SAMPLES_PER_FACE))
    return Region(int(x0), int(y0), int(x1 - x0), int(y1 - y0), int(step))
