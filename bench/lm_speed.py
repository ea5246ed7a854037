"""In-process measurements: the machine's limits and the LM's decode speed, against GPT-2 and the uncached sampler."""

from __future__ import annotations

import time
from typing import Any, Optional

from common import lm_weight_bytes, median, t2v_sequence, timed

GPT2_PROMPT_LEN = 24
UNCACHED_TOKENS = 32


# ------------------------------------------------------------------------------------------------ 1. limits


def _copy_bandwidth(reps: int) -> dict:
    import torch

    n = 256 * 2**20 // 4  # 256 MB of float32
    src = torch.rand(n)
    dst = torch.empty_like(src)
    dst.copy_(src)
    s = median(timed(lambda: dst.copy_(src), max(3, reps * 2)))
    return {"copy_bytes": 2 * n * 4, "copy_s": s, "bandwidth_gbs": 2 * n * 4 / s / 1e9}  # read + write


def bench_limits(reps: int) -> dict:
    import torch

    r: dict[str, Any] = _copy_bandwidth(reps)  # its 512 MB of buffers are freed before the matmuls

    size = 2048
    for name, dtype in (("fp32", torch.float32), ("bf16", torch.bfloat16)):
        a = torch.randn(size, size).to(dtype)
        b = torch.randn(size, size).to(dtype)
        c = torch.empty(size, size, dtype=dtype)
        torch.matmul(a, b, out=c)
        ts = timed(lambda: torch.matmul(a, b, out=c), reps)
        r[f"matmul_{name}_n"] = size
        r[f"matmul_{name}_s"] = median(ts)
        r[f"matmul_{name}_gflops"] = 2 * size**3 / median(ts) / 1e9

    small = 256  # fp16 matmul has no fast path on this kind of CPU (~1 GFLOP/s): one small run
    a = torch.randn(small, small).half()
    b = torch.randn(small, small).half()
    torch.matmul(a[:32, :32], b[:32, :32])
    t = timed(lambda: torch.matmul(a, b), 1)[0]
    r["matmul_fp16_n"] = small
    r["matmul_fp16_s"] = t
    r["matmul_fp16_gflops"] = 2 * small**3 / t / 1e9
    return r


# ------------------------------------------------------------------------------------------------ 2. decode


def bench_decode(vp, reps: int, bandwidth_gbs: Optional[float], quick: bool = False) -> dict:
    import torch

    lm = vp.lm
    t = vp.preset.tokenizer
    n_out = t.latent_shape()[0] * t.tokens_per_latent_frame()
    seq = t2v_sequence(vp.preset, n_out)
    r: dict[str, Any] = {"n_out": n_out, "prefix_len": seq.prefix_len, "rows": []}
    total_b, read_b = lm_weight_bytes(lm)
    r["lm_params"] = sum(p.numel() for p in lm.parameters())
    r["lm_weight_bytes"] = total_b
    r["lm_weight_bytes_read_per_step"] = read_b
    r["weight_dtype"] = str(next(lm.parameters()).dtype).replace("torch.", "")
    if bandwidth_gbs:
        r["floor_ms"] = total_b / (bandwidth_gbs * 1e9) * 1e3
        r["floor_read_ms"] = read_b / (bandwidth_gbs * 1e9) * 1e3

    threads = torch.get_num_threads()
    # the main rows use this process's threads; a second set at 1 thread shows whether threading pays at this size
    for th in [threads] + ([1] if threads > 1 else []):
        torch.set_num_threads(th)
        try:
            for batch, cfg in ((1, 1.0), (2, 3.0)):
                r["rows"].append(_decode_row(lm, seq, n_out, batch, cfg, reps, quick, vp.preset, th, r.get("floor_ms")))
            if th == threads:  # parallel (Jacobi) decoding: the same tokens, fewer model calls
                for batch, cfg in ((1, 1.0), (2, 3.0)):
                    r["rows"].append(_decode_row(lm, seq, n_out, batch, cfg, reps, quick, vp.preset, th, r.get("floor_ms"), "jacobi"))
        finally:
            torch.set_num_threads(threads)
    return r


