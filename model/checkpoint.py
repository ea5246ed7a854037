"""Checkpoints: safetensors only (no pickle is ever loaded), with the config and a format version stored
in the metadata. Loading checks the config and every tensor's name and shape: a mismatch is an error that
names the key or tensor, never a silent partial load.
"""

from __future__ import annotations

import hashlib
import json
import os
import tempfile
from pathlib import Path
from typing import Any, Optional

import torch

from .errors import VideoPoetError

FORMAT = "videopoet"
FORMAT_VERSION = "1"


class CheckpointError(VideoPoetError):
    pass


def _unwrap(module: torch.nn.Module) -> torch.nn.Module:
    """torch.compile and DDP wrap the module; save the inner one's names."""
    while hasattr(module, "_orig_mod") or hasattr(module, "module"):
        module = getattr(module, "_orig_mod", None) or getattr(module, "module")
    return module


def atomic_save(tensors: dict[str, torch.Tensor], path: Path, metadata: dict[str, str]) -> None:
    from safetensors.torch import save_file

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    os.close(fd)
    try:
        save_file({k: v.detach().contiguous().cpu() for k, v in tensors.items()}, tmp, metadata=metadata)
        umask = os.umask(0)
        os.umask(umask)
        os.chmod(tmp, 0o666 & ~umask)  # mkstemp makes 0600; a checkpoint gets the usual file mode
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def save_checkpoint(
    path: Path,
    modules: dict[str, torch.nn.Module],
    config: dict[str, Any],
    kind: str,
    dtype: Optional[torch.dtype] = None,
    extra_tensors: Optional[dict[str, torch.Tensor]] = None,
    extra_meta: Optional[dict[str, Any]] = None,
) -> None:
    """Save several modules' weights under `name.` prefixes, with the config as JSON metadata."""
    tensors: dict[str, torch.Tensor] = {}
    for name, module in modules.items():
        for k, v in _unwrap(module).state_dict().items():
            if dtype is not None and v.is_floating_point():
                v = v.to(dtype)
            tensors[f"{name}.{k}"] = v
    tensors.update(extra_tensors or {})
    meta = {"format": FORMAT, "format_version": FORMAT_VERSION, "kind": kind, "config": json.dumps(config)}
    meta.update({k: json.dumps(v) for k, v in (extra_meta or {}).items()})
    atomic_save(tensors, path, meta)


def read_checkpoint(path: Path) -> tuple[dict[str, torch.Tensor], dict[str, str]]:
    """Read tensors and metadata; refuse anything that is not a videopoet safetensors file."""
    from safetensors import safe_open

    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"checkpoint not found: {path}")
    with open(path, "rb") as f:
        head = f.read(9)
    n = int.from_bytes(head[:8], "little") if len(head) >= 8 else -1
    if not (len(head) == 9 and head[8:9] == b"{" and 8 + n <= path.stat().st_size):
        if head[:2] == b"PK" or (head[:1] == b"\x80" and head[1:2] in (b"\x02", b"\x03", b"\x04", b"\x05")):
            raise CheckpointError(f"{path}: a pickle/torch.save file; only safetensors checkpoints are loaded (pickles can run code)")
        raise CheckpointError(f"{path}: not a safetensors file")
    try:
        tensors = {}
        with safe_open(str(path), framework="pt") as f:
            meta = f.metadata() or {}
            for k in f.keys():
                tensors[k] = f.get_tensor(k)
    except Exception as e:  # safetensors raises its own error types for a bad header
        raise CheckpointError(f"{path}: not a readable safetensors file ({str(e).splitlines()[0]})") from None
    if meta.get("format") != FORMAT:
        raise CheckpointError(f"{path}: not a videopoet checkpoint (metadata format={meta.get('format')!r})")
    if meta.get("format_version") != FORMAT_VERSION:
        raise CheckpointError(
            f"{path}: checkpoint format version {meta.get('format_version')!r}, this videopoet reads {FORMAT_VERSION!r}"
        )
    return tensors, meta


def checkpoint_config(meta: dict[str, str]) -> dict[str, Any]:
    """The config a checkpoint was built with; keys added since it was written read as the old behaviour."""
    from .config import LEGACY_DEFAULTS

    config = json.loads(meta.get("config", "{}"))
    for section, defaults in LEGACY_DEFAULTS.items():
        if isinstance(config.get(section), dict):
            config[section] = {**defaults, **config[section]}
    return config


def compare_configs(expected: dict[str, Any], found: dict[str, Any], path: Path, prefix: str = "") -> None:
    """Raise naming the first key whose value differs between the preset and the checkpoint."""
    for key in sorted(set(expected) | set(found)):
        full = f"{prefix}{key}"
        if key not in found:
            raise CheckpointError(f"{path}: checkpoint config lacks '{full}' (preset has {expected[key]!r})")
        if key not in expected:
            raise CheckpointError(f"{path}: checkpoint config has unknown key '{full}'")
        a, b = expected[key], found[key]
        if isinstance(a, dict) and isinstance(b, dict):
            compare_configs(a, b, path, full + ".")
        elif a != b:
            from .config import LEGACY_DEFAULTS

            section, _, name = full.partition(".")
            hint = ""
            if LEGACY_DEFAULTS.get(section, {}).get(name, object()) == b:
                hint = f" (how checkpoints written before '{full}' existed work; load the checkpoint by its path alone to use it as trained)"
            raise CheckpointError(f"{path}: config mismatch at '{full}': preset has {a!r}, checkpoint has {b!r}{hint}")


def load_into(module: torch.nn.Module, tensors: dict[str, torch.Tensor], prefix: str, path: Path) -> None:
    """Strict load of `prefix.*` tensors into module: every name and shape must match."""
    module = _unwrap(module)
    own = module.state_dict()
    sub = {k[len(prefix) + 1 :]: v for k, v in tensors.items() if k.startswith(prefix + ".")}
    if hasattr(module, "upgrade_state"):  # tensors written by an older layout (e.g. fewer special tokens)
        sub = module.upgrade_state(sub)
    missing = sorted(set(own) - set(sub))
    unexpected = sorted(set(sub) - set(own))
    if missing:
        raise CheckpointError(f"{path}: tensor '{prefix}.{missing[0]}' missing from checkpoint ({len(missing)} missing)")
    if unexpected:
        raise CheckpointError(f"{path}: unexpected tensor '{prefix}.{unexpected[0]}' in checkpoint")
    for k, v in sub.items():
        if tuple(v.shape) != tuple(own[k].shape):
            raise CheckpointError(
                f"{path}: tensor '{prefix}.{k}' has shape {tuple(v.shape)}, model expects {tuple(own[k].shape)}"
            )
    module.load_state_dict({k: v.to(own[k].dtype) for k, v in sub.items()}, strict=True)


def file_hash(path: Path, n: int = 12) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()[:n]
