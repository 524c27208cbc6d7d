"""From FaceControls to deformed mesh vertices: expression fields, then the head pose.

Each expression control owns a displacement field over the mesh (pixels at value 1, built once
in ``build_motion``), so a frame is a weighted sum plus one rigid 3-D head transform.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from engines.controls import FaceControls
from engines.face import topology as topo
from engines.mesh.geometry import FaceFrame, Mesh

# The eased depth at the sides of the head (geometry.BEHIND_DEPTH) gives a turn less parallax;
# re-measured on rendered frames, turns of 25 degrees came out about a quarter short without it.
YAW_GAIN = 1.2
NEAR_BLEND = 0.3  # face widths across the middle over which the near side's easing fades in
LID_REACH = 0.35  # eye widths over which a blink drags the skin around the eye along
# With glasses: brows move this much (the frame over them would bend up with them), and a
# blink drags little beyond the lids (the rims sit just outside the eye opening).
GLASSES_BROW_GAIN = 0.25
GLASSES_LID_REACH = 0.15

# Expression controls that act linearly through a displacement field.
LINEAR_FIELDS = (
    "mouth_wide",
    "mouth_round",
    "smile",
    "brow_left",
    "brow_right",
    "blink_left",
    "blink_right",
    "gaze_x",
    "gaze_y",
)


@dataclass(frozen=True)
class Motion:
    """Displacement fields (N, 2) per control, and the head pivot (x, y, depth)."""

    fields: dict[str, np.ndarray]
    pivot: np.ndarray

    def expression_offsets(self, controls: FaceControls) -> np.ndarray:
        """(N, 2) pixel offsets of every vertex for the expression part of ``controls``."""
        press = controls.lip_press
        offsets = self.fields["jaw_open"] * (controls.jaw_open * (1.0 - 0.9 * press))
        offsets = offsets + self.fields["lip_press"] * press
        for name in LINEAR_FIELDS:
            value = getattr(controls, name)
            if value:
                offsets = offsets + self.fields[name] * value
        return offsets


def build_motion(mesh: Mesh, glasses: bool = False) -> Motion:
    """The fields for ``mesh``. With ``glasses`` the brows move less and a blink stays inside
    the eye opening: spectacle frames lie over both, and a warp would bend them."""
    xy = mesh.vertices[:, :2]
    brow_gain, lid_reach = (GLASSES_BROW_GAIN, GLASSES_LID_REACH) if glasses else (1.0, LID_REACH)
    f = mesh.frame
    movable = np.ones(len(xy), dtype=bool)
    movable[mesh.outer_ring] = False
    fields = {
        "jaw_open": _jaw(mesh),
        "lip_press": _lip_press(xy, f, movable),
        "mouth_wide": _mouth_corners(xy, f, movable, out=0.07, up=0.0, thin=0.006),
        "smile": _smile(xy, f, movable),
        "mouth_round": _mouth_round(xy, f, movable),
        "brow_right": brow_gain * _brow(xy, f, movable, topo.RIGHT_BROW, topo.RIGHT_EYE_UPPER),
        "brow_left": brow_gain * _brow(xy, f, movable, topo.LEFT_BROW, topo.LEFT_EYE_UPPER),
        "blink_right": _blink(xy, movable, topo.RIGHT_EYE_UPPER, topo.RIGHT_EYE_LOWER,
                              topo.RIGHT_IRIS_CENTER, topo.RIGHT_BROW, lid_reach),
        "blink_left": _blink(xy, movable, topo.LEFT_EYE_UPPER, topo.LEFT_EYE_LOWER,
                             topo.LEFT_IRIS_CENTER, topo.LEFT_BROW, lid_reach),
        "gaze_x": _gaze(xy, f, axis=0),
        "gaze_y": _gaze(xy, f, axis=1),
    }  # fmt: skip
    oval_depth = mesh.vertices[list(topo.FACE_OVAL), 2].mean()
    pivot = np.array([*(f.center + 0.15 * f.height * f.down), oval_depth + 0.3 * f.width])
    return Motion(fields=fields, pivot=pivot)


def pose_vertices(
    mesh: Mesh, motion: Motion, offsets: np.ndarray, controls: FaceControls
) -> tuple[np.ndarray, np.ndarray]:
    """Deformed vertices after the head pose: (N, 2) positions and (N,) depth."""
    p = mesh.vertices.copy()
    p[:, :2] += offsets
    if controls.head_yaw:  # + yaw turns the face's right side (image left) toward the camera
        near = np.clip(0.5 - np.sign(controls.head_yaw) * mesh.across / NEAR_BLEND, 0.0, 1.0)
        p[:, 2] += near * near * (3 - 2 * near) * mesh.near_easing
    rotation = rotation_matrix(
        YAW_GAIN * controls.head_yaw, controls.head_pitch, controls.head_roll
    )
    f = mesh.frame
    shift = np.array([controls.head_x * f.width, controls.head_y * f.width, 0.0])
    moved = (p - motion.pivot) @ (controls.head_scale * rotation).T + motion.pivot + shift
    w = mesh.head_weight[:, None]
    p = p + w * (moved - p)
    return p[:, :2], p[:, 2]


def rotation_matrix(yaw: float, pitch: float, roll: float) -> np.ndarray:
    """Image axes (x right, y down, z away from the camera); degrees.

    + yaw moves the nose toward the image right, + pitch moves it up, + roll turns clockwise.
    """
    y, p, r = np.radians([yaw, pitch, roll])
    ry = np.array([[np.cos(y), 0, -np.sin(y)], [0, 1, 0], [np.sin(y), 0, np.cos(y)]])
    rx = np.array([[1, 0, 0], [0, np.cos(p), np.sin(p)], [0, -np.sin(p), np.cos(p)]])
    rz = np.array([[np.cos(r), -np.sin(r), 0], [np.sin(r), np.cos(r), 0], [0, 0, 1]])
    return rz @ rx @ ry


# --- displacement fields -------------------------------------------------------------------


def _spread(
    xy: np.ndarray,
    handles: dict[int, np.ndarray],
    radius: float,
    movable: np.ndarray,
) -> np.ndarray:
    """Handles move exactly as given; other movable vertices follow with a Gaussian falloff.

    Handles with a zero displacement act as anchors: nearby vertices are held back by them.
    """
    ids = np.array(list(handles))
    disp = np.array([handles[i] for i in ids], dtype=np.float64)
    d2 = ((xy[:, None, :] - xy[ids][None, :, :]) ** 2).sum(-1)
    g = np.exp(-d2 / radius**2)
    total = g.sum(axis=1, keepdims=True)
    field = (g @ disp) / np.maximum(total, 1.0)
    field[~movable] = 0.0
    field[ids] = disp
    return field


def _jaw(mesh: Mesh) -> np.ndarray:
    """The lower jaw swings down: full at the lower lip and chin, fading toward the ears."""
    f = mesh.frame
    xy = mesh.vertices[:, :2]
    corners = xy[list(topo.MOUTH_CORNERS)]
    mouth = f.to_face(corners.mean(axis=0)[None])[0]
    uv = f.to_face(xy) - mouth
    below = np.clip((uv[:, 1] / f.height + 0.01) / 0.07, 0.0, 1.0)
    below = below * below * (3 - 2 * below)
    lateral = np.clip((np.abs(uv[:, 0]) / f.width - 0.2) / 0.3, 0.0, 1.0)
    weight = below * (1.0 - lateral * lateral * (3 - 2 * lateral))
    weight[list(topo.LIPS_UPPER_INNER + topo.LIPS_UPPER_OUTER)] = 0.0
    weight[list(topo.LIPS_LOWER_INNER[1:-1] + topo.LIPS_LOWER_OUTER[1:-1])] = 1.0
    weight[list(topo.MOUTH_CORNERS)] = 0.3
    weight[[topo.LIPS_LOWER_INNER[0], topo.LIPS_LOWER_INNER[-1]]] = 0.35
    weight[mesh.mouth_center] = 0.5
    weight[mesh.inner_ring] = np.minimum(weight[mesh.inner_ring], 0.5)
    weight[mesh.outer_ring] = 0.0
    return f.to_image(np.stack([np.zeros_like(weight), weight * 0.17 * f.height], axis=1))


def _lip_press(xy: np.ndarray, f: FaceFrame, movable: np.ndarray) -> np.ndarray:
    """Inner lips meet halfway and press a little; the outer lip lines follow partly."""
    handles: dict[int, np.ndarray] = {}
    squeeze = 0.006 * f.height * f.down
    pairs = zip(topo.LIPS_UPPER_INNER[1:-1], topo.LIPS_LOWER_INNER[1:-1], strict=True)
    outer = zip(topo.LIPS_UPPER_OUTER[1:-1], topo.LIPS_LOWER_OUTER[1:-1], strict=True)
    for (up, low), (up_out, low_out) in zip(pairs, outer, strict=True):
        middle = (xy[up] + xy[low]) / 2
        handles[up] = middle - xy[up]
        handles[low] = middle - xy[low]
        handles[up_out] = 0.4 * handles[up] + squeeze
        handles[low_out] = 0.4 * handles[low] - squeeze
    for corner in (*topo.MOUTH_CORNERS, topo.LIPS_UPPER_INNER[0], topo.LIPS_UPPER_INNER[-1]):
        handles[corner] = np.zeros(2)
    return _spread(xy, handles, 0.06 * f.height, movable)


def _lip_handles(
    xy: np.ndarray, f: FaceFrame, corner_move: tuple[float, float], thin: float
) -> dict[int, np.ndarray]:
    """Every lip point moves like its side's corner, scaled by (distance from centre)^2.

    ``corner_move`` is (outward, upward) in face widths / heights; ``thin`` pulls the outer
    lip lines toward the mouth line, in face heights.
    """
    corners = xy[list(topo.MOUTH_CORNERS)]
    centre = corners.mean(axis=0)
    half_width = np.linalg.norm(corners[1] - corners[0]) / 2
    handles: dict[int, np.ndarray] = {}
    lips = set(topo.LIPS_UPPER_OUTER + topo.LIPS_LOWER_OUTER)
    lips |= set(topo.LIPS_UPPER_INNER + topo.LIPS_LOWER_INNER)
    for i in sorted(lips):
        along = float((xy[i] - centre) @ f.right) / half_width
        t = float(np.clip(abs(along), 0.0, 1.0)) ** 2
        out = np.sign(along) * corner_move[0] * f.width * t
        move = out * f.right - corner_move[1] * f.height * t * f.down
        if i in topo.LIPS_UPPER_OUTER[1:-1]:
            move = move + thin * f.height * (1 - t) * f.down
        elif i in topo.LIPS_LOWER_OUTER[1:-1]:
            move = move - thin * f.height * (1 - t) * f.down
        handles[i] = move
    return handles


def _mouth_corners(
    xy: np.ndarray, f: FaceFrame, movable: np.ndarray, out: float, up: float, thin: float
) -> np.ndarray:
    return _spread(xy, _lip_handles(xy, f, (out, up), thin), 0.12 * f.height, movable)


def _smile(xy: np.ndarray, f: FaceFrame, movable: np.ndarray) -> np.ndarray:
    """Corners up and out; cheeks rise and lower lids push up a little."""
    handles = _lip_handles(xy, f, (0.045, 0.06), 0.0)
    for cheek, lift in ((205, 0.03), (425, 0.03), (50, 0.022), (280, 0.022)):
        handles[cheek] = -lift * f.height * f.down
    for i in topo.RIGHT_EYE_LOWER[1:-1] + topo.LEFT_EYE_LOWER[1:-1]:
        handles[i] = -0.008 * f.height * f.down
    for i in topo.RIGHT_EYE_UPPER + topo.LEFT_EYE_UPPER:
        handles[i] = np.zeros(2)
    return _spread(xy, handles, 0.12 * f.height, movable)


def _mouth_round(xy: np.ndarray, f: FaceFrame, movable: np.ndarray) -> np.ndarray:
    """Pucker: corners in, lips pushed out, a small round opening."""
    handles = _lip_handles(xy, f, (-0.07, 0.0), 0.0)
    push = {
        topo.LIPS_UPPER_OUTER: -0.012,
        topo.LIPS_LOWER_OUTER: 0.02,
        topo.LIPS_UPPER_INNER: -0.006,
        topo.LIPS_LOWER_INNER: 0.03,
    }
    corners = xy[list(topo.MOUTH_CORNERS)]
    half_width = np.linalg.norm(corners[1] - corners[0]) / 2
    for group, amount in push.items():
        for i in group[1:-1]:
            along = float((xy[i] - corners.mean(axis=0)) @ f.right) / half_width
            handles[i] = handles[i] + amount * f.height * (1 - along**2) * f.down
    return _spread(xy, handles, 0.1 * f.height, movable)


def _brow(
    xy: np.ndarray,
    f: FaceFrame,
    movable: np.ndarray,
    brow: tuple[int, ...],
    upper_lid: tuple[int, ...],
) -> np.ndarray:
    """The brow rises, the forehead follows, the upper lid stays: the skin between stretches."""
    lift = -0.07 * f.height * f.down
    handles: dict[int, np.ndarray] = {i: lift for i in brow}
    handles |= {i: np.zeros(2) for i in upper_lid}
    return _spread(xy, handles, 0.09 * f.height, movable)


def _blink(
    xy: np.ndarray,
    movable: np.ndarray,
    upper: tuple[int, ...],
    lower: tuple[int, ...],
    iris: int,
    brow: tuple[int, ...],
    reach: float,
) -> np.ndarray:
    """Upper lid slides down to meet the lower lid a fifth of the way up the opening."""
    handles: dict[int, np.ndarray] = {}
    closed_line = []
    for up, low in zip(upper[1:-1], lower[1:-1], strict=True):
        meet = xy[low] + 0.2 * (xy[up] - xy[low])
        handles[up] = meet - xy[up]
        handles[low] = meet - xy[low]
        closed_line.append(meet)
    handles[upper[0]] = handles[upper[-1]] = np.zeros(2)
    handles[iris] = np.mean(closed_line, axis=0) - xy[iris]
    handles |= {i: np.zeros(2) for i in brow}
    eye_width = float(np.linalg.norm(xy[upper[-1]] - xy[upper[0]]))
    return _spread(xy, handles, reach * eye_width, movable)


def _gaze(xy: np.ndarray, f: FaceFrame, axis: int) -> np.ndarray:
    """Only the iris centres move; the eye fans around them carry the iris texture along."""
    field = np.zeros_like(xy)
    for upper, iris in ((topo.RIGHT_EYE_UPPER, topo.RIGHT_IRIS_CENTER),
                        (topo.LEFT_EYE_UPPER, topo.LEFT_IRIS_CENTER)):  # fmt: skip
        eye_width = np.linalg.norm(xy[upper[-1]] - xy[upper[0]])
        direction = f.right if axis == 0 else f.down
        field[iris] = (0.2 if axis == 0 else 0.12) * eye_width * direction
    return field
