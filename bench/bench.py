#!/usr/bin/env python
"""Benchmark videopoet on this machine and write a markdown report (bench/RESULTS.md) plus results.json.

One run measures, in order:
  1. machine limits: memory bandwidth (256 MB float32 copy) and fp32/bf16 matmul throughput (fp16 once, as a note)
  2. the LM's cached decode step inside `model.sampling.sample` (320 tokens, batch 1 = cfg 1.0, batch 2 = cfg 3.0),
     prefill timed on its own and taken out, against the bandwidth floor (all LM weights read once per step)
  3. reference A: Hugging Face GPT2LMHeadModel of the same depth/width/heads/vocab, `generate` with the KV cache
  4. reference B: our `sample_uncached` (full recompute per token), first 32 tokens
  4a. weight layout of the decode step ((out, in) as F.linear reads it, the sampler's (in, out) copies, bf16)
  4b. torch.compile of the decode step (eager vs compiled `sample`, compile time, same tokens)
  4c. threads per phase of the default clip (text encode, prefill, sampling, tokenizer decode, MP4 write) at 1..N
  5. end to end from a cold process: `videopoet generate` (wall time, peak RSS), plus a breakdown of one cold run
  6. length scaling: `generate --seconds 2` vs `--seconds 10`
  7. training throughput: `videopoet train lm` on one process and under torchrun with 2 processes
  8. the goals table

Every number in the report comes from this run. Timings are medians of N repeats (N is small under --quick).

    python bench/bench.py --out bench/RESULTS.md          # full run (idle machine!)
    python bench/bench.py --quick --skip-train --out /tmp/bench-quick.md   # smoke test

This file parses the options, runs the sections and writes the report; the work is in its neighbours:
  common.py     shared helpers: paths, logging, timing, machine facts, model inputs, run_measured/child_env
  lm_speed.py   in-process sections: limits, decode, gpt2, uncached
  processes.py  sections that time whole `videopoet` processes: e2e, scaling, batch, load, train
  layout_probe.py, compile_probe.py, threads_probe.py   sections 4a, 4b and 4c (each also runs alone: python bench/<name>.py)
  launcher.py   the small process that runs each measured command (wall time, exit status, own peak RSS)
  breakdown.py  the instrumented cold `generate` whose per-step times fill section 5's breakdown
  report.py     the goals table, the markdown rendering, and writing the files
"""

from __future__ import annotations

import argparse
import datetime as _dt
import json
import os
import shlex
import shutil
import signal
import sys
import tempfile
import time
import traceback
from pathlib import Path
from typing import Any, Callable, Optional

if str(Path(__file__).resolve().parent) not in sys.path:  # the modules beside this file (run as `python bench/bench.py`, it is)
    sys.path.insert(0, str(Path(__file__).resolve().parent))

import common  # noqa: E402  (first: puts the repository on sys.path and sets HF_HUB_OFFLINE before transformers loads)
from common import ROOT, T_START, log, machine_info, resolve_checkpoint  # noqa: E402
from lm_speed import bench_decode, bench_gpt2, bench_limits, bench_uncached  # noqa: E402
from processes import bench_batch, bench_e2e, bench_load, bench_scaling, bench_train  # noqa: E402
from report import atomic_write, get, goals, portable, render  # noqa: E402

SECTIONS = ("limits", "decode", "gpt2", "uncached", "layout", "compile", "threads", "e2e", "scaling", "batch", "load", "train")


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
            "e2e": 2 if q else 5, "scaling": 1 if q else 3, "batch": 1 if q else 3, "load": 1 if q else 3,
            "layout": 3 if q else 15, "compile": 1 if q else 3, "threads": 2 if q else 5}  # fmt: skip
    train_steps = 4 if q else 12

    out = Path(args.out)
    json_path = Path(args.json) if args.json else out.parent / "results.json"

    import torch

    import compile_probe  # in-process probes (they import torch and the model)
    import layout_probe
    import threads_probe
    from model.pipeline import VideoPoet

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
        common.CHILD_THREADS = args.threads
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
            ("gpt2", lambda: bench_gpt2(model(), reps["gpt2"], q)),
            ("uncached", lambda: bench_uncached(model(), reps["uncached"])),
            ("layout", lambda: layout_probe.measure(model(), reps["layout"])),
            ("compile", lambda: compile_probe.measure(model(), reps["compile"])),
            ("threads", lambda: threads_probe.measure(model(), reps["threads"])),
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
