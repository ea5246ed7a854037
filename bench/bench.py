#!/usr/bin/env python
"""Benchmark videopoet on this machine and write a markdown report (bench/RESULTS.md) plus results.json.

One run measures, in order:
  1. machine limits: memory bandwidth (256 MB float32 copy) and fp32/bf16 matmul throughput (fp16 once, as a note)
  2. the LM's cached decode step inside `model.sampling.sample` (320 tokens, batch 1 = cfg 1.0, batch 2 = cfg 3.0),
     prefill timed on its own and taken out, against the bandwidth floor (all LM weights read once per step)
  3. reference A: Hugging Face GPT2LMHeadModel of the same depth/width/heads/vocab, `generate` with the KV cache
  4. reference B: our `sample_uncached` (full recompute per token), first 32 tokens
  5. end to end from a cold process: `videopoet generate` (wall time, peak RSS), plus a breakdown of one cold run
  6. length scaling: `generate --seconds 2` vs `--seconds 10`
  7. training throughput: `videopoet train lm` on one process and under torchrun with 2 processes
  8. the goals table

Every number in the report comes from this run. Timings are medians of N repeats (N is small under --quick).

    python bench/bench.py --out bench/RESULTS.md          # full run (idle machine!)
    python bench/bench.py --quick --skip-train --out /tmp/bench-quick.md   # smoke test
"""

from __future__ import annotations

import argparse
import datetime as _dt
import json
import os
import platform
import re
import shlex
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
import traceback
from pathlib import Path
from typing import Any, Callable, Optional

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_NO_ADVISORY_WARNINGS", "1")

PROMPT = "a red circle moving right"
SECTIONS = ("limits", "decode", "gpt2", "uncached", "e2e", "scaling", "batch", "load", "train")
GPT2_PROMPT_LEN = 24
UNCACHED_TOKENS = 32

T_START = time.perf_counter()


def log(msg: str) -> None:
    print(f"[bench {time.perf_counter() - T_START:6.1f}s] {msg}", file=sys.stderr, flush=True)


def median(xs: list[float]) -> float:
    return float(statistics.median(xs))


def timed(fn: Callable[[], Any], reps: int) -> list[float]:
    out = []
    for _ in range(reps):
        t0 = time.perf_counter()
        fn()
        out.append(time.perf_counter() - t0)
    return out


# ------------------------------------------------------------------------------------------------ machine


def machine_info() -> dict:
    import torch

    info: dict[str, Any] = {}
    cpuinfo = Path("/proc/cpuinfo").read_text() if Path("/proc/cpuinfo").exists() else ""
    model = re.search(r"^model name\s*:\s*(.*)$", cpuinfo, re.M)
    flags = re.search(r"^flags\s*:\s*(.*)$", cpuinfo, re.M)
    flagset = set(flags.group(1).split()) if flags else set()
    cores = {(m.group(1), m.group(2)) for m in re.finditer(r"physical id\s*:\s*(\d+).*?core id\s*:\s*(\d+)", cpuinfo, re.S)}
    info["cpu"] = model.group(1).strip() if model else platform.processor() or "unknown"
    info["logical_cpus"] = os.cpu_count()
    info["usable_cpus"] = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    info["physical_cores"] = len(cores) or None
    mem = re.search(r"^MemTotal:\s*(\d+) kB", Path("/proc/meminfo").read_text(), re.M) if Path("/proc/meminfo").exists() else None
    info["ram_gib"] = round(int(mem.group(1)) / 2**20, 1) if mem else None
    info["avx512_bf16"] = "avx512_bf16" in flagset
    info["amx_bf16"] = "amx_bf16" in flagset
    info["avx512f"] = "avx512f" in flagset
    info["torch"] = torch.__version__
    info["torch_threads"] = torch.get_num_threads()
    info["OMP_NUM_THREADS"] = os.environ.get("OMP_NUM_THREADS")
    info["python"] = platform.python_version()
    info["platform"] = platform.platform()
    info["loadavg_at_start"] = [round(x, 2) for x in os.getloadavg()]
    try:
        import transformers

        info["transformers"] = transformers.__version__
    except Exception:  # pragma: no cover
        info["transformers"] = None
    try:
        rev = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=ROOT, capture_output=True, text=True, timeout=10)
        dirty = subprocess.run(["git", "status", "--porcelain"], cwd=ROOT, capture_output=True, text=True, timeout=10)
        info["git"] = rev.stdout.strip() + (" (uncommitted changes)" if dirty.stdout.strip() else "") if rev.returncode == 0 else None
    except Exception:
        info["git"] = None
    return info


