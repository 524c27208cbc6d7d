"""Paints the inside of an opened mouth and the seam of lips pressed together.

A warp can only stretch the lips' own pixels across the gap; wherever the lips part more than
in the photo, a painted interior fades in instead, built back to front in the mouth's own
coordinates (``t`` from corner to corner, depth below the upper lip or above the lower lip):
the dark of the throat, a tongue that rises behind the lower teeth, a lower and an upper teeth
row with the gaps between teeth, and a shadow along the lips' inner edges. The upper teeth ride
with the upper lip and the lower teeth with the lower lip, as they do on a skull and jaw.

Teeth come from the photo where it shows them (its pixels between the lips, mapped along with
each lip); otherwise they are drawn in the colour of the photo's own eye whites, the one white
thing under the same light (unless glasses tint them). Where the lips close more than in the
photo (m, b, p), the photo's teeth would still peep out between the inner lip landmarks, which
sit inside the visible lip edge; a band in the photo's own lip colours with a darker seam
covers it.
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

from engines.face import topology as topo
from engines.mesh.geometry import Mesh
from engines.mesh.painting import (
    SUBPIXEL_BITS,
    blend_into,
    box_around,
    is_empty,
    polygon_mask,
    to_fixed,
)

THROAT_EDGE = np.array([120.0, 52.0, 50.0])
THROAT_DEEP = np.array([38.0, 12.0, 14.0])
DEFAULT_TEETH = np.array([222.0, 214.0, 200.0])
TONGUE_TINT = np.array([200.0, 100.0, 104.0])
TEETH_TINT = np.array([1.0, 0.98, 0.93])  # teeth are a little yellower than eye whites
LIP_CHROMA = 45.0  # max - min of RGB of the lips in an ordinary colour photo
UPPER_SHARE = 0.75  # of the photo's lip gap: upper teeth above, lower teeth below
TOOTH_ANGLE = 0.3  # radians of dental arch per tooth (incisors, seen from the front)
ARCH_HALF_ANGLE = 1.2  # radians from the middle to a mouth corner along the arch
CANVAS_COLUMNS = 56  # at most this many columns of drawing across the mouth
SAMPLES = 33  # points per lip curve in the photo's mouth coordinates


@dataclass(frozen=True)
class PhotoTeeth:
    """The photo's own mouth interior, for teeth that move with each lip.

    The curves are sampled at ``SAMPLES`` even steps of ``t`` (0 at one inner corner, 1 at the
    other); ``reach`` is how far below the upper lip (above the lower lip) the photo shows the
    upper (lower) teeth, in photo pixels.
    """

    image: np.ndarray  # crop of the photo around the mouth
    offset: np.ndarray  # (x, y) of the crop in the photo
    upper: np.ndarray  # (SAMPLES, 2) upper inner lip, crop pixels
    lower: np.ndarray  # (SAMPLES, 2) lower inner lip, crop pixels
    down: np.ndarray  # the mouth's down axis in the photo
    width: float  # inner corner to inner corner, photo pixels
    reach_upper: np.ndarray  # (SAMPLES,)
    reach_lower: np.ndarray  # (SAMPLES,)


@dataclass(frozen=True)
class MouthPainter:
    inner_contour: np.ndarray  # vertex ids of the inner lip loop
    upper: np.ndarray  # inner upper lip, corner to corner
    lower: np.ndarray  # inner lower lip, corner to corner
    source_gap: float  # mean distance between the inner lips in the photo, pixels
    fade_gap: float  # extra opening over which the interior fades fully in, pixels
    teeth_height: float  # visible height of the upper teeth when wide open, pixels
    down: np.ndarray  # the face's down axis
    teeth: np.ndarray  # RGB of the teeth
    tongue: np.ndarray  # RGB of the tongue
    light: float  # brightness of the photo's light, 1 = a well lit studio portrait
    colourful: float  # 0 for a black-and-white photo, 1 when its lips show their usual colour
    lip_colours: np.ndarray  # [2, 3] RGB of the upper and the lower lip
    photo_teeth: PhotoTeeth | None

    @staticmethod
    def from_portrait(portrait: np.ndarray, mesh: Mesh, glasses: bool = False) -> MouthPainter:
        """``glasses``: the eye whites are seen through lenses (tinted, dimmed), so they say
        nothing about the light; a default white is used."""
        upper = np.array(topo.LIPS_UPPER_INNER)
        lower = np.array(topo.LIPS_LOWER_INNER)
        xy = mesh.vertices[:, :2]
        contour = np.array(topo.inner_mouth_contour())
        lip_colours = np.array(
            [
                _median_colour(
                    portrait, xy[list(topo.LIPS_UPPER_OUTER + topo.LIPS_UPPER_INNER[::-1])]
                ),
                _median_colour(
                    portrait, xy[list(topo.LIPS_LOWER_OUTER + topo.LIPS_LOWER_INNER[::-1])]
                ),
            ]
        )
        whites = DEFAULT_TEETH / TEETH_TINT if glasses else _eye_white(portrait, xy)
        light = float(np.clip(whites.mean() / 215.0, 0.35, 1.1))
        shown = _photo_teeth_colour(portrait, xy[contour])
        gap = _gap(xy, upper, lower)
        photo_teeth = None
        if shown is not None and gap >= 0.02 * mesh.frame.height:
            photo_teeth = _photo_teeth(portrait, xy, upper, lower)
        teeth = shown if shown is not None else np.clip(whites * TEETH_TINT, 0, 255)
        tongue = 0.5 * lip_colours[1] + 0.5 * TONGUE_TINT * light
        return MouthPainter(
            inner_contour=contour,
            upper=upper,
            lower=lower,
            source_gap=gap,
            fade_gap=(0.012 if photo_teeth is not None else 0.03) * mesh.frame.height,
            teeth_height=0.06 * mesh.frame.height,
            down=mesh.frame.down,
            teeth=teeth,
            tongue=tongue,
            light=light,
            colourful=float(np.clip(np.ptp(lip_colours.mean(axis=0)) / LIP_CHROMA, 0.0, 1.0)),
            lip_colours=lip_colours,
            photo_teeth=photo_teeth,
        )

    def paint(self, patch: np.ndarray, origin: tuple[int, int], dst_xy: np.ndarray) -> None:
        gap = _gap(dst_xy, self.upper, self.lower)
        if gap < self.source_gap:
            self._seal(patch, origin, dst_xy, gap)
            return
        opacity = float(np.clip((gap - self.source_gap) / self.fade_gap, 0.0, 1.0))
        if opacity <= 0.0:
            return
        contour = dst_xy[self.inner_contour] - origin
        box = box_around(contour, patch.shape)
        if is_empty(box):
            return
        x0, y0, x1, y1 = box
        size = (y1 - y0, x1 - x0)
        mask = polygon_mask(size, contour - (x0, y0))
        soft = max(1, round(gap * 0.05)) * 2 + 1
        mask = cv2.GaussianBlur(mask, (soft, soft), 0)
        inside = self._interior(dst_xy, np.array([origin[0] + x0, origin[1] + y0]), size, gap)
        blend_into(patch, box, [(mask * opacity, inside)])

    def _interior(
        self, dst_xy: np.ndarray, corner: np.ndarray, size: tuple[int, int], gap: float
    ) -> np.ndarray:
        """(H, W, 3) float32 colours of the mouth's inside over a box at frame pixel ``corner``.

        Drawn on a canvas aligned with the mouth (a column per pixel from corner to corner, a
        row per pixel of depth), where everything across the mouth is one value per column,
        then turned into place with one affine warp.
        """
        up_xy, low_xy = dst_xy[self.upper], dst_xy[self.lower]
        start, end = up_xy[0], up_xy[-1]
        width = max(float(np.linalg.norm(end - start)), 1.0)
        right = (end - start) / width
        down = np.array([-right[1], right[0]])
        # Large mouths are drawn at a coarser step and smoothed by the warp: same look, less
        # work per frame.
        unit = max(1.0, width / CANVAS_COLUMNS)
        pad = 3
        columns = int(np.ceil(width / unit)) + 2 * pad
        t = ((np.arange(columns) - pad) * (unit / width)).astype(np.float32)
        top = _curve_at(t, (up_xy - start) @ right / width, (up_xy - start) @ down)
        bottom = _curve_at(t, (low_xy - start) @ right / width, (low_xy - start) @ down)
        first = float(np.floor(min(top.min(), bottom.min()))) - pad * unit
        rows = int(np.ceil((max(top.max(), bottom.max()) - first) / unit)) + pad
        depth = (first + unit * np.arange(rows, dtype=np.float32))[:, None]
        below_upper = depth - top  # (rows, columns) pixels under the upper lip's inner edge
        above_lower = bottom - depth  # pixels over the lower lip's inner edge
        opening = np.maximum(bottom - top, 1.0)

        # Across the mouth: the arch of teeth turns away toward the corners, which darken.
        x = np.clip(2.0 * t - 1.0, -0.999, 0.999)
        angle = np.arcsin(x * np.sin(ARCH_HALF_ANGLE))
        corner_light = (1.0 - 0.5 * x**4)[:, None]

        # Throat: reddish at the lips, darkest in the middle.
        middle = _unit(np.minimum(below_upper, above_lower) / (0.5 * opening))
        shade = np.sqrt(middle)[..., None]
        dim = np.sqrt(self.light)
        edge_colour = (THROAT_EDGE * dim).astype(np.float32)
        deep_colour = ((THROAT_DEEP - THROAT_EDGE) * dim).astype(np.float32)
        out = (edge_colour + deep_colour * shade) * corner_light

        # Tongue: a dome behind the lower teeth, showing more as the jaw drops.
        lower_teeth = min(0.22 * gap, 0.5 * self.teeth_height)
        dome = np.sqrt(_unit(1.0 - (x / 0.8) ** 2))
        # It stays behind the lower teeth while the mouth is barely open (where a pink band
        # would read as a thicker lower lip) and rises into view on open vowels.
        rise = float(np.clip((gap - 0.5 * self.teeth_height) / (1.5 * self.teeth_height), 0, 1))
        tongue_top = bottom - 0.5 * lower_teeth - 0.36 * gap * rise * dome
        into = depth - tongue_top
        tongue_alpha = _unit(into / unit + 0.5) * (dome > 0)
        tongue_shade = 0.6 + 0.3 * _unit(into / max(0.15 * gap, 1.0))
        tongue = self.tongue.astype(np.float32) * (tongue_shade[..., None] * corner_light)
        out += tongue_alpha[..., None] * (tongue - out)

        # Teeth: the gaps between teeth, and the tips notched at each gap.
        pixels_per_tooth = TOOTH_ANGLE * np.cos(angle) * width / (2 * np.sin(ARCH_HALF_ANGLE))
        phase = angle / TOOTH_ANGLE
        to_gap = np.abs(phase - np.round(phase)) * pixels_per_tooth  # pixels to the nearest gap
        between = _unit(1.0 - to_gap / (0.9 * unit))
        notch = _unit(1.0 - to_gap / np.maximum(0.3 * pixels_per_tooth, 1.0))
        tips = 1.0 - 0.15 * notch**2
        taper = np.sqrt(_unit(1.0 - x * x))
        upper_height = min(0.38 * gap, self.teeth_height) * taper * tips
        if self.photo_teeth is not None:  # the photo's own upper teeth, no drawn ones beside
            upper_height = np.zeros_like(upper_height)
        lower_height = lower_teeth * taper * taper * tips
        # Both rows in one layer: where they would overlap (a nearly closed mouth), the upper.
        alpha = np.zeros_like(below_upper)
        tone = np.zeros_like(below_upper)
        for reach, height, lit in (
            (above_lower, lower_height, 0.95),
            (below_upper, upper_height, 1.0),
        ):
            if height.max() <= 0.0:
                continue
            row = _unit((height - reach) / unit + 0.5) * _unit(height) * (reach > -2.0)
            # Darker where the lip shades the tooth's root, lighter at the tip.
            along = _unit(reach / np.maximum(height, 1.0))
            row_tone = lit * (0.9 + 0.1 * along) * (1.0 - 0.3 * between * along)
            tone = np.where(row > 0.0, row_tone, tone)
            alpha = np.maximum(alpha, row)
        teeth = self.teeth.astype(np.float32) * (tone[..., None] * corner_light)
        out += alpha[..., None] * (teeth - out)

        if self.photo_teeth is not None:
            self._photo_teeth_over(out, t, below_upper, above_lower, width, unit)

        # Shadow along the lips' inner edges.
        edge = _unit(1.0 - np.minimum(below_upper, above_lower) / max(0.06 * gap, 1.0))
        out *= (1.0 - 0.2 * edge)[..., None]
        if self.colourful < 1.0:  # a black-and-white (or faded) photo: as grey as its lips
            grey = out.mean(axis=2, keepdims=True)
            out = grey + np.float32(self.colourful) * (out - grey)

        # Canvas (column, row) -> box pixels.
        origin = start + (first * down) - pad * right - corner
        to_box = np.column_stack([unit * right, unit * down, origin]).astype(np.float64)
        return cv2.warpAffine(
            out, to_box, (size[1], size[0]), flags=cv2.INTER_LINEAR,
            borderMode=cv2.BORDER_REPLICATE,
        )  # fmt: skip

    def _photo_teeth_over(
        self,
        out: np.ndarray,
        t: np.ndarray,
        below_upper: np.ndarray,
        above_lower: np.ndarray,
        width: float,
        unit: float,
    ) -> None:
        """The photo's own teeth, each row carried by its lip, over the drawn ones (in place)."""
        photo = self.photo_teeth
        assert photo is not None
        steps = np.linspace(0.0, 1.0, SAMPLES)
        scale = np.float32(photo.width / width)
        tc = _unit(t)
        for curve, reach, distance, sign in (
            (photo.lower, photo.reach_lower, above_lower, -1.0),
            (photo.upper, photo.reach_upper, below_upper, 1.0),
        ):
            limit = np.interp(tc, steps, reach).astype(np.float32)
            if limit.max() <= 0.0:
                continue
            d = distance * scale
            along_x = np.interp(tc, steps, curve[:, 0]).astype(np.float32)
            along_y = np.interp(tc, steps, curve[:, 1]).astype(np.float32)
            map_x = along_x + d * np.float32(sign * photo.down[0])
            map_y = along_y + d * np.float32(sign * photo.down[1])
            colour = cv2.remap(
                photo.image, map_x, map_y, cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE
            ).astype(np.float32)
            alpha = _unit((limit - d) / unit + 0.5) * (distance > -2.0)
            out += alpha[..., None] * (colour - out)

    def _seal(
        self, patch: np.ndarray, origin: tuple[int, int], dst_xy: np.ndarray, gap: float
    ) -> None:
        """Lips closer than in the photo: cover the seam with lip colour, fading in as they meet."""
        opacity = float(np.clip((self.source_gap - gap) / (0.6 * self.source_gap), 0.0, 1.0))
        if opacity <= 0.0:
            return
        upper = dst_xy[self.upper] - origin
        lower = dst_xy[self.lower] - origin
        seam = (upper + lower) / 2
        # Thickest in the middle, nothing at the corners.
        taper = np.sin(np.linspace(0.0, np.pi, len(seam)))[:, None]
        half = taper * (0.2 * self.source_gap + 1.0) * self.down
        top = seam - np.abs(seam - upper) - half
        bottom = seam + np.abs(lower - seam) + half
        box = box_around(np.vstack([top, bottom]), patch.shape)
        if is_empty(box):
            return
        x0, y0, x1, y1 = box
        size = (y1 - y0, x1 - x0)
        shift = np.array([x0, y0])
        upper_half = polygon_mask(size, np.vstack([top, seam[::-1]]) - shift)
        band = polygon_mask(size, np.vstack([top, bottom[::-1]]) - shift)
        band = cv2.GaussianBlur(band, (3, 3), 0)
        colour = self.lip_colours[1] + upper_half[..., None] * (
            self.lip_colours[0] - self.lip_colours[1]
        )
        line = np.zeros(size, np.uint8)
        cv2.polylines(line, [to_fixed(seam - shift)], False, 255, 1, cv2.LINE_AA, SUBPIXEL_BITS)
        line_alpha = cv2.GaussianBlur(line.astype(np.float32) / 255.0, (3, 3), 0) * 0.6
        seam_colour = self.lip_colours.mean(axis=0) * 0.55
        blend_into(patch, box, [(band * opacity, colour), (line_alpha * opacity, seam_colour)])


