"""The report: the goals table, the markdown rendering of bench/RESULTS.md, and writing the results."""

from __future__ import annotations

import os
import sys
import tempfile
from pathlib import Path
from typing import Any, Optional


# ------------------------------------------------------------------------------------------------ report


def f(x: Any, spec: str = ".2f") -> str:
    return "n/a" if x is None else format(x, spec)


def get(d: Optional[dict], *path: Any) -> Any:
    for k in path:
        if d is None:
            return None
        try:
            d = d[k]
        except (KeyError, IndexError, TypeError):
            return None
    return d


def row_for(rows: Optional[list], batch: int) -> Optional[dict]:
    """The first row for `batch`: for the decode table, the one at the run's own thread count."""
    return next((r for r in rows or [] if r.get("batch") == batch), None)


def goals(res: dict) -> list[dict]:
    dec, gpt = res.get("decode"), res.get("gpt2")
    out = []
    for sampler, name in (("sequential", ""), ("jacobi", ", `--decoding jacobi`")):
        for b in (1, 2):
            h2h = next((h for h in get(gpt, "head_to_head") or [] if h["batch"] == b), None)
            if h2h is not None:  # interleaved rounds: the fair comparison on a machine whose speed drifts
                x, (lo, hi) = h2h["ratio_median"][sampler], h2h["ratio_range"][sampler]
                ours, ref = h2h["ms_per_token"][sampler], h2h["ms_per_token"]["gpt2"]
                measured = f"{x:.2f}x (median of {h2h['rounds']} interleaved rounds, {lo:.2f}-{hi:.2f}x; ours {ours:.2f} ms, GPT-2 {ref:.2f} ms)"
            else:  # sections 2 and 3, timed apart
                row = next((r for r in get(dec, "rows") or [] if r.get("batch") == b and r.get("sampler", "sequential") == sampler), None)
                ours, ref = get(row, "ms_per_token"), get(row_for(get(gpt, "rows"), b), "ms_per_token")
                x = ref / ours if ours and ref else None
                measured = None if x is None else f"{x:.2f}x (ours {ours:.2f} ms, GPT-2 {ref:.2f} ms)"
            out.append({"goal": f"decode per token vs GPT2 generate, batch {b}{name}", "target": ">= 2x faster",
                        "measured": measured, "met": None if x is None else x >= 2})  # fmt: skip
    for b in (1, 2):
        v = get(row_for(get(dec, "rows"), b), "vs_floor")
        out.append({"goal": f"decode step vs bandwidth floor, batch {b}", "target": "<= 2.5x floor",
                    "measured": None if v is None else f"{v:.2f}x (step {get(row_for(get(dec, 'rows'), b), 'ms_per_token'):.2f} ms, floor {dec['floor_ms']:.2f} ms)",
                    "met": None if v is None else v <= 2.5})  # fmt: skip
    e2e = res.get("e2e")
    w, m = get(e2e, "wall_s"), get(e2e, "maxrss_mb")
    out.append({"goal": "cold `generate`, default clip: wall (median)", "target": "<= 5 s",
                "measured": None if w is None else f"{w:.2f} s", "met": None if w is None else w <= 5})
    out.append({"goal": "cold `generate`, default clip: peak memory", "target": "<= 1.5 GB",
                "measured": None if m is None else f"{m * 2**20 / 1e9:.2f} GB ({m:.0f} MiB peak RSS)", "met": None if m is None else m * 2**20 <= 1.5e9})
    ratio = get(res, "scaling", "ratio")
    out.append({"goal": "`--seconds 10` vs `--seconds 2` wall", "target": "<= 5.5x",
                "measured": None if ratio is None else f"{ratio:.2f}x", "met": None if ratio is None else ratio <= 5.5})
    b4 = next((r for r in get(res, "batch", "rows") or [] if r["num"] == 4), None)
    out.append({"goal": "`--num 4` clips/s vs `--num 1`", "target": ">= 1.6x",
                "measured": None if b4 is None else f"{b4['speedup']:.2f}x", "met": None if b4 is None else b4["speedup"] >= 1.6})
    load = res.get("load")
    for row in get(load, "rows") or []:
        out.append({"goal": f"default clip beside {row['hogs']} busy process(es) on {load['cores']} cores", "target": "<= 1.3 x idle x (k+c)/c",
                    "measured": f"{row['wall_s']:.2f} s ({row['ratio_to_idle']:.2f}x idle {load['idle_wall_s']:.2f} s; bound {row['bound_s']:.2f} s)",
                    "met": row["wall_s"] <= row["bound_s"]})  # fmt: skip
    two = get(load, "two_at_once")
    if two:
        out.append({"goal": "two `generate` processes at once, each", "target": "<= 2.6x idle",
                    "measured": f"{two['ratio_to_idle']:.2f}x ({two['worst_wall_s']:.2f} s, the slower of the two)", "met": two["worst_wall_s"] <= two["bound_s"]})
    return out


