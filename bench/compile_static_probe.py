"""Does a gpt-fast-style static decode step pay under torch.compile on this CPU?

    OMP_NUM_THREADS=1 python bench/compile_static_probe.py          # idle machine; ~1 min (compilation included)

Section 4b compiles the model's own decode step with dynamic shapes (its attention reads a cache slice that
grows every call). gpt-fast instead makes every shape static: the step reads the whole cache under a mask,
the position is a tensor, and the graph is compiled once for all steps. This probe writes that step over the
shipped weights, checks it gives the model's logits, and times one step three ways, interleaved in one run:
`PrefixLM.decode_step` (eager), the static step (eager), and the static step under
`torch.compile(fullgraph=True, dynamic=False)` in the given mode. Prints one JSON object.
"""

from __future__ import annotations

import json
import sys
import time

import torch
import torch.nn.functional as F

from common import t2v_sequence  # noqa: E402  (bench/ is on sys.path when run as a script)
from model.pipeline import VideoPoet
from model.sampling import _begin
from model.tasks import N_SPECIAL


def static_step(lm, tok, pos, K, V, bias, cos_all, sin_all):
    """One decode step with static shapes: tok (B,), pos a 0-d long tensor, K/V the whole (layers, B, H, L, hd)
    cache; keys after pos are masked instead of sliced off."""
    H, D = lm.cfg.n_heads, lm.cfg.dim
    hd = D // H
    x = F.embedding(tok + N_SPECIAL, lm.embed.weight)
    B, L = x.shape[0], K.shape[3]
    mask = bias.masked_fill(~(torch.arange(L) <= pos), float("-inf"))
    at = pos.view(1)
    cos, sin = cos_all.index_select(0, at), sin_all.index_select(0, at)
    for i, blk in enumerate(lm.blocks):
        eps = blk.n1.eps
        qkv = F.linear(F.rms_norm(x, (D,), blk.n1.weight, eps), blk.attn.qkv.weight).view(B, 3 * H, 1, hd)
        qk0 = qkv[:, : 2 * H]
        qk = torch.addcmul(qk0 * cos, qk0.roll(hd // 2, -1), sin)
        K[i].index_copy_(2, at, qk[:, H:])
        V[i].index_copy_(2, at, qkv[:, 2 * H :])
        y = F.scaled_dot_product_attention(qk[:, :H], K[i], V[i], attn_mask=mask)
        x = x + F.linear(y.view(B, D), blk.attn.out.weight)
        a, b = F.linear(F.rms_norm(x, (D,), blk.n2.weight, eps), blk.mlp.w13.weight).chunk(2, -1)
        x = x + F.linear(F.silu(a) * b, blk.mlp.w2.weight)
    return F.linear(F.rms_norm(x, (D,), lm.norm.weight, lm.norm.eps), lm.head.weight)


def interleaved_ms(fns: dict, rounds: int = 15, n: int = 40) -> dict:
    """Best per-call time of each function, timed in turns so a drifting machine affects all alike."""
    for f in fns.values():
        for _ in range(5):
            f()
    best = {k: float("inf") for k in fns}
    for _ in range(rounds):
        for k, f in fns.items():
            t = time.perf_counter()
            for _ in range(n):
                f()
            best[k] = min(best[k], (time.perf_counter() - t) / n * 1e3)
    return best


@torch.no_grad()
def measure(vp: VideoPoet, mode: str = "default") -> dict:
    lm = vp.lm.eval()
    seq = t2v_sequence(vp.preset, 320)
    _, cache, _, _ = _begin(lm, seq, False, torch.float32)
    tok = torch.zeros(1, dtype=torch.long)
    p = seq.prefix_len + 100
    pos = torch.tensor(p)
    args = (tok, pos, cache.k, cache.v, cache.bias, cache.cos, cache.sin)
    ref = lm.decode_step(tok, p, cache)
    report = {"threads": torch.get_num_threads(), "torch": torch.__version__, "mode": mode, "position": p,
              "static_eager_max_abs_diff": float((static_step(lm, *args) - ref).abs().max())}  # fmt: skip
    compiled = torch.compile(lambda *a: static_step(lm, *a), mode=mode, fullgraph=True, dynamic=False)
    t = time.perf_counter()
    out = compiled(*args)
    report["compile_s"] = time.perf_counter() - t
    report["compiled_max_abs_diff"] = float((out - ref).abs().max())
    ms = interleaved_ms({"eager_decode_step": lambda: lm.decode_step(tok, p, cache),
                         "static_eager": lambda: static_step(lm, *args),
                         "static_compiled": lambda: compiled(*args)})  # fmt: skip
    report["ms_per_step"] = ms
    report["compiled_speedup_vs_eager"] = ms["eager_decode_step"] / ms["static_compiled"]
    return report


def main() -> None:
    mode = sys.argv[1] if len(sys.argv) > 1 else "default"
    print(json.dumps(measure(VideoPoet.from_pretrained("tiny"), mode), indent=1))


if __name__ == "__main__":
    main()
