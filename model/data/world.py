"""A procedural world of captioned videos: one flat-coloured shape moving on a plain background.

Objects bounce off the frame's walls (as the digits of Moving MNIST do), so a clip continued for any
length keeps its object in view. A training clip is placed so that it never reaches a wall; the
continuation task also sees `at_wall` clips, which do.

Everything is deterministic from a seed. Shapes are rendered with 4x supersampling so their edges are
anti-aliased like real footage (and like what a decoder produces), which keeps the tokenizer honest.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

# Saturated, distinct hues (RGB 0..255). Names here are the canonical attribute values.
COLORS: dict[str, tuple[int, int, int]] = {
    "red": (230, 30, 30),
    "orange": (255, 140, 0),
    "yellow": (250, 230, 20),
    "green": (30, 190, 40),
    "cyan": (0, 220, 230),
    "blue": (30, 60, 240),
    "purple": (150, 40, 210),
    "white": (250, 250, 250),
}
SHAPES = ("circle", "square", "triangle")
MOTIONS = ("left", "right", "up", "down", "still")
# Backgrounds: plain greys with brightness contrast to the object (H.264 halves colour resolution).
BACKGROUNDS: dict[str, tuple[int, int, int]] = {
    "black": (16, 16, 16),
    "dark gray": (64, 64, 64),
    "light gray": (200, 200, 200),
}

# Colour/shape/motion combinations never shown in training: the eval set's held-out prompts.
HELD_OUT_COMBOS: frozenset[tuple[str, str, str]] = frozenset(
    {
        ("red", "triangle", "up"),
        ("orange", "circle", "left"),
        ("yellow", "square", "down"),
        ("green", "triangle", "right"),
        ("cyan", "square", "still"),
        ("blue", "circle", "up"),
        ("purple", "square", "left"),
        ("white", "triangle", "down"),
        ("red", "square", "still"),
        ("green", "circle", "down"),
        ("blue", "triangle", "left"),
        ("yellow", "circle", "right"),
    }
)

_DIRS = {"left": (-1.0, 0.0), "right": (1.0, 0.0), "up": (0.0, -1.0), "down": (0.0, 1.0), "still": (0.0, 0.0)}


def luma(rgb: tuple[int, int, int]) -> float:
    r, g, b = rgb
    return 0.299 * r + 0.587 * g + 0.114 * b


@dataclass(frozen=True)
class Scene:
    color: str
    shape: str
    motion: str
    background: str
    size: float  # half-extent in units of the frame size (0..0.5)
    x0: float  # start centre, in units of the frame size (0..1)
    y0: float
    speed: float  # frame sizes per frame

    def center(self, t: int) -> tuple[float, float]:
        dx, dy = _DIRS[self.motion]
        lo, hi = walls(self.size)
        return _reflect(self.x0 + dx * self.speed * t, lo, hi), _reflect(self.y0 + dy * self.speed * t, lo, hi)


def walls(size: float) -> tuple[float, float]:
    """Range of an object's centre (frame units) inside which it stays in view: it bounces at the ends."""
    return size + 0.02, 1.0 - size - 0.02


def _reflect(p: float, lo: float, hi: float) -> float:
    """p folded into [lo, hi] as a bouncing point moves: a triangle wave of period 2 (hi - lo)."""
    span = hi - lo
    if lo <= p <= hi or span <= 0:
        return p
    u = (p - lo) % (2 * span)
    return lo + (u if u <= span else 2 * span - u)


def sample_scene(
    rng: np.random.Generator,
    frames: int = 17,
    color: str | None = None,
    shape: str | None = None,
    motion: str | None = None,
    allow_held_out: bool = False,
    at_wall: bool = False,
) -> Scene:
    """Draw a scene; attributes given are kept, the rest drawn. Held-out combos are redrawn unless allowed.
    The object stays clear of the walls for `frames` frames, or with at_wall (a moving object) meets one
    and bounces back within them."""
    while True:
        c = color or COLORS_LIST[rng.integers(len(COLORS_LIST))]
        s = shape or SHAPES[rng.integers(len(SHAPES))]
        m = motion or MOTIONS[rng.integers(len(MOTIONS))]
        if allow_held_out or (c, s, m) not in HELD_OUT_COMBOS:
            break
        if color and shape and motion:
            break  # the caller asked for exactly this combination
    bgs = [b for b, rgb in BACKGROUNDS.items() if abs(luma(rgb) - luma(COLORS[c])) >= 50]
    bg = bgs[rng.integers(len(bgs))]
    size = float(rng.uniform(0.10, 0.19))
    speed = float(rng.uniform(0.018, 0.028)) if m != "still" else 0.0
    travel = speed * (frames - 1)
    dx, dy = _DIRS[m]
    lo, hi = walls(size)

    def start(d: float) -> float:
        if at_wall and d > 0:
            return float(rng.uniform(max(lo, hi - travel), hi))
        if at_wall and d < 0:
            return float(rng.uniform(lo, min(hi, lo + travel)))
        if d > 0:
            return float(rng.uniform(lo, max(lo, hi - travel)))
        if d < 0:
            return float(rng.uniform(min(hi, lo + travel), hi))
        return float(rng.uniform(lo, hi))

    return Scene(c, s, m, bg, size, start(dx), start(dy), speed)