# ------------------------------------------------------------------------------------------------ 1. limits


def bench_limits(reps: int) -> dict:
    import torch

    r: dict[str, Any] = {}
    n = 256 * 2**20 // 4  # 256 MB of float32
    src = torch.rand(n)
    dst = torch.empty_like(src)
    dst.copy_(src)
    ts = timed(lambda: dst.copy_(src), max(3, reps * 2))
    r["copy_bytes"] = 2 * n * 4  # read + write
    r["copy_s"] = median(ts)
    r["bandwidth_gbs"] = r["copy_bytes"] / r["copy_s"] / 1e9
    del src, dst

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


# ------------------------------------------------------------------------------------------------ model


def resolve_checkpoint(arg: Optional[str], tmp: Path) -> tuple[Path, str]:
    """(checkpoint path, how it was chosen) - the shipped tiny weights, or a random tiny-shaped fallback."""
    from model.config import load_preset, weights_path

    if arg:
        p = Path(arg).resolve()
        if not p.is_file():
            raise SystemExit(f"bench: --checkpoint {arg}: not a file")
        return p, "given (--checkpoint)"
    shipped = weights_path(load_preset("tiny"))
    if shipped is not None and shipped.is_file():
        return shipped.resolve(), "shipped tiny weights"
    from model.pipeline import VideoPoet

    path = tmp / "tiny-random.safetensors"
    VideoPoet.random("tiny", seed=0).save(path)
    return path, f"RANDOM weights of the tiny shape (the shipped file {shipped} is missing); speed is the same, output is noise"


def t2v_sequence(preset, n_out: int, batch: int = 1):
    """The t2v layout `generate` builds, with stand-in text states (the values do not change the cost)."""
    import torch
    import torch.nn.functional as F

    from model import tasks

    g = torch.Generator().manual_seed(0)
    lt, td = preset.lm.max_text_tokens, preset.lm.text_dim
    states = torch.randn(batch, lt, td, generator=g)
    valid = torch.ones(batch, lt, dtype=torch.bool)
    valid[:, 8:] = False  # a short prompt: padded text slots, as MiniLM gives for a few words
    pooled = F.normalize(torch.randn(batch, td, generator=g), dim=-1)
    return tasks.build("t2v", states, valid, pooled, n_out)


def lm_weight_bytes(lm) -> tuple[int, int]:
    """(all LM parameters, the ones a decode step reads: everything but the embedding table/text projections)."""
    total = sum(p.numel() * p.element_size() for p in lm.parameters())
    not_read = sum(p.numel() * p.element_size() for n, p in lm.named_parameters()
                   if n.startswith(("embed.", "text_proj.", "pool_proj.", "null_text")))  # fmt: skip
    return total, total - not_read


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

    @torch.no_grad()
    def prefill():
        cache = lm.new_cache(run.batch, seq.prefix_len + n_out, run.tokens.device)
        lm.prefill(run, cache)

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


def bench_gpt2(preset, reps: int, quick: bool) -> dict:
    import torch
    from transformers import GPT2Config, GPT2LMHeadModel
    from transformers.utils import logging as hf_logging

    from model.tasks import N_SPECIAL

    hf_logging.set_verbosity_error()
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
    return r


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


# ------------------------------------------------------------------------------------------------ subprocesses


# A small launcher process runs each measured command. Measuring from the bench process itself would be wrong:
# Linux charges a child the peak RSS of the address space it was forked/vforked from (the bench's, hundreds of
# MB once torch, the models and the 256 MB copy buffers are loaded) as soon as it execs.
LAUNCHER = r"""
import json, os, subprocess, sys, time
t0 = time.perf_counter()
p = subprocess.Popen(sys.argv[2:])
_, status, ru = os.wait4(p.pid, 0)
wall = time.perf_counter() - t0
with open(sys.argv[1], "w") as fh:
    json.dump({"wall_s": wall, "rc": os.waitstatus_to_exitcode(status), "maxrss_kib": ru.ru_maxrss}, fh)
"""