def render(res: dict) -> str:
    m = res["machine"]
    L: list[str] = []
    add = L.append

    def header(*columns: str) -> None:
        """A markdown table's header row and its rule."""
        add("| " + " | ".join(columns) + " |")
        add("|" + "---|" * len(columns))

    add("# videopoet benchmark")
    add("")
    add(f"Command: `{res['command']}`  ")
    add(f"Date: {res['date']}  ")
    add(f"Run time: {res['bench_wall_s']:.0f} s{' (--quick: few repeats; smoke test, not for quoting)' if res['quick'] else ''}  ")
    add(f"Git: {m.get('git') or 'n/a'}  ")
    add(f"Checkpoint: `{res['checkpoint']}` - {res['checkpoint_source']}")
    add("")
    load1 = m["loadavg_at_start"][0]
    if load1 > 0.5:
        add(f"> **Warning:** load average was {load1:.2f} when the run started: another job was using the CPU, so these timings are contended.")
        add("")
    add("## Machine")
    add("")
    header("CPU", "cores (logical / physical)", "RAM", "torch", "threads used (default)", "avx512_bf16", "amx_bf16")
    add(f"| {m['cpu']} | {m['logical_cpus']} / {m['physical_cores'] or '?'} | {f(m['ram_gib'], '.1f')} GiB | {m['torch']} | "
        f"{m['torch_threads']} ({m.get('torch_default_threads')}) | {'yes' if m['avx512_bf16'] else 'no'} | {'yes' if m['amx_bf16'] else 'no'} |")
    add("")
    add(f"Python {m['python']}, transformers {m.get('transformers')}, {m['platform']}; repeats per timing: {', '.join(f'{k} {v}' for k, v in res['reps'].items())}.")
    add("")
    if res.get("threads_note"):
        add(f"Threads: {res['threads_note']}.")
        add("")

    def failed(name: str) -> bool:
        err = res.get("errors", {}).get(name)
        if err:
            add(f"**Failed:** `{err.splitlines()[0]}`")
            add("")
            add("```")
            add(err)
            add("```")
            add("")
            return True
        if name not in res:
            add("(not run)")
            add("")
            return True
        return False

    def optional_section(name: str, title: str) -> bool:
        """A section only some runs have (4a-4c): nothing at all when the run left it out, else its title
        (and any failure); True when there are results to render."""
        if name not in res and name not in res.get("errors", {}):
            return False
        add(title)
        add("")
        return not failed(name)

    goal_rows = goals(res)
    add("## Goals")
    add("")
    header("goal", "target", "measured", "met")
    for g in goal_rows:
        met = "n/a" if g["met"] is None else ("met" if g["met"] else "**not met**")
        add(f"| {g['goal']} | {g['target']} | {g['measured'] or 'n/a'} | {met} |")
    add("")

    add("## 1. Machine limits")
    add("")
    if not failed("limits"):
        r = res["limits"]
        header("measure", "value")
        add(f"| memory bandwidth (256 MB fp32 `copy_`, read + write) | {r['bandwidth_gbs']:.1f} GB/s |")
        add(f"| fp32 matmul {r['matmul_fp32_n']}^3 | {r['matmul_fp32_gflops']:.0f} GFLOP/s |")
        add(f"| bf16 matmul {r['matmul_bf16_n']}^3 | {r['matmul_bf16_gflops']:.0f} GFLOP/s |")
        add("")
        add(f"Note: fp16 matmul ({r['matmul_fp16_n']}^3, one run) runs at {r['matmul_fp16_gflops']:.2f} GFLOP/s: "
            "this CPU has no fast fp16 path, so fp16 is not an option for inference here.")
        add("")

    add("## 2. LM decode step (our cached sampler)")
    add("")
    if not failed("decode"):
        r = res["decode"]
        add(f"`model.sampling.sample` of {r['n_out']} tokens, t2v layout ({r['prefix_len']}-token prefix + `<bov_o>`), "
            f"prefill timed alone and subtracted; ms/token = (sample - prefill) / {r['n_out'] - 1} decode steps.")
        add("")
        header("sampler", "batch", "cfg", "threads", "whole sample", "prefill", "per token", "vs floor", "model calls")
        for row in r["rows"]:
            sampler = row.get("sampler", "sequential")
            add(f"| {sampler} | {row['batch']} | {row['cfg']:g} | {row['threads']} | {row['sample_s']:.2f} s | {row['prefill_ms']:.1f} ms | {row['ms_per_token']:.2f} ms | "
                f"{f(row.get('vs_floor'), '.2f')}x | {row.get('model_calls', r['n_out'])} |")
        add("")
        add("jacobi rows: `--decoding jacobi` (model.sampling.sample_jacobi) gives the same tokens for a seed; "
            "per token is its wall time per output token, so vs floor compares it with one weight read per token.")
        add("")
        if len({row["threads"] for row in r["rows"]}) > 1:
            add(f"The goals use the rows at {r['rows'][0]['threads']} threads (this run's setting, the same as GPT-2's); "
                "the 1-thread rows show whether threading pays at this size.")
            add("")
        if r.get("floor_ms") is not None:
            add(f"Floor: LM weights {r['lm_weight_bytes'] / 1e6:.1f} MB ({r['lm_params'] / 1e6:.2f} M {r['weight_dtype']} parameters) "
                f"/ {res['limits']['bandwidth_gbs']:.1f} GB/s = **{r['floor_ms']:.2f} ms** per step. "
                f"(Without the embedding table and text projections, which a step does not read: "
                f"{r['lm_weight_bytes_read_per_step'] / 1e6:.1f} MB, {r['floor_read_ms']:.2f} ms.)")
        else:
            add("Floor: n/a (the bandwidth section did not run).")
        add("")

    add("## 3. Reference A: Hugging Face GPT-2 `generate`")
    add("")
    if not failed("gpt2"):
        r = res["gpt2"]
        add(f"`GPT2LMHeadModel`: {r['n_layer']} layers, width {r['n_embd']}, {r['n_head']} heads, vocab {r['vocab']}, "
            f"n_inner {r['n_inner']} (MLP {r['mlp_params_per_layer'] / 1e3:.0f} k params/layer vs our SwiGLU "
            f"{r['our_mlp_params_per_layer'] / 1e3:.0f} k), {r['params'] / 1e6:.2f} M params, random init, attention `{r['attn_implementation']}`. "
            f"`generate(prompt of {r['prompt_len']}, max_new_tokens=min_new_tokens={r['new_tokens']}, do_sample, use_cache, top_k=0)`; "
            f"ms/token = (generate {r['new_tokens']} - generate 1) / {r['new_tokens'] - 1}.")
        add("")
        header("batch", "whole generate", "prefill (generate 1)", "per token", "whole / n")
        for row in r["rows"]:
            add(f"| {row['batch']} | {row['generate_s']:.2f} s | {row['prefill_ms']:.1f} ms | {row['ms_per_token']:.2f} ms | "
                f"{row['whole_over_n_ms']:.2f} ms |")
        add("")
        if r.get("head_to_head"):
            add("Head to head (the goals' numbers): our sequential and Jacobi samplers (batch 1: cfg 1; batch 2: cfg 3 as one doubled "
                "batch) and GPT-2 `generate` at the same batch, 320 tokens each, timed in turns round after round so a drifting "
                "machine slows all three alike; each prefill taken out; ratio = GPT-2's per-token time / ours, per round.")
            add("")
            header("batch", "rounds", "ours sequential", "ours jacobi", "GPT-2", "ratio sequential (median, range)", "ratio jacobi (median, range)")
            for h in r["head_to_head"]:
                m, q, rr = h["ms_per_token"], h["ratio_median"], h["ratio_range"]
                add(f"| {h['batch']} | {h['rounds']} | {m['sequential']:.2f} ms | {m['jacobi']:.2f} ms | {m['gpt2']:.2f} ms | "
                    f"{q['sequential']:.2f}x ({rr['sequential'][0]:.2f}-{rr['sequential'][1]:.2f}) | {q['jacobi']:.2f}x ({rr['jacobi'][0]:.2f}-{rr['jacobi'][1]:.2f}) |")
            add("")

    add("## 4. Reference B: uncached sampler (full recompute per token)")
    add("")
    if not failed("uncached"):
        r = res["uncached"]
        add(f"First {r['tokens']} tokens at batch {r['batch']}, {r['inputs_before_first']} inputs before the first one (t2v prefix + `<bov_o>`); no extrapolation.")
        add("")
        header("sampler", "time for 32 tokens", "per token")
        add(f"| `sample_uncached` | {r['uncached_s'] * 1e3:.0f} ms | {r['uncached_ms_per_token']:.2f} ms |")
        add(f"| `sample` (cached, incl. prefill) | {r['cached_s'] * 1e3:.0f} ms | {r['cached_ms_per_token']:.2f} ms |")
        add("")

    if optional_section("layout", "## 4a. Matrix-product kernels of the sampler's model calls"):
        r = res["layout"]
        add(f"The shipped LM's model calls (position 100 of the output, {r['threads']} threads) with four policies for its projections, "
            f"timed in turns ({r['rounds']} rounds, best of each; `bench/layout_probe.py`): `f_linear` F.linear on the (out, in) weights; "
            "`x_wt` x @ w_t on (in, out) contiguous copies; `by_rows` (the sampler's, `model.transformer.project`) w @ x^T for "
            f"2..{r['small_rows']} rows and x @ w_t otherwise; `x_wt_bf16` x @ w_t on bfloat16 copies under bf16 autocast.")
        add("")
        header("call", "rows", *r["calls"][next(iter(r["calls"]))]["ms"], "fastest", "max logit difference vs by_rows")
        for name, c in r["calls"].items():
            base = c["ms"]["f_linear"]
            cells = [f"{ms:.2f} ms ({base / ms:.2f}x)" for ms in c["ms"].values()]
            diff = max(v for k, v in c["max_abs_logit_diff_vs_by_rows"].items() if not k.endswith("bf16"))
            add(f"| {name} | {c['rows']} | " + " | ".join(cells) + f" | {c['fastest']} | fp32 {diff:.1e}, bf16 {c['max_abs_logit_diff_vs_by_rows']['x_wt_bf16']:.1e} |")
        add("")
        add("(x) = speed relative to `f_linear` in the same row.")
        add("")
    if optional_section("compile", "## 4b. `torch.compile` of the decode step"):
        add(f"`model.sampling.sample` of 320 tokens with `lm.decode_step` eager or wrapped in `torch.compile(dynamic=True)` "
            f"(torch {res['compile']['torch']}, {res['compile']['threads']} threads); per token = whole sample / 320.")
        add("")
        header("batch", "mode", "per token", "vs eager", "first run (compiles)", "same tokens")
        for r in res["compile"]["rows"]:
            if "error" in r:
                add(f"| {r['batch']} | {r['mode']} | failed: {r['error']} | | | |")
            else:
                add(f"| {r['batch']} | {r['mode']} | {f(r['ms_per_token'])} ms | {f(r.get('speedup'), '.2f') + 'x' if 'speedup' in r else '-'} | "
                    f"{f(r.get('first_run_s'), '.1f') + ' s' if 'first_run_s' in r else '-'} | {('yes' if r['same_tokens'] else 'no') if 'same_tokens' in r else '-'} |")
        add("")
    if optional_section("threads", "## 4c. Threads per phase of the default clip"):
        t = res["threads"]
        counts = sorted({int(n) for v in t["seconds"].values() for n in v})
        add(f"Median seconds per phase at each intra-op thread count ({t['cpus']} CPUs in this process's affinity; "
            f"{t['decoding']} decoding, guidance {t['guidance']:g}).")
        add("")
        header("phase", *(f"{n} thread{'s' if n > 1 else ''}" for n in counts), "fastest")
        for phase, v in t["seconds"].items():
            add(f"| {phase} | " + " | ".join(f"{v.get(n, v.get(str(n))) * 1e3:.1f} ms" for n in counts) + f" | {t['best_threads'][phase]} |")
        add("")
    add("## 5. End to end, cold process")
    add("")
    if not failed("e2e"):
        r = res["e2e"]
        add(f"`{r['command']}` run {len(r['wall_all_s'])} times, each a new process (after one instrumented run that warms the page cache). "
            "Peak memory: the process's own max RSS (`os.wait4` in a small launcher process).")
        add("")
        header("wall (median)", "wall (all runs)", "peak RSS (max)")
        add(f"| {r['wall_s']:.2f} s | {', '.join(f'{x:.2f}' for x in r['wall_all_s'])} s | {r['maxrss_mb']:.0f} MiB |")
        add("")
        bd = r["breakdown"]
        add(f"Breakdown of one instrumented cold process (same work as `generate`, cfg={bd['cfg']:g}, {bd.get('decoding', 'sequential')} decoding, "
            f"{bd['n_out']} tokens, threads: {bd['threads']}):")
        add("")
        header("step", "time")
        names = {"imports": "imports (`torch`, `model.pipeline`)", "model_load": "model load (`from_pretrained`)",
                 "text_encoder_load": "text encoder load (MiniLM)", "text_encode": "text encode (1 prompt)",
                 "sampling": "sampling (the preset's sampler, prefill + decode)", "tokenizer_decode": "tokenizer decode (`_decode`)",
                 "write_file": "file writing (upscale + mp4)"}  # fmt: skip
        for k, v in bd["steps"].items():
            add(f"| {names.get(k, k)} | {v * 1e3:.0f} ms |")
        add(f"| interpreter start-up and exit (process wall - script) | {bd['interpreter_and_exit_s'] * 1e3:.0f} ms |")
        add(f"| **process total** (peak RSS {bd['maxrss_mb']:.0f} MiB) | **{bd['process_wall_s'] * 1e3:.0f} ms** |")
        add("")

    add("## 6. Length scaling")
    add("")
    if not failed("scaling"):
        r = res["scaling"]
        header("`generate --seconds`", "wall (median)", "runs", "peak RSS")
        for row in r["rows"]:
            add(f"| {row['seconds']} | {row['wall_s']:.2f} s | {', '.join(f'{x:.2f}' for x in row['wall_all_s'])} | {row['maxrss_mb']:.0f} MiB |")
        add("")
        add(f"Ratio 10 s / 2 s: **{r['ratio']:.2f}x** (goal <= 5.5x).")
        add("")

    add("## 6b. `--num N` as one batch")
    add("")
    if not failed("batch") and "batch" in res:
        header("`generate --num`", "wall (median)", "clips/s", "vs `--num 1`")
        for row in res["batch"]["rows"]:
            add(f"| {row['num']} | {row['wall_s']:.2f} s | {row['clips_per_s']:.3f} | {row['speedup']:.2f}x |")
        add("")

    add("## 6c. A busy machine")
    add("")
    if not failed("load") and "load" in res:
        r = res["load"]
        add(f"The default clip, cold, with no thread settings (the CLI picks them); busy-looping processes started "
            f"and stopped by the benchmark; {r['cores']} cores. Idle: {r['idle_wall_s']:.2f} s.")
        add("")
        header("beside", "wall (median)", "x idle", "bound (fair share + 30%)")
        for row in r["rows"]:
            add(f"| {row['hogs']} busy process(es) | {row['wall_s']:.2f} s | {row['ratio_to_idle']:.2f}x | {row['bound_s']:.2f} s |")
        two = r["two_at_once"]
        add(f"| another `videopoet generate` (the slower of the two) | {two['worst_wall_s']:.2f} s | {two['ratio_to_idle']:.2f}x | {two['bound_s']:.2f} s |")
        add("")

    add("## 7. Training throughput")
    add("")
    if res.get("skip_train"):
        add("(skipped: --skip-train)")
        add("")
    elif not failed("train"):
        r = res["train"]
        add(f"`train lm --data {r['data']} --controls {r['controls']} --batch {r['batch_per_process']} --steps {r['steps']}`, "
            f"tokens/s from the last progress line. Data tokenized once beforehand (untimed, {r['prep_wall_s']:.0f} s) and reused. "
            f"`--tokenizer` was given the full checkpoint: {'accepted' if r['full_checkpoint_accepted_as_tokenizer'] else 'REFUSED'}.")
        add("")
        header("run", "threads", "tokens/s", "wall")
        add(f"| 1 process | {r['one_process']['threads']} | {r['one_process']['tok_per_s']:.0f} | {r['one_process']['wall_s']:.1f} s |")
        add(f"| torchrun, 2 processes | {r['two_process']['threads']} | {r['two_process']['tok_per_s']:.0f} | {r['two_process']['wall_s']:.1f} s |")
        add("")
        add(f"2 processes / 1 process: **{r['speedup']:.2f}x**.")
        add("")
    return "\n".join(L) + "\n"


def atomic_write(path: Path, text: str) -> None:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "w") as fh:
            fh.write(text)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def portable(value: Any, tmp: Path) -> Any:
    """The results with machine paths taken out: the repository root becomes relative, the interpreter
    `python`, the temporary folder `$TMP`, so a committed report says nothing of where it ran."""
    if isinstance(value, dict):
        return {k: portable(v, tmp) for k, v in value.items()}
    if isinstance(value, list):
        return [portable(v, tmp) for v in value]
    if isinstance(value, str):
        root = str(Path(__file__).resolve().parent.parent) + os.sep
        return value.replace(sys.executable, "python").replace(str(tmp), "$TMP").replace(root, "")
    return value