def _unit(values: np.ndarray) -> np.ndarray:
    """``values`` limited to [0, 1] (two ufunc calls: cheaper than np.clip on small arrays)."""
    return np.minimum(np.maximum(values, 0.0), 1.0)


def _curve_at(t: np.ndarray, along: np.ndarray, values: np.ndarray) -> np.ndarray:
    """A lip curve (``values`` at positions ``along``, corner to corner) read at ``t``."""
    return np.interp(t, np.maximum.accumulate(along), values).astype(np.float32)


def _median_colour(portrait: np.ndarray, polygon: np.ndarray) -> np.ndarray:
    """Median RGB of the photo inside ``polygon`` (a lip), or a neutral lip tone if it is tiny."""
    pixels = _pixels_inside(portrait, polygon)
    if len(pixels) < 12:
        return np.array([180.0, 110.0, 110.0])
    return np.median(pixels.astype(np.float64), axis=0)


def _pixels_inside(portrait: np.ndarray, polygon: np.ndarray) -> np.ndarray:
    x0, y0 = np.maximum(np.floor(polygon.min(axis=0)).astype(int), 0)
    x1, y1 = np.ceil(polygon.max(axis=0)).astype(int) + 1
    crop = portrait[y0:y1, x0:x1]
    mask = np.zeros(crop.shape[:2], np.uint8)
    cv2.fillPoly(mask, [np.round(polygon - (x0, y0)).astype(np.int32)], 1)
    return crop[mask.astype(bool)]


