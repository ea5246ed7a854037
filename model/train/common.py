"""What every trainer shares: LR schedule, resumable train state in safetensors, stop signals, DDP setup."""

from __future__ import annotations

import functools
import json
import math
import os
import signal
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Optional

import torch

from ..checkpoint import CheckpointError, atomic_save, load_into, read_checkpoint
from .muon import Muon

ProgressFn = Callable[[int, int, dict[str, float]], None]


def lr_at(step: int, total: int, peak: float, warmup: int, floor: float = 0.1) -> float:
    """Linear warm-up, then cosine decay to floor * peak."""
    if step < warmup:
        return peak * (step + 1) / warmup
    t = min(1.0, (step - warmup) / max(1, total - warmup))
    return peak * (floor + (1 - floor) * 0.5 * (1 + math.cos(math.pi * t)))


class StopFlag:
    """SIGINT/SIGTERM set a flag; the loop saves a checkpoint and exits cleanly."""

    def __init__(self) -> None:
        self.stop = False
        self._old: dict[int, Any] = {}

    def __enter__(self) -> "StopFlag":
        for sig in (signal.SIGINT, signal.SIGTERM):
            try:
                self._old[sig] = signal.signal(sig, self._handle)
            except ValueError:  # not the main thread
                pass
        return self

    def _handle(self, signum, frame) -> None:
        self.stop = True

    def __exit__(self, *exc) -> None:
        for sig, old in self._old.items():
            signal.signal(sig, old)


def save_train_state(
    path: Path,
    model: torch.nn.Module,
    optimizer: torch.optim.Optimizer,
    step: int,
    config: dict[str, Any],
    kind: str,
    extra: Optional[dict[str, Any]] = None,
) -> None:
    """Model (fp32), the optimizer's state (AdamW moments, Muon momentum), step and RNG state, in one safetensors file."""
    from ..checkpoint import FORMAT, FORMAT_VERSION, _unwrap

    tensors = {f"model.{k}": v for k, v in _unwrap(model).state_dict().items()}
    extra = {**(extra or {}), "optimizer": optimizer_kind(optimizer)}
    names = {id(p): n for n, p in _unwrap(model).named_parameters()}
    for group in optimizer.param_groups:
        for p in group["params"]:
            st = optimizer.state.get(p)
            if not st:
                continue
            n = names[id(p)]
            for k, v in st.items():
                tensors[f"optim.{n}.{k}"] = v if torch.is_tensor(v) else torch.tensor(v)
    tensors["rng.torch"] = torch.get_rng_state()
    meta = {
        "format": FORMAT,
        "format_version": FORMAT_VERSION,
        "kind": kind,
        "config": json.dumps(config),
        "step": json.dumps(step),
        "extra": json.dumps(extra),
    }
    atomic_save(tensors, path, meta)


def load_train_state(
    path: Path, model: torch.nn.Module, optimizer: torch.optim.Optimizer, kind: str
) -> tuple[int, dict[str, Any], dict[str, Any]]:
    """Restore what save_train_state wrote; returns (step, config, extra). The state must be the same
    optimizer's: AdamW moments are not Muon's momentum."""
    from ..checkpoint import _unwrap

    tensors, meta = read_checkpoint(path)
    if meta.get("kind") != kind:
        raise CheckpointError(f"{path}: a '{meta.get('kind')}' checkpoint, expected '{kind}'")
    extra = json.loads(meta.get("extra", "{}"))
    saved = extra.get("optimizer", "adamw")  # states written before the option: AdamW
    if saved != optimizer_kind(optimizer):
        raise CheckpointError(f"{path}: trained with --optimizer {saved}; resume with it (its saved state is that optimizer's), "
                              f"or start a new --out")  # fmt: skip
    load_into(model, tensors, "model", path)
    inner = _unwrap(model)
    for n, p in inner.named_parameters():
        st = {k.split(".")[-1]: v for k, v in tensors.items() if k.startswith(f"optim.{n}.") and k.count(".") == n.count(".") + 2}
        if st:
            optimizer.state[p] = {k: (v.clone() if k != "step" else v.clone().float()) for k, v in st.items()}
    torch.set_rng_state(tensors["rng.torch"])
    return json.loads(meta["step"]), json.loads(meta["config"]), extra


OPTIMIZERS = ("adamw", "muon")