def _prefill_fn(lm, run, max_len: int):
    """What a sampler does before its first step (a fresh cache, the prefix run into it), to time alone."""
    import torch

    @torch.no_grad()
    def prefill():
        lm.prefill(run, lm.new_cache(run.batch, max_len, run.tokens.device))

    return prefill


def _decode_row(lm, seq, n_out, batch, cfg, reps, quick, preset, threads, floor_ms, sampler="sequential") -> dict:
    import torch

    from model.config import SamplingOptions
    from model.sampling import sample, sample_jacobi

    calls = []

    def sample_fn(*a, **k):
        if sampler == "sequential":
            return sample(*a, **k)
        out = sample_jacobi(*a, **k)
        calls.append(sample_jacobi.calls)
        return out

    run = seq if cfg == 1.0 else seq.doubled()
    prefill = _prefill_fn(lm, run, seq.prefix_len + n_out)

    def full(i=[0], s=seq):
        i[0] += 1
        sample_fn(lm, s, SamplingOptions(guidance=cfg), generator=torch.Generator().manual_seed(i[0]))

    full(s=t2v_sequence(preset, 32) if quick else seq)  # warm-up: one-time allocations, kernel selection
    prefill()
    t_pre = median(timed(prefill, max(3, reps)))
    t_all = timed(full, reps)
    per_tok = (median(t_all) - t_pre) / (n_out - 1)
    row = {"batch": batch, "cfg": cfg, "threads": threads, "sample_s": median(t_all), "sample_all_s": t_all,
           "prefill_ms": t_pre * 1e3, "ms_per_token": per_tok * 1e3, "sampler": sampler}  # fmt: skip
    if calls:
        row["model_calls"] = median(calls[-len(t_all):])
    if floor_ms:
        row["vs_floor"] = row["ms_per_token"] / floor_ms
    return row


# ------------------------------------------------------------------------------------------------ 3. GPT-2


def bench_gpt2(vp, reps: int, quick: bool) -> dict:
    """GPT-2 `generate` of the same size, then a head-to-head: our sequential and Jacobi samplers and GPT-2
    timed in turns, round after round, so that a machine whose speed drifts (this kind does, by 30% within
    a minute) slows all three alike; the goals use the median of the per-round ratios."""
    import torch
    from transformers import GPT2Config, GPT2LMHeadModel
    from transformers.utils import logging as hf_logging

    from model.tasks import N_SPECIAL

    hf_logging.set_verbosity_error()
    preset = vp.preset
    lmc = preset.lm
    vocab = N_SPECIAL + preset.tokenizer.vocab_size
    n_inner = 3 * lmc.mlp_hidden // 2  # GPT-2's MLP has 2 matrices, SwiGLU 3: same MLP parameter count
    n_new = preset.tokenizer.latent_shape()[0] * preset.tokenizer.tokens_per_latent_frame()
    conf = GPT2Config(vocab_size=vocab, n_positions=512, n_embd=lmc.dim, n_layer=lmc.n_layers, n_head=lmc.n_heads,
                      n_inner=n_inner, bos_token_id=1, eos_token_id=2, pad_token_id=0)  # fmt: skip
    torch.manual_seed(0)
    model = GPT2LMHeadModel(conf).eval()
    r: dict[str, Any] = {"n_layer": lmc.n_layers, "n_embd": lmc.dim, "n_head": lmc.n_heads, "vocab": vocab, "n_inner": n_inner,
                         "n_positions": 512, "params": sum(p.numel() for p in model.parameters()),
                         "mlp_params_per_layer": 2 * lmc.dim * n_inner, "our_mlp_params_per_layer": 3 * lmc.dim * lmc.mlp_hidden,
                         "prompt_len": GPT2_PROMPT_LEN, "new_tokens": n_new,
                         "attn_implementation": getattr(model.config, "_attn_implementation", None), "rows": []}  # fmt: skip

    for batch in (1, 2):
        ids = torch.randint(N_SPECIAL, vocab, (batch, GPT2_PROMPT_LEN), generator=torch.Generator().manual_seed(batch))
        mask = torch.ones_like(ids)

        def gen(n):
            out = model.generate(input_ids=ids, attention_mask=mask, max_new_tokens=n, min_new_tokens=n, do_sample=True,
                                 use_cache=True, top_k=0, pad_token_id=0)  # fmt: skip
            assert out.shape == (batch, GPT2_PROMPT_LEN + n), out.shape
            return out

        gen(16 if quick else n_new)  # warm-up
        t1 = median(timed(lambda: gen(1), max(3, reps)))
        tn = timed(lambda: gen(n_new), reps)
        per_tok = (median(tn) - t1) / (n_new - 1)
        r["rows"].append({"batch": batch, "generate_s": median(tn), "generate_all_s": tn, "prefill_ms": t1 * 1e3,
                          "ms_per_token": per_tok * 1e3, "whole_over_n_ms": median(tn) / n_new * 1e3})  # fmt: skip
        r.setdefault("head_to_head", []).append(_head_to_head(vp, batch, lambda: gen(n_new), t1, n_new, 1 if quick else max(5, 2 * reps + 1)))
    return r