def run_measured(cmd: list[str], *, env: Optional[dict] = None, cwd: Optional[Path] = None, timeout: float = 600) -> dict:
    """Run cmd; its wall time (spawn to exit), exit status, and its own peak RSS (os.wait4 in a small launcher)."""
    with tempfile.TemporaryFile() as out, tempfile.TemporaryFile() as err, tempfile.TemporaryDirectory() as td:
        stats = Path(td) / "stats.json"
        p = subprocess.Popen([sys.executable, "-S", "-c", LAUNCHER, str(stats), *cmd], stdout=out, stderr=err,
                             stdin=subprocess.DEVNULL, env=env, cwd=cwd, start_new_session=True)  # fmt: skip
        try:
            p.wait(timeout=timeout)
        except BaseException as e:  # timeout, or this run being stopped: end the launcher and the command
            try:
                os.killpg(p.pid, signal.SIGKILL)  # their own process group (start_new_session)
            except ProcessLookupError:
                pass
            p.wait()
            if isinstance(e, subprocess.TimeoutExpired):
                raise RuntimeError(f"timed out after {timeout:.0f} s: {shlex.join(cmd)}") from None
            raise
        out.seek(0)
        err.seek(0)
        stdout, stderr = out.read().decode(errors="replace"), err.read().decode(errors="replace")
        if not stats.exists():
            raise RuntimeError(f"launcher failed (status {p.returncode}): {stderr.strip()[-500:]}")
        st = json.loads(stats.read_text())
    return {"wall_s": st["wall_s"], "rc": st["rc"], "maxrss_mb": st["maxrss_kib"] / 1024, "stdout": stdout, "stderr": stderr}


def check_ok(res: dict, what: str) -> dict:
    if res["rc"] != 0:
        tail = "\n".join((res["stderr"] or res["stdout"]).strip().splitlines()[-6:])
        raise RuntimeError(f"{what} exited with status {res['rc']}:\n{tail}")
    return res


def cli_path() -> Path:
    p = Path(sys.executable).parent / "videopoet"
    if not p.exists():
        raise RuntimeError(f"console script not found: {p} (is the package installed in this environment?)")
    return p


CHILD_THREADS: Optional[int] = None  # --threads: OMP_NUM_THREADS for the child processes too


def child_env(**extra: Optional[str]) -> dict:
    env = dict(os.environ)
    env["HF_HUB_OFFLINE"] = "1"
    if CHILD_THREADS is not None:
        env["OMP_NUM_THREADS"] = str(CHILD_THREADS)
    for k, v in extra.items():
        if v is None:
            env.pop(k, None)
        else:
            env[k] = v
    return env


BREAKDOWN_SCRIPT = r"""
import json, sys, time
T = [("start", time.perf_counter())]
def mark(name): T.append((name, time.perf_counter()))
import torch
from model.pipeline import VideoPoet
mark("imports")
ckpt, out_path, prompt = sys.argv[1], sys.argv[2], sys.argv[3]
vp = VideoPoet.from_pretrained("tiny", ckpt)
mark("model_load")
from model.text import shared_text_encoder
shared_text_encoder(vp.preset.lm.max_text_tokens)
mark("text_encoder_load")
states, valid, pooled = vp.encode_text([prompt])
mark("text_encode")
from model import tasks
from model.sampling import sample, sample_jacobi
t = vp.preset.tokenizer
n_out = t.latent_shape()[0] * t.tokens_per_latent_frame()
options = vp.sampling_options()  # the default clip's: the preset's decoding (jacobi), guidance, no negative
seq = tasks.build("t2v", states, valid, pooled, n_out)
gen = torch.Generator(device=vp.device).manual_seed(int(options.seed))
sampler = sample_jacobi if options.decoding == "jacobi" else sample
ids = sampler(vp.lm, seq, options, generator=gen)
mark("sampling")
video = vp._decode(ids)[0]
mark("tokenizer_decode")
from model.video_io import to_uint8, upscale, write_video
write_video(upscale(to_uint8(video), vp.preset.video.display_size), out_path, vp.preset.video.fps, "mp4", overwrite=True)
mark("write_file")
steps = {T[i][0]: T[i][1] - T[i - 1][1] for i in range(1, len(T))}
print(json.dumps({"steps": steps, "in_script_s": T[-1][1] - T[0][1], "cfg": options.guidance, "decoding": options.decoding, "n_out": n_out,
                  "threads": torch.get_num_threads()}))
"""


