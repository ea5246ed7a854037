"""Autoregressive sampling: prefill the prefix once, then one cached step per visual id.

Classifier-free guidance runs the conditional and text-dropped sequences as one doubled batch; the
random draws come from a seeded torch.Generator, so one seed gives one video. Nothing in the loop
synchronizes with the host (no .item()), which matters when the step is a few milliseconds.
"""

from __future__ import annotations

import dataclasses
from typing import Callable, Optional, Union
from typing import Sequence as Seq

import torch

from .config import SamplingOptions
from .tasks import N_SPECIAL, Sequence
from .transformer import PrefixLM


def filter_logits(logits: torch.Tensor, temperature: float, top_k: int, top_p: float) -> torch.Tensor:
    """Temperature, then top-k, then nucleus (top-p) filtering; filtered entries become -inf."""
    logits = logits.float()
    if temperature != 1.0:
        logits = logits / temperature
    if top_k and top_k < logits.shape[-1]:
        kth = torch.topk(logits, top_k, dim=-1).values[..., -1:]
        logits = logits.masked_fill(logits < kth, float("-inf"))
    if top_p < 1.0:
        sorted_logits, idx = torch.sort(logits, dim=-1, descending=True)
        probs = sorted_logits.softmax(-1)
        drop = probs.cumsum(-1) - probs > top_p  # keep the smallest set whose mass reaches top_p
        sorted_logits = sorted_logits.masked_fill(drop, float("-inf"))
        logits = torch.full_like(logits, float("-inf")).scatter(-1, idx, sorted_logits)
    return logits


Generators = Union[torch.Generator, Seq[torch.Generator], None]


def exp_noise(like: torch.Tensor, generator: Generators) -> torch.Tensor:
    """Exp(1) noise shaped like `like` (B, V). With one generator per row, row i's numbers are exactly
    what a batch of one would draw from generator i: a batch of clips gives each clip its own seed's video."""
    if isinstance(generator, (list, tuple)):
        if len(generator) != like.shape[0]:
            raise ValueError(f"{len(generator)} generators for a batch of {like.shape[0]}")
        return torch.stack([torch.empty_like(like[0]).exponential_(1.0, generator=g) for g in generator])
    return torch.empty_like(like).exponential_(1.0, generator=generator)


def draw(logits: torch.Tensor, generator: Generators, noise: Optional[torch.Tensor] = None) -> torch.Tensor:
    """Sample one id per row: argmax(p / E) with E ~ Exp(1) is a draw from p (no host sync).
    Passing the noise E makes the draw a pure function of the logits (what Jacobi decoding needs)."""
    probs = logits.softmax(-1)
    e = exp_noise(probs, generator) if noise is None else noise
    return (probs / e).argmax(-1)


def guided(logits: torch.Tensor, batch: int, guidance: float) -> torch.Tensor:
    """Combine a doubled batch [cond; uncond]: uncond + guidance * (cond - uncond)."""
    cond, uncond = logits[:batch], logits[batch:]
    return uncond + guidance * (cond - uncond)


def _pick(logits: torch.Tensor, seq: Sequence, i: int, o: SamplingOptions, generator: Generators,
          noise: Optional[torch.Tensor] = None) -> torch.Tensor:  # fmt: skip
    """Position i's ids from the model's logits (doubled batch when guided): guidance, filtering, the
    draw, then the layout's known ids put back. Every sampler goes through here."""
    if o.guidance != 1.0:
        logits = guided(logits, seq.batch, o.guidance)
    return keep_known(draw(filter_logits(logits, o.temperature, o.top_k, o.top_p), generator, noise), seq, i)


def keep_known(tok: torch.Tensor, seq: Sequence, i: int) -> torch.Tensor:
    """Position i's ids with the layout's known ids (seq.out_known >= 0) put in place of the draws: how
    inpainting and outpainting keep what is visible. The draw still happens, so the random stream, and
    with it every later draw, is the same whatever is known."""
    if seq.out_known is None:
        return tok
    k = seq.out_known[:, i]
    return torch.where(k >= 0, k, tok)


def _begin(lm: PrefixLM, seq: Sequence, use_cfg: bool, cache_dtype: torch.dtype):
    """What both samplers start with: the given visual-out ids copied into the output, the prefix (doubled
    for CFG) run once into a fresh cache. Returns (number given, cache, logits for the next id, output)."""
    forced = seq.tokens[:, seq.prefix_len + 1 :] - N_SPECIAL
    run = seq.doubled() if use_cfg else seq
    cache = lm.new_cache(run.batch, seq.prefix_len + seq.n_out, seq.tokens.device, cache_dtype)
    logits = lm.prefill(run, cache)
    out = torch.empty(seq.batch, seq.n_out, dtype=torch.long, device=seq.tokens.device)
    out[:, : forced.shape[1]] = forced
    return forced.shape[1], cache, logits, out