class MuonAdamW:
    """Muon (train/muon.py) on hidden layers' weights, AdamW on everything else (embeddings, output head,
    norms, biases), as Muon's authors use it. Muon's step is scaled to AdamW's update size, so one
    learning rate and schedule drive both. The two optimizers share one `state` dict (their parameters
    are disjoint) so save_train_state/load_train_state handle it as they handle AdamW."""

    def __init__(self, hidden: list[torch.Tensor], other_decay: list[torch.Tensor], no_decay: list[torch.Tensor], lr: float,
                 weight_decay: float = 0.1, betas: tuple[float, float] = (0.9, 0.95), ns_dtype: torch.dtype = torch.float32) -> None:  # fmt: skip
        self.muon = Muon(hidden, lr=lr, weight_decay=weight_decay, ns_dtype=ns_dtype)
        self.adamw = torch.optim.AdamW(
            [{"params": other_decay, "weight_decay": weight_decay}, {"params": no_decay, "weight_decay": 0.0}], lr=lr, betas=betas
        )
        self.state = self.adamw.state
        self.muon.state = self.state
        self.param_groups = self.muon.param_groups + self.adamw.param_groups

    def zero_grad(self, set_to_none: bool = True) -> None:
        self.muon.zero_grad(set_to_none=set_to_none)
        self.adamw.zero_grad(set_to_none=set_to_none)

    @torch.no_grad()
    def step(self) -> None:
        self.muon.step()
        self.adamw.step()


def optimizer_kind(optimizer) -> str:
    """The OPTIMIZERS name of an optimizer that make_optimizer built (the train state records it)."""
    return "muon" if isinstance(optimizer, MuonAdamW) else "adamw"


def make_optimizer(kind: str, named: list[tuple[str, torch.Tensor]], lr: float, hidden: Callable[[str, torch.Tensor], bool],
                   weight_decay: float = 0.1, betas: tuple[float, float] = (0.9, 0.95), device: Optional[torch.device] = None):  # fmt: skip
    """AdamW (decay on matrices, none on vectors) or MuonAdamW with Muon on the matrices `hidden` picks
    (its iterations in bf16 where bf16 is fast on `device`, float32 elsewhere)."""
    if kind not in OPTIMIZERS:
        raise ValueError(f"optimizer must be one of {', '.join(OPTIMIZERS)}, got {kind!r}")
    no_decay = [p for n, p in named if p.dim() < 2]
    if kind == "muon":
        mats = [(n, p) for n, p in named if p.dim() >= 2]
        ns_dtype = torch.bfloat16 if device is not None and fast_bf16(device) else torch.float32
        return MuonAdamW([p for n, p in mats if hidden(n, p)], [p for n, p in mats if not hidden(n, p)], no_decay, lr,
                         weight_decay, betas, ns_dtype)  # fmt: skip
    decay = [p for n, p in named if p.dim() >= 2]
    return torch.optim.AdamW([{"params": decay, "weight_decay": weight_decay}, {"params": no_decay, "weight_decay": 0.0}], lr=lr, betas=betas)


@dataclass
class Dist:
    rank: int = 0
    world: int = 1
    local_rank: int = 0

    @property
    def main(self) -> bool:
        return self.rank == 0


def init_distributed() -> Dist:
    """Under torchrun (WORLD_SIZE > 1) join the process group: gloo on CPU, nccl on GPU."""
    world = int(os.environ.get("WORLD_SIZE", "1"))
    if world <= 1:
        return Dist()
    import torch.distributed as dist

    backend = "nccl" if torch.cuda.is_available() else "gloo"
    if not dist.is_initialized():
        dist.init_process_group(backend)
    local = int(os.environ.get("LOCAL_RANK", "0"))
    if torch.cuda.is_available():
        torch.cuda.set_device(local)
    return Dist(dist.get_rank(), dist.get_world_size(), local)


def device_for(d: Dist) -> torch.device:
    return torch.device("cuda", d.local_rank) if torch.cuda.is_available() else torch.device("cpu")


def fast_bf16(device: torch.device) -> bool:
    """Whether bf16 autocast speeds training up here: on GPUs that support it, and on CPUs whose oneDNN has
    bf16 kernels (AVX-512 or AMX; 2x+ faster with avx512_bf16). On an AVX2-only CPU the bf16 matmuls and
    convolutions fall back to slow reference code: an LM step took 11-14x, a tokenizer step 42x as long as
    in float32 (bench/train_precision_probe.py; README, Training your own)."""
    return _fast_bf16(device.type)


@functools.lru_cache(maxsize=None)
def _fast_bf16(kind: str) -> bool:
    if kind == "cuda":
        return torch.cuda.is_bf16_supported()
    if kind != "cpu":
        return False
    try:
        return bool(torch.ops.mkldnn._is_mkldnn_bf16_supported())
    except (AttributeError, RuntimeError):  # a build without oneDNN
        return False


def precision(device: torch.device) -> str:
    """What `autocast` computes in on this device, for the trainers' first log line."""
    return "bf16 autocast" if fast_bf16(device) else "float32 (no fast bf16 on this device)"


def autocast(device: torch.device, enabled: bool = True):
    """bf16 autocast where it is fast (`fast_bf16`), float32 elsewhere (fp16 is never used on CPU)."""
    return torch.autocast(device.type, dtype=torch.bfloat16, enabled=enabled and fast_bf16(device))
