"""Analytic reading of a clip of the shape world (no learned model), adherence and clip metrics.

`read_clip` finds the one object of each frame and reads background, colour, shape and motion:

  background  median colour of the border pixels -> nearest BACKGROUNDS entry (RGB distance).
  object      per frame, distance of every pixel from the measured background colour, thresholded at half
              the object's contrast (half the 99.5th-percentile distance, floor MIN_CONTRAST so an empty
              frame has no object); the largest 8-connected component with its holes filled. A component
              under MIN_AREA_FRAC of the frame counts as "not found".
  colour      median RGB of the mask pixels eroded by ~1/64 of the frame (anti-aliased and chroma-subsampled
              edges left out), pooled over the found frames -> HSV: low saturation and bright = white,
              low saturation otherwise = None (grey), else the canonical colour of nearest hue.
  shape       how fully the object fills its smallest enclosing circle, rotated rectangle and triangle
              (cv2.minEnclosingCircle / minAreaRect / minEnclosingTriangle of its outline, traced on a
              bilinearly upsampled crop of the distance map for sub-pixel edges): each fill is 1 for its own
              ideal shape and clearly lower for the others (a disc fills pi/4 of its square and 0.60 of its
              triangle, a square 2/pi of its circle, a triangle at most ~0.5 of its rectangle), so the
              shape with the highest fill wins in each frame, then a majority vote over the found frames
              (frames where the object touches the frame border only vote if no other frame was found).
  motion      Theil-Sen (median pairwise) line fit of the centroid track over the found frames; its
              displacement over the found span, in units of the frame size: below STILL_DISPLACEMENT ->
              "still", else the dominant axis and sign (+x right, -x left, +y down, -y up).

Steadiness (ClipReading.steadiness, in [0, 1], higher is steadier):
    steadiness = clip(1 - lost - jumps - jitter, 0, 1)
  lost    fraction of frames where no object was found;
  jumps   fraction of steps between consecutive found frames (per frame of gap) that depart from the
          fitted constant velocity by more than JUMP_FRAC of the frame size (teleports, shuffled or
          reversed frames). A ratio to the median step (the obvious choice) does not work: shuffling a
          moving clip inflates the median step along with every step;
  jitter  coefficient of variation of the mask area over the found frames, clipped to [0, 1]
          (an object that grows, shrinks or flickers in size).
A rendered clip scores ~0.97-1; a clip that finds nothing scores 0.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from model.data.world import BACKGROUNDS, COLORS, SHAPES

MIN_CONTRAST = 24.0  # RGB distance (0..441) below which nothing counts as an object
MIN_AREA_FRAC = 0.003  # a largest component smaller than this fraction of the frame is "not found"
STILL_DISPLACEMENT = 0.08  # frame sizes
JUMP_FRAC = 0.04  # frame sizes of departure from the fitted velocity that counts as a jump
WHITE_MAX_SAT = 0.3
WHITE_MIN_VALUE = 0.55
SHAPE_CROP_PX = 72  # the object is traced on a crop upsampled to about this many pixels across


@dataclass
class ClipReading:
    background: str
    color: str | None
    shape: str | None
    motion: str | None
    centroids: list[tuple[float, float] | None]  # (x, y) per frame in frame units (0..1), None if not found
    areas: list[float]  # mask area per frame as a fraction of the frame (0 if not found)
    steadiness: float
    found_frac: float
    displacement: tuple[float, float] = (0.0, 0.0)  # fitted (dx, dy) over the found span, frame units
    shape_votes: dict[str, int] = field(default_factory=dict)


def _hsv(rgb: np.ndarray) -> tuple[float, float, float]:
    """RGB 0..255 -> (hue degrees 0..360, saturation 0..1, value 0..1)."""
    r, g, b = (float(v) / 255.0 for v in rgb)
    mx, mn = max(r, g, b), min(r, g, b)
    d = mx - mn
    if d <= 1e-9:
        h = 0.0
    elif mx == r:
        h = 60.0 * (((g - b) / d) % 6.0)
    elif mx == g:
        h = 60.0 * ((b - r) / d + 2.0)
    else:
        h = 60.0 * ((r - g) / d + 4.0)
    return h, (d / mx if mx > 0 else 0.0), mx


_HUES = {name: _hsv(np.array(rgb))[0] for name, rgb in COLORS.items() if name != "white"}


def classify_color(rgb) -> str | None:
    """Nearest canonical colour of an RGB triple by hue; white when unsaturated and bright; None when grey."""
    h, s, v = _hsv(np.asarray(rgb, dtype=np.float64))
    if s < WHITE_MAX_SAT:
        return "white" if v >= WHITE_MIN_VALUE else None
    if v < 0.15:
        return None  # too dark to have a hue
    return min(_HUES, key=lambda n: min(abs(h - _HUES[n]), 360.0 - abs(h - _HUES[n])))


def classify_background(rgb) -> str:
    rgb = np.asarray(rgb, dtype=np.float64)
    return min(BACKGROUNDS, key=lambda n: float(np.sum((rgb - np.array(BACKGROUNDS[n])) ** 2)))


def _border(frames: np.ndarray) -> np.ndarray:
    """Border pixels of all frames: (N, 3)."""
    f = frames
    return np.concatenate([f[:, 0].reshape(-1, 3), f[:, -1].reshape(-1, 3), f[:, :, 0].reshape(-1, 3), f[:, :, -1].reshape(-1, 3)])


def _largest_component(binary: np.ndarray):
    """(filled mask uint8 0/1, area, outer contour) of the largest 8-connected component, or None."""
    import cv2

    n, labels, stats, _ = cv2.connectedComponentsWithStats(binary, connectivity=8)
    if n <= 1:
        return None
    k = 1 + int(np.argmax(stats[1:, cv2.CC_STAT_AREA]))
    comp = (labels == k).astype(np.uint8)
    contours, _ = cv2.findContours(comp, cv2.RETR_EXTERNAL, cv2.CHAIN_APPROX_NONE)
    contour = max(contours, key=len)
    filled = np.zeros_like(comp)
    cv2.drawContours(filled, [contour], -1, 1, thickness=cv2.FILLED)
    filled |= comp
    return filled, int(filled.sum()), contour, stats[k]


def shape_fills(contour: np.ndarray) -> dict[str, float]:
    """Fill of the smallest enclosing circle / rectangle / triangle by the polygon `contour` (each 1 for its ideal)."""
    import cv2

    pts = contour.reshape(-1, 1, 2).astype(np.float32)
    area = float(cv2.contourArea(pts))
    if area <= 0:
        return {s: 0.0 for s in SHAPES}
    hull = cv2.convexHull(pts)
    (_, _), r = cv2.minEnclosingCircle(hull)
    (_, _), (w, h), _ = cv2.minAreaRect(hull)
    tri_area, _ = cv2.minEnclosingTriangle(hull)
    return {
        "circle": area / max(np.pi * r * r, 1e-9),
        "square": area / max(w * h, 1e-9),
        "triangle": area / max(float(tri_area), 1e-9),
    }


def _frame_shape(dist: np.ndarray, thr: float, stats) -> str | None:
    """Shape of the object whose component has cv2 `stats`, traced on an upsampled crop of `dist`."""
    import cv2

    H, W = dist.shape
    x, y, w, h = (int(v) for v in stats[:4])
    pad = 2
    x0, y0, x1, y1 = max(x - pad, 0), max(y - pad, 0), min(x + w + pad, W), min(y + h + pad, H)
    crop = dist[y0:y1, x0:x1]
    scale = int(np.clip(np.ceil(SHAPE_CROP_PX / max(w, h, 1)), 1, 8))
    if scale > 1:
        crop = cv2.resize(crop, (crop.shape[1] * scale, crop.shape[0] * scale), interpolation=cv2.INTER_LINEAR)
    comp = _largest_component((crop > thr).astype(np.uint8))
    if comp is None or comp[1] < 12:
        return None
    fills = shape_fills(comp[2])
    return max(fills, key=fills.get)


def _theil_sen(t: np.ndarray, v: np.ndarray) -> float:
    i, j = np.triu_indices(len(t), k=1)
    return float(np.median((v[j] - v[i]) / (t[j] - t[i])))


def read_clip(clip: np.ndarray) -> ClipReading:
    """Read background, colour, shape, motion and steadiness of a uint8 (T, H, W, 3) clip."""
    import cv2

    clip = np.asarray(clip)
    if clip.ndim != 4 or clip.shape[-1] != 3:
        raise ValueError(f"expected (T, H, W, 3), got {clip.shape}")
    T, H, W, _ = clip.shape
    if min(H, W) < 16:
        raise ValueError(f"frames too small to read: {H}x{W}")
    bg_rgb = np.median(_border(clip), axis=0)
    background = classify_background(bg_rgb)
    f32 = clip.astype(np.float32)
    dists = np.sqrt(((f32 - bg_rgb.astype(np.float32)) ** 2).sum(-1))  # (T, H, W)

    er = max(1, int(round(min(H, W) / 64)))
    kernel = np.ones((2 * er + 1, 2 * er + 1), np.uint8)
    min_area = MIN_AREA_FRAC * H * W
    centroids: list[tuple[float, float] | None] = []
    areas: list[float] = []
    color_px: list[np.ndarray] = []
    votes: list[str] = []
    edge_votes: list[str] = []
    for t in range(T):
        d = dists[t]
        thr = max(0.5 * float(np.percentile(d, 99.5)), MIN_CONTRAST)
        comp = _largest_component((d > thr).astype(np.uint8))
        if comp is None or comp[1] < min_area:
            centroids.append(None)
            areas.append(0.0)
            continue
        mask, area, _, stats = comp
        ys, xs = np.nonzero(mask)
        centroids.append(((xs.mean() + 0.5) / W, (ys.mean() + 0.5) / H))
        areas.append(area / (H * W))
        inner = cv2.erode(mask, kernel)
        px = clip[t][inner.astype(bool)] if inner.sum() >= 9 else clip[t][mask.astype(bool)]
        color_px.append(px)
        s = _frame_shape(d, thr, stats)
        if s is not None:
            x, y, w, h = (int(v) for v in stats[:4])
            touches = x <= 0 or y <= 0 or x + w >= W or y + h >= H
            (edge_votes if touches else votes).append(s)

    found = [t for t in range(T) if centroids[t] is not None]
    found_frac = len(found) / T
    color = classify_color(np.median(np.concatenate(color_px), axis=0)) if color_px else None
    ballot = votes or edge_votes
    shape_votes = {s: ballot.count(s) for s in SHAPES if ballot.count(s)}
    shape = max(shape_votes, key=lambda s: (shape_votes[s], -SHAPES.index(s))) if shape_votes else None

    motion, disp, steadiness = None, (0.0, 0.0), 0.0
    if len(found) >= 2:
        tt = np.array(found, dtype=np.float64)
        xy = np.array([centroids[t] for t in found], dtype=np.float64)
        vx, vy = _theil_sen(tt, xy[:, 0]), _theil_sen(tt, xy[:, 1])
        span = tt[-1] - tt[0]
        disp = (vx * span, vy * span)
        if np.hypot(*disp) < STILL_DISPLACEMENT:
            motion = "still"
        elif abs(disp[0]) >= abs(disp[1]):
            motion = "right" if disp[0] > 0 else "left"
        else:
            motion = "down" if disp[1] > 0 else "up"
        gaps = np.diff(tt)
        steps = np.diff(xy, axis=0) / gaps[:, None]
        jumps = float(np.mean(np.hypot(steps[:, 0] - vx, steps[:, 1] - vy) > JUMP_FRAC))
        a = np.array([areas[t] for t in found])
        jitter = min(float(a.std() / max(a.mean(), 1e-9)), 1.0)
        steadiness = float(np.clip(1.0 - (1.0 - found_frac) - jumps - jitter, 0.0, 1.0))
    elif len(found) == 1:
        steadiness = float(np.clip(found_frac, 0.0, 1.0))

    return ClipReading(
        background=background,
        color=color,
        shape=shape,
        motion=motion,
        centroids=centroids,
        areas=areas,
        steadiness=steadiness,
        found_frac=found_frac,
        displacement=(float(disp[0]), float(disp[1])),
        shape_votes=shape_votes,
    )


def adherence(reading: ClipReading, color: str, shape: str, motion: str) -> dict[str, bool]:
    """Whether the reading matches the asked attributes: keys color, shape, motion, all."""
    out = {"color": reading.color == color, "shape": reading.shape == shape, "motion": reading.motion == motion}
    out["all"] = all(out.values())
    return out


def psnr(a: np.ndarray, b: np.ndarray) -> float:
    """Peak signal-to-noise ratio in dB of two same-shape uint8 arrays (peak 255); inf when identical."""
    a, b = np.asarray(a), np.asarray(b)
    if a.shape != b.shape:
        raise ValueError(f"shape mismatch {a.shape} vs {b.shape}")
    mse = float(np.mean((a.astype(np.float64) - b.astype(np.float64)) ** 2))
    if mse == 0.0:
        return float("inf")
    return float(10.0 * np.log10(255.0**2 / mse))