# ------------------------------------------------------------------------------------------------ 5. end to end


def bench_e2e(ckpt: Path, reps: int, tmp: Path) -> dict:
    exe = str(cli_path())
    work = tmp / "e2e"
    work.mkdir(exist_ok=True)
    env = child_env()
    r: dict[str, Any] = {}

    # the instrumented cold run goes first: it also brings the files into the page cache for the timed runs
    script = work / "breakdown.py"
    script.write_text(BREAKDOWN_SCRIPT)
    b = check_ok(run_measured([sys.executable, str(script), str(ckpt), str(work / "b.mp4"), PROMPT], env=env, cwd=ROOT), "breakdown run")
    data = json.loads(b["stdout"].strip().splitlines()[-1])
    data["process_wall_s"] = b["wall_s"]
    data["maxrss_mb"] = b["maxrss_mb"]
    data["interpreter_and_exit_s"] = b["wall_s"] - data["in_script_s"]
    r["breakdown"] = data

    cmd = [exe, "generate", PROMPT, "-o", str(work / "x.mp4"), "--overwrite", "--checkpoint", str(ckpt)]
    r["command"] = shlex.join(["videopoet", *cmd[1:]])
    runs = [check_ok(run_measured(cmd, env=env, cwd=work), "videopoet generate") for _ in range(reps)]
    r["wall_all_s"] = [x["wall_s"] for x in runs]
    r["maxrss_all_mb"] = [x["maxrss_mb"] for x in runs]
    r["wall_s"] = median(r["wall_all_s"])
    r["maxrss_mb"] = max(r["maxrss_all_mb"])
    r["file_bytes"] = (work / "x.mp4").stat().st_size
    return r


# ------------------------------------------------------------------------------------------------ 6. scaling


def bench_scaling(ckpt: Path, reps: int, tmp: Path) -> dict:
    exe = str(cli_path())
    work = tmp / "scaling"
    work.mkdir(exist_ok=True)
    env = child_env()
    r: dict[str, Any] = {"rows": []}
    for secs in (2, 10):
        cmd = [exe, "generate", PROMPT, "-o", str(work / f"s{secs}.mp4"), "--overwrite", "--checkpoint", str(ckpt), "--seconds", str(secs)]
        runs = [check_ok(run_measured(cmd, env=env, cwd=work), f"generate --seconds {secs}") for _ in range(reps)]
        r["rows"].append({"seconds": secs, "wall_s": median([x["wall_s"] for x in runs]), "wall_all_s": [x["wall_s"] for x in runs],
                          "maxrss_mb": max(x["maxrss_mb"] for x in runs)})  # fmt: skip
    r["ratio"] = r["rows"][1]["wall_s"] / r["rows"][0]["wall_s"]
    return r


# ------------------------------------------------------------------------------------------------ 6b. --num as one batch


def bench_batch(ckpt: Path, reps: int, tmp: Path) -> dict:
    """Clips per second of `generate --num N` (one batched sampling call) for N = 1, 2, 4, 8."""
    exe = str(cli_path())
    work = tmp / "batch"
    work.mkdir(exist_ok=True)
    env = child_env()
    r: dict[str, Any] = {"rows": []}
    for n in (1, 2, 4, 8):
        cmd = [exe, "generate", PROMPT, "-o", str(work / f"n{n}.mp4"), "--overwrite", "--checkpoint", str(ckpt), "--num", str(n)]
        runs = [check_ok(run_measured(cmd, env=env, cwd=work), f"generate --num {n}") for _ in range(reps)]
        wall = median([x["wall_s"] for x in runs])
        r["rows"].append({"num": n, "wall_s": wall, "clips_per_s": n / wall, "wall_all_s": [x["wall_s"] for x in runs]})
    base = r["rows"][0]["clips_per_s"]
    for row in r["rows"]:
        row["speedup"] = row["clips_per_s"] / base
    return r


