"""Masks for inpainting and outpainting on the latent grid (True = hidden: the model makes it).

Training draws them as VideoPoet does: for inpainting a box of random size and place (over every
latent frame, or a run of them), for outpainting borders of random width on one or more sides. A
request from a user (a pixel box, a mask image, padding) becomes the latent cells it touches: a cell
is hidden when any of its pixels is, so nothing the user asked to replace leaks through a kept cell.
"""

from __future__ import annotations

import numpy as np
import torch

from .errors import InvalidInput


def draw_inpaint(rng: np.random.Generator, shape: tuple[int, int, int]) -> np.ndarray:
    """A random box (T', h, w) bool: 2..h-2 cells a side anywhere, on all latent frames half the time
    and on a random run of them otherwise."""
    T, h, w = shape
    bh, bw = int(rng.integers(2, max(3, h - 1))), int(rng.integers(2, max(3, w - 1)))
    y, x = int(rng.integers(0, h - bh + 1)), int(rng.integers(0, w - bw + 1))
    t0, t1 = 0, T
    if rng.random() >= 0.5:
        t0 = int(rng.integers(0, T))
        t1 = int(rng.integers(t0 + 1, T + 1))
    m = np.zeros(shape, dtype=bool)
    m[t0:t1, y : y + bh, x : x + bw] = True
    return m


def draw_outpaint(rng: np.random.Generator, shape: tuple[int, int, int]) -> np.ndarray:
    """Random borders (T', h, w) bool: each side hidden with chance 1/2 (at least one), 1..w/2-1 cells
    wide, on every latent frame (the known part is a rectangle the model widens)."""
    T, h, w = shape
    sides = rng.random(4) < 0.5
    if not sides.any():
        sides[int(rng.integers(4))] = True
    widths = [int(rng.integers(1, max(2, n // 2))) for n in (w, h, w, h)]  # left, top, right, bottom
    m = np.zeros((h, w), dtype=bool)
    if sides[0]:
        m[:, : widths[0]] = True
    if sides[1]:
        m[: widths[1], :] = True
    if sides[2]:
        m[:, w - widths[2] :] = True
    if sides[3]:
        m[h - widths[3] :, :] = True
    return np.broadcast_to(m, shape).copy()


def latent_cells(pixel_mask: torch.Tensor, cell: int) -> torch.Tensor:
    """(H, W) bool pixels -> (H/cell, W/cell) bool: a cell is hidden if any of its pixels is."""
    H, W = pixel_mask.shape
    if H % cell or W % cell:
        raise ValueError(f"mask size {W}x{H} is not a multiple of the {cell}-px latent cell")
    return pixel_mask.view(H // cell, cell, W // cell, cell).any(dim=3).any(dim=1)


def check_mask(cells: torch.Tensor, what: str) -> None:
    """Refuse a mask that hides nothing or everything (nothing to make / nothing to keep)."""
    if not bool(cells.any()):
        raise InvalidInput(f"{what} hides no part of the frame the model sees; nothing to generate")
    if bool(cells.all()):
        raise InvalidInput(f"{what} hides the whole frame; use `videopoet generate` to make a clip from text alone")


def box_mask(box: tuple[int, int, int, int], width: int, height: int) -> torch.Tensor:
    """(H, W) bool from a pixel box X,Y,W,H in a width x height frame; refused if it is empty or outside."""
    x, y, bw, bh = box
    if bw <= 0 or bh <= 0:
        raise InvalidInput(f"box {x},{y},{bw},{bh}: width and height must be positive")
    x0, y0, x1, y1 = max(0, x), max(0, y), min(width, x + bw), min(height, y + bh)
    if x0 >= x1 or y0 >= y1:
        raise InvalidInput(f"box {x},{y},{bw},{bh} lies outside the {width}x{height} frame")
    m = torch.zeros(height, width, dtype=torch.bool)
    m[y0:y1, x0:x1] = True
    return m


def feather(cells: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
    """Latent-cell mask -> (H, W) float weight of the generated clip: 1 inside, 0 one cell away from it,
    ramping linearly across the one kept cell that borders the hidden region (no hard seam)."""
    H, W = size
    hard = torch.nn.functional.interpolate(cells[None, None].float(), size=(H, W), mode="nearest")[0, 0]
    # A box blur two cells wide, doubled and clipped: 1 at the hidden region's edge, falling linearly to 0
    # one cell away; max() keeps the inside at exactly 1.
    k = max(1, H // cells.shape[0])
    soft = torch.nn.functional.avg_pool2d(hard[None, None], 2 * k + 1, stride=1, padding=k, count_include_pad=False)[0, 0]
    return torch.maximum(hard, (soft * 2).clamp(max=1.0))


def blend(video: torch.Tensor, made: torch.Tensor, cells: torch.Tensor) -> torch.Tensor:
    """The made clip inside the hidden cells, the input `video` outside, across the one-cell ramp (feather)."""
    w = feather(cells, tuple(video.shape[-2:])).to(made)
    return w * made + (1 - w) * video


def pixel_to_model(mask: torch.Tensor, size: int) -> torch.Tensor:
    """A full-resolution (H, W) bool mask -> the model's view (size, size): centre square, and a model
    pixel is hidden if any input pixel under it is (max-pooling, so small regions are never lost)."""
    H, W = mask.shape
    side = min(H, W)
    y0, x0 = (H - side) // 2, (W - side) // 2
    crop = mask[y0 : y0 + side, x0 : x0 + side].float()[None, None]
    return torch.nn.functional.adaptive_max_pool2d(crop, size)[0, 0] > 0.5


def paste_back(full: np.ndarray, made: torch.Tensor, cells: torch.Tensor) -> np.ndarray:
    """Composite a made clip (T, 3, s, s) in [-1, 1] into the full-resolution frames (T, H, W, 3) uint8
    whose centre square it covers: the made clip (resized to that square) inside the hidden cells,
    the input everywhere else, blended across one latent cell at the border."""
    import cv2

    T, H, W, _ = full.shape
    side = min(H, W)
    y0, x0 = (H - side) // 2, (W - side) // 2
    rgb = ((made.clamp(-1, 1) + 1) * 127.5).permute(0, 2, 3, 1).cpu().numpy()
    interp = cv2.INTER_CUBIC if side > rgb.shape[1] else cv2.INTER_AREA
    up = np.stack([cv2.resize(np.ascontiguousarray(f), (side, side), interpolation=interp) for f in rgb])
    w = feather(cells, (side, side)).numpy()[None, :, :, None]
    out = full.copy()
    region = out[:, y0 : y0 + side, x0 : x0 + side].astype(np.float32)
    out[:, y0 : y0 + side, x0 : x0 + side] = np.clip(w * up + (1 - w) * region + 0.5, 0, 255).astype(np.uint8)
    return out
