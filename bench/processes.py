"""Measurements of whole `videopoet` processes: cold generate (with its breakdown), length, batch, load, training."""

from __future__ import annotations

import json
import os
import re
import shlex
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import common
from common import PROMPT, ROOT, check_ok, child_env, cli_path, median, run_measured


def generate_cmd(ckpt: Path, out: Path, *extra: str) -> list[str]:
    """The installed `videopoet generate` of the README's first prompt, written to `out`."""
    return [str(cli_path()), "generate", PROMPT, "-o", str(out), "--overwrite", "--checkpoint", str(ckpt), *extra]


def timed_runs(cmd: list[str], reps: int, work: Path, what: str) -> list[dict]:
    """`reps` cold runs of cmd in `work`, each a new process (wall time and its own peak RSS)."""
    env = child_env()
    return [check_ok(run_measured(cmd, env=env, cwd=work), what) for _ in range(reps)]


def workdir(tmp: Path, name: str) -> Path:
    work = tmp / name
    work.mkdir(exist_ok=True)
    return work


# ------------------------------------------------------------------------------------------------ 5. end to end


def bench_e2e(ckpt: Path, reps: int, tmp: Path) -> dict:
    work = workdir(tmp, "e2e")
    env = child_env()
    r: dict[str, Any] = {}

    # the instrumented cold run goes first: it also brings the files into the page cache for the timed runs
    script = ROOT / "bench" / "breakdown.py"
    b = check_ok(run_measured([sys.executable, str(script), str(ckpt), str(work / "b.mp4"), PROMPT], env=env, cwd=ROOT), "breakdown run")
    data = json.loads(b["stdout"].strip().splitlines()[-1])
    data["process_wall_s"] = b["wall_s"]
    data["maxrss_mb"] = b["maxrss_mb"]
    data["interpreter_and_exit_s"] = b["wall_s"] - data["in_script_s"]
    r["breakdown"] = data

    cmd = generate_cmd(ckpt, work / "x.mp4")
    r["command"] = shlex.join(["videopoet", *cmd[1:]])
    runs = timed_runs(cmd, reps, work, "videopoet generate")
    r["wall_all_s"] = [x["wall_s"] for x in runs]
    r["maxrss_all_mb"] = [x["maxrss_mb"] for x in runs]
    r["wall_s"] = median(r["wall_all_s"])
    r["maxrss_mb"] = max(r["maxrss_all_mb"])
    r["file_bytes"] = (work / "x.mp4").stat().st_size
    return r


# ------------------------------------------------------------------------------------------------ 6. scaling


def bench_scaling(ckpt: Path, reps: int, tmp: Path) -> dict:
    work = workdir(tmp, "scaling")
    r: dict[str, Any] = {"rows": []}
    for secs in (2, 10):
        runs = timed_runs(generate_cmd(ckpt, work / f"s{secs}.mp4", "--seconds", str(secs)), reps, work, f"generate --seconds {secs}")
        r["rows"].append({"seconds": secs, "wall_s": median([x["wall_s"] for x in runs]), "wall_all_s": [x["wall_s"] for x in runs],
                          "maxrss_mb": max(x["maxrss_mb"] for x in runs)})  # fmt: skip
    r["ratio"] = r["rows"][1]["wall_s"] / r["rows"][0]["wall_s"]
    return r


# ------------------------------------------------------------------------------------------------ 6b. --num as one batch


def bench_batch(ckpt: Path, reps: int, tmp: Path) -> dict:
    """Clips per second of `generate --num N` (one batched sampling call) for N = 1, 2, 4, 8."""
    work = workdir(tmp, "batch")
    r: dict[str, Any] = {"rows": []}
    for n in (1, 2, 4, 8):
        runs = timed_runs(generate_cmd(ckpt, work / f"n{n}.mp4", "--num", str(n)), reps, work, f"generate --num {n}")
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

    work = workdir(tmp, "load")
    env = {k: v for k, v in child_env().items() if k != "OMP_NUM_THREADS"}
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)

    def cmd(name: str) -> list[str]:
        return generate_cmd(ckpt, work / name)

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
    own = None if common.CHILD_THREADS is None else str(common.CHILD_THREADS)  # 1 process: torch's default threads unless --threads
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
