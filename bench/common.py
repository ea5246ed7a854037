"""Shared helpers for the benchmark: paths, logging, timing, machine facts, model inputs, and measured child processes."""

from __future__ import annotations

import json
import os
import platform
import re
import shlex
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any, Callable, Optional

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_NO_ADVISORY_WARNINGS", "1")

PROMPT = "a red circle moving right"

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


# ------------------------------------------------------------------------------------------------ subprocesses


# A small launcher process runs each measured command. Measuring from the bench process itself would be wrong:
# Linux charges a child the peak RSS of the address space it was forked/vforked from (the bench's, hundreds of
# MB once torch, the models and the 256 MB copy buffers are loaded) as soon as it execs.
# bench/launcher.py is that launcher: `launcher.py STATS_JSON CMD...` runs CMD and writes its wall time, exit status
# and ru_maxrss to STATS_JSON.


def run_measured(cmd: list[str], *, env: Optional[dict] = None, cwd: Optional[Path] = None, timeout: float = 600) -> dict:
    """Run cmd; its wall time (spawn to exit), exit status, and its own peak RSS (os.wait4 in a small launcher)."""
    with tempfile.TemporaryFile() as out, tempfile.TemporaryFile() as err, tempfile.TemporaryDirectory() as td:
        stats = Path(td) / "stats.json"
        p = subprocess.Popen([sys.executable, "-S", str(ROOT / "bench" / "launcher.py"), str(stats), *cmd], stdout=out, stderr=err,
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