def _head_to_head(vp, batch: int, gpt2_generate, gpt2_prefill_s: float, n_new: int, rounds: int) -> dict:
    """Per-token times of our samplers (batch 1: cfg 1; batch 2: cfg 3, one doubled batch of 2) and of GPT-2
    `generate` at the same batch, in turns; each prefill (measured alone) taken out, as in sections 2 and 3."""
    import torch

    from model.config import SamplingOptions
    from model.sampling import sample, sample_jacobi

    cfg = 1.0 if batch == 1 else 3.0
    seq = t2v_sequence(vp.preset, n_new)
    run = seq if cfg == 1.0 else seq.doubled()
    o = SamplingOptions(guidance=cfg)

    ours_pre = median(timed(_prefill_fn(vp.lm, run, seq.prefix_len + n_new), 5))
    fns = {"sequential": lambda i: sample(vp.lm, seq, o, generator=torch.Generator().manual_seed(i)),
           "jacobi": lambda i: sample_jacobi(vp.lm, seq, o, generator=torch.Generator().manual_seed(i)),
           "gpt2": lambda i: gpt2_generate()}  # fmt: skip
    ms: dict[str, list[float]] = {k: [] for k in fns}
    for i in range(rounds):
        for k, fn in fns.items():
            t = time.perf_counter()
            fn(i)
            whole = time.perf_counter() - t
            ms[k].append((whole - (gpt2_prefill_s if k == "gpt2" else ours_pre)) / (n_new - 1) * 1e3)
    ratios = {k: [g / o for g, o in zip(ms["gpt2"], ms[k])] for k in ("sequential", "jacobi")}
    return {"batch": batch, "cfg": cfg, "rounds": rounds, "ms_per_token": {k: median(v) for k, v in ms.items()}, "ms_all": ms,
            "ratio_median": {k: median(v) for k, v in ratios.items()}, "ratio_range": {k: [min(v), max(v)] for k, v in ratios.items()}}  # fmt: skip


# ------------------------------------------------------------------------------------------------ 4. uncached


def bench_uncached(vp, reps: int) -> dict:
    import torch

    from model.config import SamplingOptions
    from model.sampling import sample, sample_uncached

    o = SamplingOptions(guidance=1.0)
    seq = t2v_sequence(vp.preset, UNCACHED_TOKENS)
    sample_uncached(vp.lm, t2v_sequence(vp.preset, 4), o, generator=torch.Generator().manual_seed(0))  # warm-up
    tu = timed(lambda: sample_uncached(vp.lm, seq, o, generator=torch.Generator().manual_seed(1)), reps)
    sample(vp.lm, seq, o, generator=torch.Generator().manual_seed(0))
    tc = timed(lambda: sample(vp.lm, seq, o, generator=torch.Generator().manual_seed(1)), max(3, reps))
    return {"tokens": UNCACHED_TOKENS, "inputs_before_first": seq.prefix_len + 1, "batch": 1,
            "uncached_s": median(tu), "uncached_ms_per_token": median(tu) / UNCACHED_TOKENS * 1e3,
            "cached_s": median(tc), "cached_ms_per_token": median(tc) / UNCACHED_TOKENS * 1e3}  # fmt: skip
