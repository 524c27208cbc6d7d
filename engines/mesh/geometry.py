"""The mesh built once per portrait: vertices over face, hair and neck, triangles, depth.

Vertex layout: the 478 landmarks, one mouth-centre vertex, an inner ring that moves with the
head (hair, ears, neck) and an outer ring that stays put, so the picture outside it never moves.
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np
from scipy.spatial import Delaunay

from engines.face import topology as topo
from engines.face.landmarker import FaceLandmarks

INNER_RING_SCALE = 1.35
OUTER_RING_SCALE = 2.1
# mediapipe's relative depth is flatter than a head: turns re-measured from rendered frames
# came out ~20% short of the commanded angle without this gain.
DEPTH_GAIN = 1.15
# On the side turning toward the camera, depth behind the face's middle is eased toward this
# many face widths. The sides of a head are steep: a strip the photo shows edge-on would spread
# over many pixels when it turns to face the camera (up to 20x at 25 degrees of yaw), smearing
# the near cheek and ear. The far side keeps its depth, so it still folds behind the nose.
BEHIND_DEPTH = 0.3


@dataclass(frozen=True)
class FaceFrame:
    """The face's own axes in the image and its size, for motions defined relative to the face."""

    right: np.ndarray  # unit vector from the subject's right eye toward the left eye
    down: np.ndarray  # unit vector from forehead toward chin (perpendicular to ``right``)
    center: np.ndarray  # mean of the face oval, pixels
    width: float  # cheek to cheek, pixels
    height: float  # forehead landmark to chin, pixels

    @staticmethod
    def from_points(points: np.ndarray) -> FaceFrame:
        xy = points[:, :2].astype(np.float64)
        right_eye = xy[list(topo.RIGHT_EYE_UPPER + topo.RIGHT_EYE_LOWER)].mean(axis=0)
        left_eye = xy[list(topo.LEFT_EYE_UPPER + topo.LEFT_EYE_LOWER)].mean(axis=0)
        right = left_eye - right_eye
        right /= np.linalg.norm(right)
        down = np.array([-right[1], right[0]])
        oval = xy[list(topo.FACE_OVAL)]
        width = float(np.ptp(oval @ right))
        height = float(np.linalg.norm(xy[topo.CHIN] - xy[topo.FOREHEAD_TOP]))
        return FaceFrame(right, down, oval.mean(axis=0), width, height)

    def to_face(self, xy: np.ndarray) -> np.ndarray:
        """Pixel positions -> (along right, along down) relative to the centre, in pixels."""
        rel = xy - self.center
        return np.stack([rel @ self.right, rel @ self.down], axis=-1)

    def to_image(self, uv: np.ndarray) -> np.ndarray:
        """Displacements in face axes -> displacements in pixels."""
        return uv[..., :1] * self.right + uv[..., 1:2] * self.down


@dataclass(frozen=True)
class Mesh:
    """Source vertices (N, 3: x, y, depth; pixels) and triangles (T, 3) with per-vertex roles."""

    vertices: np.ndarray
    triangles: np.ndarray
    head_weight: np.ndarray  # (N,) how much of the head pose each vertex follows
    depth_bias: np.ndarray  # (T,) added to depth when triangles overlap: rings lie behind
    near_easing: np.ndarray  # (N,) depth change (<= 0) where this side turns toward the camera
    across: np.ndarray  # (N,) position along the face's right axis, in face widths
    mouth_center: int
    inner_ring: slice
    outer_ring: slice
    frame: FaceFrame


def build_mesh(face: FaceLandmarks) -> Mesh:
    points = face.points.astype(np.float64) * [1.0, 1.0, DEPTH_GAIN]
    frame = FaceFrame.from_points(points)
    oval_idx = np.array(topo.FACE_OVAL)
    oval = points[oval_idx]
    inner_mouth = list(topo.inner_mouth_contour())

    mouth_center = points[inner_mouth].mean(axis=0)
    mouth_center[2] += 0.03 * frame.width  # the cavity lies behind the lips
    inner_ring = _ring(oval, frame, INNER_RING_SCALE)
    outer_ring = _ring(oval, frame, OUTER_RING_SCALE)
    vertices = np.vstack([points, mouth_center[None], inner_ring, outer_ring])

    n_face = len(points) + 1
    inner = slice(n_face, n_face + len(oval))
    outer = slice(inner.stop, inner.stop + len(oval))
    mouth_idx = len(points)

    triangles = [topo.face_triangles()]
    for upper, lower, iris in (
        (topo.RIGHT_EYE_UPPER, topo.RIGHT_EYE_LOWER, topo.RIGHT_IRIS_CENTER),
        (topo.LEFT_EYE_UPPER, topo.LEFT_EYE_LOWER, topo.LEFT_IRIS_CENTER),
    ):
        triangles.append(_fan(iris, topo.eye_contour(upper, lower)))
    triangles.append(_fan(mouth_idx, topo.inner_mouth_contour()))
    n_inside = sum(len(t) for t in triangles)
    ring_vertex_ids = np.concatenate([oval_idx, np.arange(inner.start, outer.stop)])
    triangles.append(_outside_oval_triangles(vertices, ring_vertex_ids, oval[:, :2]))
    all_triangles = np.vstack(triangles).astype(np.int32)

    depth_bias = np.zeros(len(all_triangles))
    depth_bias[n_inside:] = 10.0 * frame.width

    head_weight = np.ones(len(vertices))
    down = frame.to_face(inner_ring[:, :2])[:, 1] / (0.5 * frame.height * INNER_RING_SCALE)
    head_weight[inner] = np.interp(down, [-1.0, 0.3, 1.0], [0.85, 0.75, 0.5])
    head_weight[outer] = 0.0
    return Mesh(
        vertices=vertices,
        triangles=all_triangles,
        head_weight=head_weight,
        depth_bias=depth_bias,
        near_easing=_eased_depth(vertices[:, 2], BEHIND_DEPTH * frame.width) - vertices[:, 2],
        across=frame.to_face(vertices[:, :2])[:, 0] / frame.width,
        mouth_center=mouth_idx,
        inner_ring=inner,
        outer_ring=outer,
        frame=frame,
    )


def _eased_depth(depth: np.ndarray, most: float) -> np.ndarray:
    """Depth behind the median approaches ``most`` behind it smoothly; in front, unchanged."""
    middle = float(np.median(depth))
    behind = np.maximum(depth - middle, 0.0)
    return np.where(depth > middle, middle + most * np.tanh(behind / most), depth)


def _ring(oval: np.ndarray, frame: FaceFrame, scale: float) -> np.ndarray:
    """The face oval scaled about the face centre; depth that of the oval point it came from."""
    ring = oval.copy()
    ring[:, :2] = frame.center + (oval[:, :2] - frame.center) * scale
    return ring


def _fan(center: int, loop: tuple[int, ...]) -> np.ndarray:
    return np.array([(center, loop[i], loop[(i + 1) % len(loop)]) for i in range(len(loop))])


def _outside_oval_triangles(
    vertices: np.ndarray, ids: np.ndarray, oval_xy: np.ndarray
) -> np.ndarray:
    """Delaunay triangles over the oval and both rings that lie outside the face oval."""
    tri = Delaunay(vertices[ids, :2])
    simplices = ids[tri.simplices]
    centroids = vertices[simplices, :2].mean(axis=1).astype(np.float32)
    contour = oval_xy.astype(np.float32).reshape(-1, 1, 2)
    outside = [cv2.pointPolygonTest(contour, (float(x), float(y)), False) < 0 for x, y in centroids]
    return simplices[np.array(outside)]