# ------------------------------------------------------------------------------------------------ 6c. a busy machine

HOG = "while True:\n    pass\n"


def bench_load(ckpt: Path, reps: int, tmp: Path) -> dict:
    """The default clip's wall time idle, beside 1 and 2 busy-looping processes (started and stopped
    here), and as two `videopoet generate` processes at once. No thread settings are passed: this
    measures the CLI's own choice of threads."""
    import concurrent.futures

    exe = str(cli_path())
    work = tmp / "load"
    work.mkdir(exist_ok=True)
    env = {k: v for k, v in child_env().items() if k != "OMP_NUM_THREADS"}
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)

    def cmd(name: str) -> list[str]:
        return [exe, "generate", PROMPT, "-o", str(work / name), "--overwrite", "--checkpoint", str(ckpt)]

    idle = median([check_ok(run_measured(cmd("idle.mp4"), env=env, cwd=work), "idle generate")["wall_s"] for _ in range(reps)])
    r: dict[str, Any] = {"cores": cores, "idle_wall_s": idle, "rows": []}
    for k in (1, 2):
        hogs = [subprocess.Popen([sys.executable, "-c", HOG]) for _ in range(k)]
        try:
            time.sleep(1.0)  # let them occupy the cores
            walls = [check_ok(run_measured(cmd(f"hog{k}.mp4"), env=env, cwd=work), f"generate beside {k} hogs")["wall_s"] for _ in range(reps)]
        finally:
            for h in hogs:
                h.kill()
                h.wait()
        bound = 1.3 * idle * (k + cores) / cores
        r["rows"].append({"hogs": k, "wall_s": median(walls), "wall_all_s": walls, "bound_s": bound, "ratio_to_idle": median(walls) / idle})
    pairs = []
    for _ in range(reps):
        with concurrent.futures.ThreadPoolExecutor(2) as pool:
            futs = [pool.submit(run_measured, cmd(f"pair{j}.mp4"), env=env, cwd=work) for j in range(2)]
            pairs.append([check_ok(f.result(), "two generates at once")["wall_s"] for f in futs])
    worst = median([max(p) for p in pairs])
    r["two_at_once"] = {"wall_s_each": pairs, "worst_wall_s": worst, "ratio_to_idle": worst / idle, "bound_s": 2.6 * idle}
    return r


# ------------------------------------------------------------------------------------------------ 7. training

TOK_RE = re.compile(r"tok_per_s=([0-9.eE+-]+)")


def last_tok_per_s(stderr: str) -> float:
    found = TOK_RE.findall(stderr)
    if not found:
        raise RuntimeError("no tok_per_s= in the training output:\n" + "\n".join(stderr.strip().splitlines()[-6:]))
    return float(found[-1])