def _gap(xy: np.ndarray, upper: np.ndarray, lower: np.ndarray) -> float:
    """Mean distance between the three middle pairs of inner lip points."""
    middle = slice(len(upper) // 2 - 1, len(upper) // 2 + 2)
    return float(np.linalg.norm(xy[lower[middle]] - xy[upper[middle]], axis=1).mean())


def _photo_teeth_colour(portrait: np.ndarray, contour: np.ndarray) -> np.ndarray | None:
    """The colour of the photo's own teeth (bright, unsaturated pixels inside the lips), or
    None when the photo shows no teeth."""
    pixels = _pixels_inside(portrait, contour).astype(np.float64)
    if len(pixels) >= 12:
        brightness = pixels.mean(axis=1)
        bright = pixels[brightness >= np.percentile(brightness, 75)]
        if bright.mean() > 150 and np.ptp(bright.mean(axis=0)) < 60:
            return np.asarray(bright.mean(axis=0))
    return None


def _eye_white(portrait: np.ndarray, xy: np.ndarray) -> np.ndarray:
    """RGB of the eye whites: the brightest eighth of both eye openings, or a default."""
    pixels = [
        _pixels_inside(portrait, xy[list(topo.eye_contour(upper, lower))])
        for upper, lower in (
            (topo.RIGHT_EYE_UPPER, topo.RIGHT_EYE_LOWER),
            (topo.LEFT_EYE_UPPER, topo.LEFT_EYE_LOWER),
        )
    ]
    eyes = np.vstack(pixels).astype(np.float64)
    if len(eyes) < 16:
        return DEFAULT_TEETH / TEETH_TINT
    brightness = eyes.mean(axis=1)
    white = eyes[brightness >= np.percentile(brightness, 87.5)].mean(axis=0)
    # Eye whites are never quite white in a photo; teeth are about as bright.
    return np.asarray(np.clip(white * 1.05, 0, 255))


def _photo_teeth(
    portrait: np.ndarray, xy: np.ndarray, upper: np.ndarray, lower: np.ndarray
) -> PhotoTeeth:
    """The photo's mouth interior and its lip curves, sampled corner to corner."""
    up, low = xy[upper], xy[lower]
    start, end = up[0], up[-1]
    width = max(float(np.linalg.norm(end - start)), 1.0)
    right = (end - start) / width
    down = np.array([-right[1], right[0]])
    steps = np.linspace(0.0, 1.0, SAMPLES)

    def sampled(points: np.ndarray) -> np.ndarray:
        along = np.maximum.accumulate((points - start) @ right / width)
        return np.stack([np.interp(steps, along, points[:, i]) for i in (0, 1)], axis=1)

    up_curve, low_curve = sampled(up), sampled(low)
    gap = np.maximum((low_curve - up_curve) @ down, 0.0)
    margin = max(4, round(0.5 * width))
    x0, y0 = np.maximum(np.floor(np.vstack([up, low]).min(axis=0)).astype(int) - margin, 0)
    x1, y1 = np.ceil(np.vstack([up, low]).max(axis=0)).astype(int) + margin
    offset = np.array([x0, y0], dtype=np.float64)
    return PhotoTeeth(
        image=np.ascontiguousarray(portrait[y0:y1, x0:x1]),
        offset=offset,
        upper=up_curve - offset,
        lower=low_curve - offset,
        down=down,
        width=width,
        reach_upper=UPPER_SHARE * gap,
        # Lower teeth only where the photo shows a usable band of them.
        reach_lower=np.where((1.0 - UPPER_SHARE) * gap >= 2.5, (1.0 - UPPER_SHARE) * gap, 0.0),
    )
