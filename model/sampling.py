"""Autoregressive sampling: prefill the prefix once, then one cached step per visual id.

Classifier-free guidance runs the conditional and text-dropped sequences as one doubled batch; the
random draws come from a seeded torch.Generator, so one seed gives one video. Nothing in the loop
synchronizes with the host (no .item()), which matters when the step is a few milliseconds.
"""

from __future__ import annotations

from typing import Callable, Optional

import torch

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


def draw(logits: torch.Tensor, generator: Optional[torch.Generator]) -> torch.Tensor:
    """Sample one id per row: argmax(p / E) with E ~ Exp(1) is a draw from p (no host sync)."""
    probs = logits.softmax(-1)
    e = torch.empty_like(probs).exponential_(1.0, generator=generator)
    return (probs / e).argmax(-1)


def guided(logits: torch.Tensor, batch: int, cfg: float) -> torch.Tensor:
    """Combine a doubled batch [cond; uncond]: uncond + cfg * (cond - uncond)."""
    cond, uncond = logits[:batch], logits[batch:]
    return uncond + cfg * (cond - uncond)


@torch.no_grad()
def sample(
    lm: PrefixLM,
    seq: Sequence,
    *,
    temperature: float = 1.0,
    top_k: int = 0,
    top_p: float = 1.0,
    cfg: float = 1.0,
    generator: Optional[torch.Generator] = None,
    progress: Optional[Callable[[int, int], None]] = None,
    cache_dtype: torch.dtype = torch.float32,
) -> torch.Tensor:
    """Visual-out ids (B, seq.n_out) for a batch of prefixes.

    Visual-out ids already present in seq.tokens (after <bov_o>) are kept as given and only the rest is
    sampled: that is how a window continues from the previous one's output.
    """
    B, n = seq.batch, seq.n_out
    forced = seq.tokens[:, seq.prefix_len + 1 :] - N_SPECIAL
    m = forced.shape[1]
    use_cfg = cfg != 1.0
    run = seq.doubled() if use_cfg else seq
    device = seq.tokens.device
    cache = lm.new_cache(run.batch, seq.prefix_len + n, device, cache_dtype)
    logits = lm.prefill(run, cache)
    out = torch.empty(B, n, dtype=torch.long, device=device)
    out[:, :m] = forced
    for i in range(m, n):
        step_logits = guided(logits, B, cfg) if use_cfg else logits
        tok = draw(filter_logits(step_logits, temperature, top_k, top_p), generator)
        out[:, i] = tok
        if progress is not None:
            progress(i + 1 - m, n - m)
        if i + 1 < n:
            logits = lm.decode_step(tok.repeat(2) if use_cfg else tok, seq.prefix_len + 1 + i, cache)
    return out


@torch.no_grad()
def sample_uncached(lm: PrefixLM, seq: Sequence, *, generator=None, temperature=1.0, top_k=0, top_p=1.0, cfg=1.0) -> torch.Tensor:
    """Reference sampler: recompute the whole sequence for every token (what the cache must equal)."""
    from .tasks import visual_token

    B, n = seq.batch, seq.n_out
    use_cfg = cfg != 1.0
    out = torch.empty(B, n, dtype=torch.long, device=seq.tokens.device)
    for i in range(n):
        cur = Sequence(
            torch.cat([seq.tokens[:, : seq.prefix_len + 1], visual_token(out[:, :i])], 1), seq.text_start,
            seq.text_states, seq.text_valid, seq.text_pooled, seq.has_text, seq.prefix_len, i + 1,
        )  # fmt: skip
        run = cur.doubled() if use_cfg else cur
        logits = lm(run)[:, -1]
        step_logits = guided(logits, B, cfg) if use_cfg else logits
        out[:, i] = draw(filter_logits(step_logits, temperature, top_k, top_p), generator)
    return out