@torch.no_grad()
def sample(
    lm: PrefixLM,
    seq: Sequence,
    options: SamplingOptions,
    *,
    generator: Generators = None,
    progress: Optional[Callable[[int, int], None]] = None,
    cache_dtype: torch.dtype = torch.float32,
) -> torch.Tensor:
    """Visual-out ids (B, seq.n_out) for a batch of prefixes.

    Visual-out ids already present in seq.tokens (after <bov_o>) are kept as given and only the rest is
    sampled: that is how a window continues from the previous one's output.
    """
    n = seq.n_out
    use_cfg = options.guidance != 1.0
    m, cache, logits, out = _begin(lm, seq, use_cfg, cache_dtype)
    for i in range(m, n):
        tok = _pick(logits, seq, i, options, generator)
        out[:, i] = tok
        if progress is not None:
            progress(i + 1 - m, n - m)
        if i + 1 < n:
            logits = lm.decode_step(tok.repeat(2) if use_cfg else tok, seq.prefix_len + 1 + i, cache)
    return out


@torch.no_grad()
def sample_uncached(lm: PrefixLM, seq: Sequence, options: SamplingOptions, *, generator: Generators = None) -> torch.Tensor:
    """Reference sampler: recompute the whole sequence for every token (what the cache must equal)."""
    from .tasks import visual_token

    B, n = seq.batch, seq.n_out
    use_cfg = options.guidance != 1.0
    out = torch.empty(B, n, dtype=torch.long, device=seq.tokens.device)
    for i in range(n):
        cur = dataclasses.replace(seq, tokens=torch.cat([seq.tokens[:, : seq.prefix_len + 1], visual_token(out[:, :i])], 1), n_out=i + 1)
        run = cur.doubled() if use_cfg else cur
        out[:, i] = _pick(lm(run)[:, -1], seq, i, options, generator)
    return out


@torch.no_grad()
def sample_jacobi(
    lm: PrefixLM,
    seq: Sequence,
    options: SamplingOptions,
    *,
    block: int = 8,
    generator: Generators = None,
    progress: Optional[Callable[[int, int], None]] = None,
    cache_dtype: torch.dtype = torch.float32,
) -> torch.Tensor:
    """Parallel (Jacobi) decoding: each model call feeds the last exact token plus `block - 1` guesses.

    The random noise of every position is drawn once, in position order, from the same generator the
    sequential sampler uses, so a draw is a pure function of its logits. Token i+1 is exact whenever the
    inputs before it were, so each call keeps the exact token it was fed a prefix for, plus every following
    guess that turned out right: the output is the sequential sampler's (up to float rounding between a
    block pass and a one-token pass), in fewer model calls when guesses hold (flat backgrounds repeat).
    Returns the ids; `sample_jacobi.calls` holds the model calls of the last run.
    """
    B, n, P = seq.batch, seq.n_out, seq.prefix_len
    use_cfg = options.guidance != 1.0
    m, cache, logits, out = _begin(lm, seq, use_cfg, cache_dtype)
    device = seq.tokens.device
    noise: list[torch.Tensor] = []  # noise[i - m] is position i's, drawn once and in order, as `sample` does

    def pick(lg: torch.Tensor, i: int) -> torch.Tensor:
        while len(noise) <= i - m:
            noise.append(exp_noise(torch.empty(B, lg.shape[-1], device=device), generator))
        return _pick(lg, seq, i, options, None, noise[i - m])

    calls = 1
    if m >= n:
        return out
    out[:, m] = pick(logits, m)
    if progress is not None:
        progress(1, n - m)
    a = m + 1  # tokens < a are exact; token a-1 is not yet in the cache
    guess = out[:, a - 1 : a].expand(B, block - 1)  # first guess: the background continues
    while a < n:
        k = min(block, n - a)  # feed token a-1 and k-1 guesses (last fed index <= n-2); predict a .. a+k-1
        chunk = torch.cat([out[:, a - 1 : a], guess[:, : k - 1]], 1)
        feed = chunk.repeat(2, 1) if use_cfg else chunk
        lg = lm.decode_chunk(feed, P + a, cache, P)
        calls += 1
        new = torch.stack([pick(lg[:, j], a + j) for j in range(k)], 1)
        # new[:, 0] is exact; new[:, j] is exact if guesses 1..j matched new[:, 0..j-1]
        match = (chunk[:, 1 : new.shape[1]] == new[:, : new.shape[1] - 1]).all(0)
        c = 1 + int(torch.cumprod(match.int(), 0).sum()) if match.numel() else 1
        out[:, a : a + c] = new[:, :c]
        a += c
        if progress is not None:
            progress(a - m, n - m)
        rest = new[:, c:]
        pad = (out[:, a - 1 : a] if rest.shape[1] == 0 else rest[:, -1:]).expand(B, max(0, block - 1 - rest.shape[1]))
        guess = torch.cat([rest, pad], 1)
    sample_jacobi.calls = calls  # type: ignore[attr-defined]
    return out
