"""Does `extend` keep small outlines if each window is the best of N draws by how little the picture
changes from frame to frame, once motion is allowed for? The eval's extend measure (as extend_sweep.py:
clips the eval does not use, two seed sets) with every continuation window drawn N times (seeds s, s+1,
...: the first draw is the one `extend` makes), each draw decoded with its context, and the draw kept
whose consecutive frames (the context's last frame, then the new ones) differ least after the best
whole-frame shift of up to R pixels: a moving object that keeps its outline and background costs
almost nothing, one whose outline or background changes costs what changed. No analyser and no prompt
is involved in the choice: the criterion is temporal consistency, for any video.
R = -1 ("anchor") instead scores each draw by how far its new frames are from the input clip's last
frame (the pixels the user gave, never tokenized) under the best cyclic shift of the whole frame: the
object as the user drew it, wherever it has moved since.
Usage: python eval/study/extend_consistency.py "N:R;N:R;..." [N_CLIPS] [SEED_SET,SEED_SET]   (1:0 = `extend` as it is)"""

import os
import sys
from pathlib import Path

import torch

sys.path[:0] = [str(Path(__file__).resolve().parents[2])]
from extend_sweep import SEED_SETS, measure  # noqa: E402  (this folder: the clips and seeds of that study)
from model.pipeline import VideoPoet, context_frames, tokens_per_window  # noqa: E402

DRAWS, RADIUS = 1, 3


def change_after_shift(frames: torch.Tensor, radius: int) -> torch.Tensor:
    """(N, T, 3, H, W) -> (N,): sum over consecutive frame pairs of the mean squared difference after the
    whole-frame shift (|dx|, |dy| <= radius) that makes the pair agree best, on the interior."""
    a, b = frames[:, :-1], frames[:, 1:]
    H, W = frames.shape[-2:]
    r = radius
    core = b[..., r : H - r, r : W - r]
    best = None
    for dy in range(-r, r + 1):
        for dx in range(-r, r + 1):
            d = (a[..., r + dy : H - r + dy, r + dx : W - r + dx] - core).pow(2).mean((-3, -2, -1))  # (N, T-1)
            best = d if best is None else torch.minimum(best, d)
    return best.sum(1)


def distance_to_anchor(frames: torch.Tensor, anchor: torch.Tensor) -> torch.Tensor:
    """(N, T, 3, H, W), (3, H, W) -> (N,): sum over frames of min over cyclic shifts of ||frame - shifted
    anchor||^2 = ||frame||^2 + ||anchor||^2 - 2 max correlation (by FFT)."""
    f = torch.fft.rfft2(frames.float())
    a = torch.fft.rfft2(anchor.float())
    corr = torch.fft.irfft2(f * a.conj(), s=frames.shape[-2:]).sum(2)  # (N, T, H, W): every shift, channels summed
    d = frames.float().pow(2).sum((-3, -2, -1)) + anchor.float().pow(2).sum() - 2 * corr.flatten(2).amax(2)
    return d.sum(1)


def next_window(self, ctx, prompt, seed, progress, options):
    """VideoPoet._next_window, the most consistent of DRAWS draws (seeds seed, seed+1, ...)."""
    if DRAWS == 1:
        return draw_one(self, ctx, prompt, seed, progress, options)
    n = tokens_per_window(self.preset.tokenizer)
    cands = self._run("continue", prompt, n, visual_in=ctx.expand(DRAWS, -1), seed=[seed + d for d in range(DRAWS)], progress=None, options=options)
    frames = self._decode(torch.cat([ctx.expand(DRAWS, -1), cands], 1))
    k = context_frames(self.preset.tokenizer)
    cost = distance_to_anchor(frames[:, k:], self._anchor) if RADIUS < 0 else change_after_shift(frames[:, k - 1 :], RADIUS)
    return cands[int(torch.argmin(cost))][None]


def extend(self, video, *a, **kw):
    self._anchor = self._fit(video[None])[0][-1]
    return extend_as_is(self, video, *a, **kw)


if __name__ == "__main__":
    torch.set_num_threads(int(os.environ.get("THREADS", "2")))
    draw_one, VideoPoet._next_window = VideoPoet._next_window, next_window
    extend_as_is, VideoPoet.extend = VideoPoet.extend, extend
    vp = VideoPoet.from_pretrained("tiny")
    n = int(sys.argv[2]) if len(sys.argv) > 2 else 20
    seed_sets = tuple(int(s) for s in sys.argv[3].split(",")) if len(sys.argv) > 3 and sys.argv[3] else SEED_SETS
    for spec in sys.argv[1].split(";"):
        d, r = spec.split(":")
        DRAWS, RADIUS = int(d), int(r)
        measure(vp, f"best of {DRAWS}, shift {RADIUS}", n, seed_sets=seed_sets)
