"""VideoTokenizer: a causal 3D CNN auto-encoder with lookup-free quantization (MAGVIT-v2, scaled down).

Causality: frame 0 is repeated `time_stride - 1` times in front, so the clip splits into groups of
`time_stride` frames with frame 0 alone in the first group; time convolutions pad only on the past side
and normalization is per frame. Latent frame j therefore depends only on frames <= time_stride * j, and an
image is simply a 1-frame video that shares the vocabulary.

Ids must say *what* is in a cell, not *where* it is: with `pad="replicate"` the past is padded by
repeating the first frame (as CogVideoX's causal convolution does) and the borders by repeating the edge,
so a constant clip stays constant through every layer (one id everywhere, in every latent frame), a still
clip gives the same ids in every latent frame, and ids shift with the scene. Zero padding (`pad="zeros"`,
the first checkpoints) gives every border position and latent frame its own context, and so its own ids.
"""

from __future__ import annotations

import math
from typing import Optional

import torch
import torch.nn as nn
import torch.nn.functional as F

from .config import TokenizerConfig
from .lfq import LFQ, ids_to_bits


class CausalConv3d(nn.Module):
    """3D convolution that pads time on the past side only; `pad` is "replicate" or "zeros"."""

    def __init__(self, cin: int, cout: int, kernel: int = 3, pad: str = "replicate"):
        super().__init__()
        self.tpad, self.spad, self.replicate = kernel - 1, kernel // 2, pad == "replicate"
        self.conv = nn.Conv3d(cin, cout, kernel, padding=0 if self.replicate else (0, self.spad, self.spad))

    def forward(self, x: torch.Tensor) -> torch.Tensor:  # (B, C, T, H, W)
        if self.replicate:
            s = self.spad
            return self.conv(F.pad(x, (s, s, s, s, self.tpad, 0), mode="replicate"))
        return self.conv(F.pad(x, (0, 0, 0, 0, self.tpad, 0)))