COLORS_LIST = tuple(COLORS)


def _coverage(shape: str, cx: float, cy: float, r: float, n: int, ss: int = 4) -> np.ndarray:
    """Fraction of each pixel covered by the shape (n x n), by ss x ss supersampling of its bounding box."""
    out = np.zeros((n, n), dtype=np.float32)
    ext = r * 1.3
    x0, x1 = max(int((cx - ext) * n) - 1, 0), min(int((cx + ext) * n) + 2, n)
    y0, y1 = max(int((cy - ext) * n) - 1, 0), min(int((cy + ext) * n) + 2, n)
    if x0 >= x1 or y0 >= y1:
        return out
    gx = (np.arange(x0 * ss, x1 * ss) + 0.5) / (n * ss)
    gy = (np.arange(y0 * ss, y1 * ss) + 0.5) / (n * ss)
    x, y = np.meshgrid(gx, gy)
    if shape == "circle":
        inside = (x - cx) ** 2 + (y - cy) ** 2 <= r * r
    elif shape == "square":
        h = r * 0.9  # about the circle's area
        inside = (np.abs(x - cx) <= h) & (np.abs(y - cy) <= h)
    elif shape == "triangle":  # upright, apex at the top
        R = r * 1.2
        top, base, half = cy - R, cy + R * 0.6, R * 0.95
        t = (y - top) / (base - top)  # 0 at the apex, 1 at the base
        inside = (t >= 0) & (t <= 1) & (np.abs(x - cx) <= half * t)
    else:
        raise ValueError(f"unknown shape {shape}")
    out[y0:y1, x0:x1] = inside.reshape(y1 - y0, ss, x1 - x0, ss).mean(axis=(1, 3))
    return out


def render(scene: Scene, frames: int = 17, size: int = 64, start: int = 0) -> np.ndarray:
    """Render frames start .. start + frames - 1 to uint8 (T, H, W, 3)."""
    return render_times(scene, range(start, start + frames), size)


def render_times(scene: Scene, times, size: int = 64) -> np.ndarray:
    """Render the scene at these frame indices to uint8 (len(times), H, W, 3)."""
    bg = np.array(BACKGROUNDS[scene.background], dtype=np.float32)
    fg = np.array(COLORS[scene.color], dtype=np.float32)
    out = np.empty((len(times), size, size, 3), dtype=np.uint8)
    for i, t in enumerate(times):
        cx, cy = scene.center(int(t))
        a = _coverage(scene.shape, cx, cy, scene.size, size)[..., None]
        out[i] = np.clip(bg * (1 - a) + fg * a + 0.5, 0, 255).astype(np.uint8)
    return out


def reference_pairs(count: int, seed: int, frames: int = 17, size: int = 64, max_gap: int = 80) -> tuple[np.ndarray, np.ndarray]:
    """(references (N, H, W, 3), clips (N, T, H, W, 3)): each scene's frame 0, and `frames` frames of it
    starting 0..max_gap frames later (moved on, maybe bounced), as `extend` meets them: its input's last
    frame, then windows up to ten seconds on."""
    rng = np.random.default_rng(seed)
    refs, clips = [], []
    for _ in range(count):
        scene = sample_scene(rng, frames)
        gap = int(rng.integers(0, max_gap + 1))
        x = render_times(scene, [0, *range(gap, gap + frames)], size)
        refs.append(x[0])
        clips.append(x[1:])
    return np.stack(refs), np.stack(clips)


def to_tensor_frames(video: np.ndarray):
    """uint8 (T, H, W, 3) -> float tensor (T, 3, H, W) in [-1, 1]."""
    import torch

    return torch.from_numpy(video).permute(0, 3, 1, 2).float().div(127.5).sub(1.0)


def render_clips(count: int, seed: int, frames: int = 17, size: int = 64, allow_held_out: bool = False, at_wall: bool = False):
    """(scenes, uint8 clips (N, T, H, W, 3)) drawn deterministically from `seed`; at_wall: moving objects
    that bounce off a wall within the clip."""
    rng = np.random.default_rng(seed)
    pick = (lambda: MOTIONS[:-1][rng.integers(len(MOTIONS) - 1)]) if at_wall else (lambda: None)
    scenes = [sample_scene(rng, frames, motion=pick(), allow_held_out=allow_held_out, at_wall=at_wall) for _ in range(count)]
    clips = np.stack([render(s, frames, size) for s in scenes]) if scenes else np.zeros((0, frames, size, size, 3), np.uint8)
    return scenes, clips