def bench_train(ckpt: Path, steps: int, tmp: Path) -> dict:
    exe = str(cli_path())
    out = tmp / "train"
    out.mkdir(exist_ok=True)
    args = ["train", "lm", "--tokenizer", str(ckpt), "--data", "world:64", "--controls", "16", "--batch", "8", "--out", str(out)]
    r: dict[str, Any] = {"data": "world:64", "controls": 16, "batch_per_process": 8, "steps": steps}

    def fresh():  # keep the cached lm-data-*.safetensors, drop anything a previous run trained
        for name in ("lm-state.safetensors", "videopoet.safetensors"):
            (out / name).unlink(missing_ok=True)

    # untimed: synthesizes the clips and tokenizes them once into OUT/lm-data-*.safetensors
    own = None if CHILD_THREADS is None else str(CHILD_THREADS)  # 1 process: torch's default threads unless --threads
    prep = run_measured([exe, *args, "--steps", "1"], env=child_env(OMP_NUM_THREADS=own), cwd=out, timeout=900)
    r["prep_wall_s"] = prep["wall_s"]
    r["tokenizer_arg_is_full_checkpoint"] = True
    r["full_checkpoint_accepted_as_tokenizer"] = prep["rc"] == 0
    check_ok(prep, "train lm (data preparation, --steps 1)")
    r["data_cache"] = [p.name for p in out.glob("lm-data-*.safetensors")]

    fresh()
    one = check_ok(run_measured([exe, *args, "--steps", str(steps)], env=child_env(OMP_NUM_THREADS=own), cwd=out), "train lm (1 process)")
    r["one_process"] = {"tok_per_s": last_tok_per_s(one["stderr"]), "wall_s": one["wall_s"], "maxrss_mb": one["maxrss_mb"],
                        "threads": "torch default (OMP_NUM_THREADS unset)" if own is None else f"OMP_NUM_THREADS={own}",
                        "command": shlex.join(["videopoet", *args, "--steps", str(steps)])}  # fmt: skip

    fresh()
    tr = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2", "-m", "videopoet_cli", *args, "--steps", str(steps)]
    env2 = child_env()
    env2["OMP_NUM_THREADS"] = "1"
    two = check_ok(run_measured(tr, env=env2, cwd=ROOT), "train lm under torchrun (2 processes)")
    r["two_process"] = {"tok_per_s": last_tok_per_s(two["stderr"]), "wall_s": two["wall_s"], "threads": "OMP_NUM_THREADS=1 per process",
                        "command": "OMP_NUM_THREADS=1 " + shlex.join(["torchrun", "--standalone", "--nproc_per_node", "2", "-m", "videopoet_cli", *args, "--steps", str(steps)])}  # fmt: skip
    r["speedup"] = r["two_process"]["tok_per_s"] / r["one_process"]["tok_per_s"]
    return r


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
    for b in (1, 2):
        ours, ref = get(row_for(get(dec, "rows"), b), "ms_per_token"), get(row_for(get(gpt, "rows"), b), "ms_per_token")
        x = ref / ours if ours and ref else None
        out.append({"goal": f"decode per token vs GPT2 generate, batch {b}", "target": ">= 2x faster",
                    "measured": None if x is None else f"{x:.2f}x (ours {ours:.2f} ms, GPT-2 {ref:.2f} ms)", "met": None if x is None else x >= 2})  # fmt: skip
    for b in (1, 2):  # the same goal met by parallel decoding (same tokens, fewer model calls)
        jac = next((r for r in get(dec, "rows") or [] if r.get("batch") == b and r.get("sampler") == "jacobi"), None)
        ours, ref = get(jac, "ms_per_token"), get(row_for(get(gpt, "rows"), b), "ms_per_token")
        x = ref / ours if ours and ref else None
        out.append({"goal": f"decode per token vs GPT2 generate, batch {b}, `--decoding jacobi`", "target": ">= 2x faster",
                    "measured": None if x is None else f"{x:.2f}x (ours {ours:.2f} ms, GPT-2 {ref:.2f} ms)", "met": None if x is None else x >= 2})  # fmt: skip
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
    add("| CPU | cores (logical / physical) | RAM | torch | threads used (default) | avx512_bf16 | amx_bf16 |")
    add("|---|---|---|---|---|---|---|")
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

    goal_rows = goals(res)
    add("## Goals")
    add("")
    add("| goal | target | measured | met |")
    add("|---|---|---|---|")
    for g in goal_rows:
        met = "n/a" if g["met"] is None else ("met" if g["met"] else "**not met**")
        add(f"| {g['goal']} | {g['target']} | {g['measured'] or 'n/a'} | {met} |")
    add("")

    add("## 1. Machine limits")
    add("")
    if not failed("limits"):
        r = res["limits"]
        add("| measure | value |")
        add("|---|---|")
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
        add("| sampler | batch | cfg | threads | whole sample | prefill | per token | vs floor | model calls |")
        add("|---|---|---|---|---|---|---|---|---|")
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
        add("| batch | whole generate | prefill (generate 1) | per token | whole / n |")
        add("|---|---|---|---|---|")
        for row in r["rows"]:
            add(f"| {row['batch']} | {row['generate_s']:.2f} s | {row['prefill_ms']:.1f} ms | {row['ms_per_token']:.2f} ms | "
                f"{row['whole_over_n_ms']:.2f} ms |")
        add("")

    add("## 4. Reference B: uncached sampler (full recompute per token)")
    add("")
    if not failed("uncached"):
        r = res["uncached"]
        add(f"First {r['tokens']} tokens at batch {r['batch']}, {r['inputs_before_first']} inputs before the first one (t2v prefix + `<bov_o>`); no extrapolation.")
        add("")
        add("| sampler | time for 32 tokens | per token |")
        add("|---|---|---|")
        add(f"| `sample_uncached` | {r['uncached_s'] * 1e3:.0f} ms | {r['uncached_ms_per_token']:.2f} ms |")
        add(f"| `sample` (cached, incl. prefill) | {r['cached_s'] * 1e3:.0f} ms | {r['cached_ms_per_token']:.2f} ms |")
        add("")

    add("## 5. End to end, cold process")
    add("")
    if not failed("e2e"):
        r = res["e2e"]
        add(f"`{r['command']}` run {len(r['wall_all_s'])} times, each a new process (after one instrumented run that warms the page cache). "
            "Peak memory: the process's own max RSS (`os.wait4` in a small launcher process).")
        add("")
        add("| wall (median) | wall (all runs) | peak RSS (max) |")
        add("|---|---|---|")
        add(f"| {r['wall_s']:.2f} s | {', '.join(f'{x:.2f}' for x in r['wall_all_s'])} s | {r['maxrss_mb']:.0f} MiB |")
        add("")
        bd = r["breakdown"]
        add(f"Breakdown of one instrumented cold process (same work as `generate`, cfg={bd['cfg']:g}, {bd.get('decoding', 'sequential')} decoding, "
            f"{bd['n_out']} tokens, threads: {bd['threads']}):")
        add("")
        add("| step | time |")
        add("|---|---|")
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
        add("| `generate --seconds` | wall (median) | runs | peak RSS |")
        add("|---|---|---|---|")
        for row in r["rows"]:
            add(f"| {row['seconds']} | {row['wall_s']:.2f} s | {', '.join(f'{x:.2f}' for x in row['wall_all_s'])} | {row['maxrss_mb']:.0f} MiB |")
        add("")
        add(f"Ratio 10 s / 2 s: **{r['ratio']:.2f}x** (goal <= 5.5x).")
        add("")

    add("## 6b. `--num N` as one batch")
    add("")
    if not failed("batch") and "batch" in res:
        add("| `generate --num` | wall (median) | clips/s | vs `--num 1` |")
        add("|---|---|---|---|")
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
        add("| beside | wall (median) | x idle | bound (fair share + 30%) |")
        add("|---|---|---|---|")
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
        add("| run | threads | tokens/s | wall |")
        add("|---|---|---|---|")
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