class FrameGroupNorm(nn.Module):
    """GroupNorm over (channels in group, H, W) of each frame separately: never mixes time."""

    def __init__(self, channels: int, groups: int = 16):
        super().__init__()
        self.groups = min(groups, channels)
        self.weight = nn.Parameter(torch.ones(channels))
        self.bias = nn.Parameter(torch.zeros(channels))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        B, C, T, H, W = x.shape
        g = x.view(B, self.groups, C // self.groups, T, H, W)
        mean = g.mean(dim=(2, 4, 5), keepdim=True)
        var = g.var(dim=(2, 4, 5), keepdim=True, unbiased=False)
        g = (g - mean) * torch.rsqrt(var + 1e-5)
        return g.view(B, C, T, H, W) * self.weight.view(1, C, 1, 1, 1) + self.bias.view(1, C, 1, 1, 1)


class ResBlock(nn.Module):
    def __init__(self, ch: int, pad: str):
        super().__init__()
        self.n1, self.c1 = FrameGroupNorm(ch), CausalConv3d(ch, ch, pad=pad)
        self.n2, self.c2 = FrameGroupNorm(ch), CausalConv3d(ch, ch, pad=pad)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = self.c1(F.silu(self.n1(x)))
        return x + self.c2(F.silu(self.n2(h)))


def space_to_depth(x: torch.Tensor, r: int) -> torch.Tensor:
    B, C, T, H, W = x.shape
    x = x.view(B, C, T, H // r, r, W // r, r).permute(0, 1, 4, 6, 2, 3, 5)
    return x.reshape(B, C * r * r, T, H // r, W // r)


def depth_to_space(x: torch.Tensor, r: int) -> torch.Tensor:
    B, C, T, H, W = x.shape
    x = x.view(B, C // (r * r), r, r, T, H, W).permute(0, 1, 4, 5, 2, 6, 3)
    return x.reshape(B, C // (r * r), T, H * r, W * r)


class Encoder(nn.Module):
    def __init__(self, cfg: TokenizerConfig):
        super().__init__()
        ch = cfg.channels
        stem = 3 * cfg.time_stride * cfg.patch * cfg.patch
        self.conv_in = CausalConv3d(stem, ch[0], pad=cfg.pad)
        self.levels = nn.ModuleList()
        for i, c in enumerate(ch):
            blocks: list[nn.Module] = [ResBlock(c, cfg.pad) for _ in range(cfg.res_blocks)]
            self.levels.append(nn.Sequential(*blocks))
        self.down = nn.ModuleList(nn.Conv3d(4 * ch[i], ch[i + 1], 1) for i in range(len(ch) - 1))
        self.norm_out = FrameGroupNorm(ch[-1])
        self.conv_out = CausalConv3d(ch[-1], cfg.bits, pad=cfg.pad)

    def features(self, x: torch.Tensor) -> torch.Tensor:
        """The continuous features (B, channels[-1], T', h, w) that the last convolution reads bits from."""
        h = self.conv_in(x)
        for i, level in enumerate(self.levels):
            h = level(h)
            if i < len(self.down):
                h = self.down[i](space_to_depth(h, 2))
        return F.silu(self.norm_out(h))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.conv_out(self.features(x))


def align_reference(reference: torch.Tensor, video: torch.Tensor, match: Optional[torch.Tensor] = None,
                    subpixel: bool = True) -> torch.Tensor:
    """Shift a true frame so that what stands out from its background sits where it stands out in each
    decoded frame: reference (B, 3, H, W), video (B, T, 3, H, W) -> (B, T, 3, H, W).

    Motion compensation, as a video codec predicts a frame from a reference frame, with one shift per
    frame: first the difference of the two frames' salient centroids (salience: distance from the median
    border colour, above half its peak), then the best of that shift and its eight neighbours by mean
    absolute difference, then (`subpixel`) a quarter-pixel refinement from the costs on either side (a
    V fit) applied by bilinear interpolation. Whole pixels alone step an object moving 1.2-1.8 px a frame
    by 1 or 2, and now and then 3, pixels: a visible jerk, most of all where two windows of an extended
    clip meet (the eval's smooth seams: 60% over six seeds with whole pixels, 78% with quarter pixels,
    as many as with no reference). `match` (B, 3, H, W), the reference as the decoder draws it, is what the
    shifts are measured on when given: decoded against decoded, so the decoder's own half-pixel offsets
    cancel (a frame decoded from the reference's own ids gets exactly no shift). A frame with nothing
    salient keeps the reference in place; ReferenceBlend then decides, pixel by pixel, whether the
    shifted reference fits at all."""
    B, T, _, H, W = video.shape

    def centroid(x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:  # (..., 3, H, W)
        border = torch.cat([x[..., 0, :], x[..., -1, :], x[..., 1:-1, 0], x[..., 1:-1, -1]], -1)
        d = (x - border.median(-1).values[..., None, None]).abs().sum(-3)  # (..., H, W)
        peak = d.amax((-2, -1), keepdim=True)
        m = torch.where(d > 0.5 * peak, d, torch.zeros_like(d))
        total = m.sum((-2, -1)).clamp_min(1e-6)
        ys, xs = torch.arange(H, dtype=d.dtype, device=d.device), torch.arange(W, dtype=d.dtype, device=d.device)
        return (m.sum(-1) * ys).sum(-1) / total, (m.sum(-2) * xs).sum(-1) / total, peak[..., 0, 0] > 0.1

    match = reference if match is None else match
    ry, rx, rok = centroid(match.float())
    vy, vx, vok = centroid(video.float())
    ok = vok & rok[:, None]
    dy = torch.where(ok, (vy - ry[:, None]).round(), torch.zeros_like(vy)).long()
    dx = torch.where(ok, (vx - rx[:, None]).round(), torch.zeros_like(vx)).long()
    out = torch.empty_like(video)
    for b in range(B):
        for t in range(T):
            y, x = int(dy[b, t]), int(dx[b, t])
            if not ok[b, t]:
                out[b, t] = reference[b]
                continue
            shifts = [(y + i, x + j) for i in (-1, 0, 1) for j in (-1, 0, 1)]
            tries = torch.stack([torch.roll(match[b], sh, dims=(-2, -1)) for sh in shifts])
            cost = dict(zip(shifts, (tries - video[b, t]).abs().mean((1, 2, 3)).tolist()))
            by, bx = best = min(shifts, key=cost.__getitem__)
            if not subpixel:
                out[b, t] = torch.roll(reference[b], best, dims=(-2, -1))
                continue

            def mad(sh: tuple[int, int]) -> float:  # the nine above, or one step beyond them
                if sh not in cost:
                    cost[sh] = float((torch.roll(match[b], sh, dims=(-2, -1)) - video[b, t]).abs().mean())
                return cost[sh]

            fy = _v_fit(*(mad((by + i, bx)) for i in (-1, 0, 1)))
            fx = _v_fit(*(mad((by, bx + j)) for j in (-1, 0, 1)))
            out[b, t] = _shift(reference[b], by + fy, bx + fx)
    return out


def _v_fit(left: float, mid: float, right: float) -> float:
    """Sub-pixel offset of the minimum of a V-shaped cost sampled at -1, 0, +1 (the equiangular fit
    used for block matching by absolute differences, whose cost is V- rather than parabola-shaped), to a
    quarter pixel as codecs' motion compensation does (so whole-pixel motion stays exactly whole), in
    [-0.5, 0.5]; 0 when the middle is not the lowest."""
    rise = max(left, right) - mid
    if rise <= 0 or mid > min(left, right):
        return 0.0
    return round(4 * max(-0.5, min(0.5, (left - right) / (2 * rise)))) / 4


def _shift(x: torch.Tensor, dy: float, dx: float) -> torch.Tensor:
    """x (..., H, W) moved by (dy, dx) pixels, fractions by bilinear interpolation between whole-pixel
    rolls (so the whole-pixel case is exactly torch.roll)."""
    y0, x0 = math.floor(dy), math.floor(dx)
    ay, ax = dy - y0, dx - x0
    out = torch.roll(x, (y0, x0), dims=(-2, -1)) * ((1 - ay) * (1 - ax))
    for (i, j), w in (((1, 0), ay * (1 - ax)), ((0, 1), (1 - ay) * ax), ((1, 1), ay * ax)):
        if w > 0:
            out = out + torch.roll(x, (y0 + i, x0 + j), dims=(-2, -1)) * w
    return out


class ReferenceBlend(nn.Module):
    """Per pixel, how much of a motion-compensated true frame (`align_reference`) to take over the decoded one.

    Why: 12 sign bits per 8-pixel cell keep where an object is and roughly what, but not the outline of one
    about two cells across (a small circle decodes as a blob read as a square). When the caller has a true
    frame of the same scene (`extend` has the input clip, `animate` its image), the outline is in it: shifted
    to where the ids put the object now, it can be taken over where it fits the decoded frame and left where
    it does not (another background, an object that changed). Frame by frame, so decoding stays causal; the
    ids, and so the LM, are untouched; the gate starts almost shut (bias -6), i.e. as the plain decoder."""

    def __init__(self, hidden: int = 32):
        super().__init__()
        self.net = nn.Sequential(
            nn.Conv2d(9, hidden, 3, padding=1), nn.SiLU(),
            nn.Conv2d(hidden, hidden, 3, padding=2, dilation=2), nn.SiLU(),
            nn.Conv2d(hidden, hidden, 3, padding=4, dilation=4), nn.SiLU(),
            nn.Conv2d(hidden, 1, 1),
        )  # fmt: skip
        nn.init.zeros_(self.net[-1].weight)
        nn.init.constant_(self.net[-1].bias, -6.0)

    def forward(self, video: torch.Tensor, aligned: torch.Tensor) -> torch.Tensor:
        """video, aligned: (B, T, 3, H, W) -> the blend, same shape."""
        B, T, C, H, W = video.shape
        v, a = video.reshape(B * T, C, H, W), aligned.reshape(B * T, C, H, W)
        gate = torch.sigmoid(self.net(torch.cat([v, a, (v - a).abs()], 1)))
        return (v + gate * (a - v)).view(B, T, C, H, W)


class Decoder(nn.Module):
    def __init__(self, cfg: TokenizerConfig):
        super().__init__()
        ch = cfg.channels[::-1]
        stem = 3 * cfg.time_stride * cfg.patch * cfg.patch
        self.conv_in = CausalConv3d(cfg.bits, ch[0], pad=cfg.pad)
        self.levels = nn.ModuleList(nn.Sequential(*[ResBlock(c, cfg.pad) for _ in range(cfg.res_blocks)]) for c in ch)
        self.up = nn.ModuleList(nn.Conv3d(ch[i], 4 * ch[i + 1], 1) for i in range(len(ch) - 1))
        self.norm_out = FrameGroupNorm(ch[-1])
        self.conv_out = CausalConv3d(ch[-1], stem, pad=cfg.pad)

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        h = self.conv_in(z)
        for i, level in enumerate(self.levels):
            h = level(h)
            if i < len(self.up):
                h = depth_to_space(self.up[i](h), 2)
        return self.conv_out(F.silu(self.norm_out(h)))


class VideoTokenizer(nn.Module):
    """Video (B, T, 3, H, W) in [-1, 1] <-> token ids (B, T', H', W') in [0, 2**bits)."""

    def __init__(self, cfg: TokenizerConfig):
        super().__init__()
        self.cfg = cfg
        self.encoder = Encoder(cfg)
        self.decoder = Decoder(cfg)
        # for when a true frame of the scene is at hand (ReferenceBlend says why); decoding from ids alone
        # does not use it
        self.reference_blend = ReferenceBlend() if cfg.reference else None
        self.quantizer = LFQ(cfg.bits, cfg.entropy_weight, cfg.commit_weight)

    # -- layout helpers -------------------------------------------------------------------------
    def _to_groups(self, video: torch.Tensor) -> torch.Tensor:
        """(B, T, 3, H, W) -> (B, 3*ts*p*p, T', H/p, W/p) with frame 0 alone in the first group."""
        B, T, C, H, W = video.shape
        ts, p = self.cfg.time_stride, self.cfg.patch
        if (T - 1) % ts:
            raise ValueError(f"a clip must have 1 + {ts}*k frames, got {T}")
        x = torch.cat([video[:, :1].expand(B, ts - 1, C, H, W), video], dim=1)  # (B, ts*(k+1), C, H, W)
        g = (T + ts - 1) // ts
        x = x.view(B, g, ts, C, H // p, p, W // p, p).permute(0, 2, 3, 5, 7, 1, 4, 6)
        return x.reshape(B, ts * C * p * p, g, H // p, W // p)

    def _from_groups(self, x: torch.Tensor) -> torch.Tensor:
        B, _, g, h, w = x.shape
        ts, p = self.cfg.time_stride, self.cfg.patch
        x = x.view(B, ts, 3, p, p, g, h, w).permute(0, 5, 1, 2, 6, 3, 7, 4)
        x = x.reshape(B, g * ts, 3, h * p, w * p)
        return x[:, ts - 1 :]

    # -- API ------------------------------------------------------------------------------------
    def encode_latents(self, video: torch.Tensor) -> torch.Tensor:
        return self.encoder(self._to_groups(video))

    def forward(self, video: torch.Tensor, entropy_scale: float = 1.0):
        """Training pass: (reconstruction, ids, aux loss, stats). Reconstruction is not clamped."""
        z = self.encode_latents(video)
        zq, ids, aux, stats = self.quantizer(z, entropy_scale)
        return self._from_groups(self.decoder(zq)), ids, aux, stats

    @torch.no_grad()
    def encode(self, video: torch.Tensor) -> torch.Tensor:
        """(B, T, 3, H, W) in [-1, 1] -> ids (B, T', H', W')."""
        return self.quantizer(self.encode_latents(video))[1]

    @torch.no_grad()
    def decode(self, ids: torch.Tensor, reference: Optional[torch.Tensor] = None, blend_from: int = 0) -> torch.Tensor:
        """ids (B, T', H', W') -> video (B, 1 + ts*(T'-1), 3, H, W) clamped to [-1, 1]. `reference`: a true
        frame (B, 3, H, W) of the same scene, whose outlines ReferenceBlend takes over where they fit
        (ignored by a tokenizer built without it), in frames blend_from.. only: alignment and blend work
        frame by frame, so a caller that keeps only the last frames (extend's windows) need not pay for
        the others, which come back as decoded from the ids."""
        z = ids_to_bits(ids, self.cfg.bits).movedim(-1, 1)
        out = self._from_groups(self.decoder(z)).clamp(-1, 1)
        if reference is None or self.reference_blend is None:
            return out
        tail = out[:, blend_from:]
        tail = self.reference_blend(tail, self.align(reference.to(out.dtype), tail)).clamp(-1, 1)
        return torch.cat([out[:, :blend_from], tail], 1)

    @torch.no_grad()
    def align(self, reference: torch.Tensor, video: torch.Tensor, subpixel: bool = True) -> torch.Tensor:
        """align_reference with the shifts measured on the reference's own round trip (an image is a
        1-frame clip), so a decoded frame is compared with a decoded one."""
        match = self.decode(self.encode(reference[:, None]))[:, 0]
        return align_reference(reference, video, match, subpixel)