# ------------------------------------------------------------------------------------------------ main


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


def main(argv: Optional[list[str]] = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0], formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--out", default=str(ROOT / "bench" / "RESULTS.md"), help="markdown report (default: bench/RESULTS.md)")
    ap.add_argument("--json", default=None, help="JSON results (default: results.json next to --out)")
    ap.add_argument("--checkpoint", default=None, help="full videopoet checkpoint (default: the tiny preset's shipped weights)")
    ap.add_argument("--quick", action="store_true", help="few repeats: a smoke test, not numbers to quote")
    ap.add_argument("--skip-train", action="store_true", help="leave out the training throughput section")
    ap.add_argument("--threads", type=int, default=None,
                    help="torch threads here and OMP_NUM_THREADS in the child processes (default: torch's default; under "
                         "--quick on a busy machine, 1)")
    ap.add_argument("--only", default=None, help=f"comma-separated subset of sections ({','.join(SECTIONS)}), for development")
    args = ap.parse_args(argv)

    only = set(SECTIONS) if args.only is None else {s.strip() for s in args.only.split(",") if s.strip()}
    bad = only - set(SECTIONS)
    if bad:
        ap.error(f"--only: unknown section(s) {sorted(bad)}; choose from {','.join(SECTIONS)}")
    if args.skip_train:
        only.discard("train")
    q = args.quick
    reps = {"limits": 2 if q else 5, "decode": 1 if q else 5, "gpt2": 1 if q else 3, "uncached": 1 if q else 3,
            "e2e": 2 if q else 5, "scaling": 1 if q else 3, "batch": 1 if q else 3, "load": 1 if q else 3}  # fmt: skip
    train_steps = 4 if q else 12

    out = Path(args.out)
    json_path = Path(args.json) if args.json else out.parent / "results.json"

    import torch

    from model.pipeline import VideoPoet

    global CHILD_THREADS
    threads_note = None
    default_threads = torch.get_num_threads()
    if args.threads is None and q and os.getloadavg()[0] >= 1.0:
        # a second job on the cores makes torch's OpenMP threads wait on each other (tens of times slower):
        # a smoke test on a busy machine runs single-threaded so it finishes in minutes
        args.threads = 1
        threads_note = f"--quick on a busy machine (load {os.getloadavg()[0]:.2f}): 1 thread here and in the child processes"
    if args.threads is not None:
        if args.threads < 1:
            ap.error("--threads must be >= 1")
        torch.set_num_threads(args.threads)
        CHILD_THREADS = args.threads
        threads_note = threads_note or f"--threads {args.threads}: here and OMP_NUM_THREADS in the child processes"

    res: dict[str, Any] = {
        "command": shlex.join([sys.executable, *sys.argv]) if argv is None else shlex.join(["bench.py", *argv]),
        "date": _dt.datetime.now().astimezone().isoformat(timespec="seconds"),
        "quick": q, "reps": reps, "skip_train": "train" not in only, "sections": [s for s in SECTIONS if s in only], "errors": {},
    }  # fmt: skip
    res["machine"] = machine_info()
    res["threads_note"] = threads_note
    res["machine"]["torch_default_threads"] = default_threads
    log(f"machine: {res['machine']['cpu']}, {res['machine']['logical_cpus']} cpus, load {res['machine']['loadavg_at_start']}")
    if res["machine"]["loadavg_at_start"][0] > 0.5:
        log("WARNING: the machine is busy; every timing will be contended (and with several threads, much slower)")

    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))  # so a killed run still removes its temp folder
    tmp = Path(tempfile.mkdtemp(prefix="videopoet-bench-"))
    try:
        ckpt, source = resolve_checkpoint(args.checkpoint, tmp)
        res["checkpoint"], res["checkpoint_source"] = str(ckpt), source
        log(f"checkpoint: {ckpt} ({source})")

        vp = None

        def model():
            nonlocal vp
            if vp is None:
                vp = VideoPoet.from_pretrained("tiny", ckpt)
            return vp

        steps: list[tuple[str, Callable[[], dict]]] = [
            ("limits", lambda: bench_limits(reps["limits"])),
            ("decode", lambda: bench_decode(model(), reps["decode"], get(res, "limits", "bandwidth_gbs"), q)),
            ("gpt2", lambda: bench_gpt2(model().preset, reps["gpt2"], q)),
            ("uncached", lambda: bench_uncached(model(), reps["uncached"])),
            ("e2e", lambda: bench_e2e(ckpt, reps["e2e"], tmp)),
            ("scaling", lambda: bench_scaling(ckpt, reps["scaling"], tmp)),
            ("batch", lambda: bench_batch(ckpt, reps["batch"], tmp)),
            ("load", lambda: bench_load(ckpt, reps["load"], tmp)),
            ("train", lambda: bench_train(ckpt, train_steps, tmp)),
        ]
        for name, fn in steps:
            if name not in only:
                continue
            log(f"{name} ...")
            t0 = time.perf_counter()
            try:
                with torch.no_grad():
                    res[name] = fn()
            except Exception as e:  # one failing section still leaves a report of the others
                res["errors"][name] = f"{type(e).__name__}: {e}\n" + "".join(traceback.format_exc().splitlines(True)[-4:])
                log(f"{name} FAILED: {type(e).__name__}: {str(e).splitlines()[0] if str(e) else ''}")
            res.setdefault("section_wall_s", {})[name] = time.perf_counter() - t0
            log(f"{name} done in {time.perf_counter() - t0:.1f}s")
    finally:
        shutil.rmtree(tmp, ignore_errors=True)

    res["bench_wall_s"] = time.perf_counter() - T_START
    res["goals"] = goals(res)
    res = portable(res, tmp)
    atomic_write(json_path, json.dumps(res, indent=2, default=str) + "\n")
    atomic_write(out, render(res))
    log(f"wrote {out} and {json_path} ({res['bench_wall_s']:.0f} s)")
    return 1 if res["errors"] else 0


if __name__ == "__main__":
    sys.exit(main())
