"""Dataclass configs for every component, and YAML presets that fill them.

A preset is strict: an unknown key, a wrong type or an impossible combination is an `InvalidInput`
that names the key and the file, never a silent default.
"""

from __future__ import annotations

import dataclasses
import math
import typing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Optional

from .errors import InvalidInput, InvalidSampling

PRESETS_PACKAGE = "model.presets"
DECODINGS = ("sequential", "jacobi")
PADS = ("replicate", "zeros")
ROPES = ("1d", "3d")

# Limits on one request, checked up front by the CLI and again by the pipeline (this module loads
# neither torch nor numpy, so the CLI imports them instead of copying them).
MAX_FRAMES = 1201  # 150 s at 8 fps (1 + 150 * 8)
MAX_SECONDS = 150.0
MAX_FPS = 120.0
DTYPES = ("float32", "bfloat16", "float16")  # compute precision (autocast); float16 only off the CPU

# Config keys added after checkpoints were first written, with the value that reproduces how those older
# checkpoints were built: a key a checkpoint lacks reads as this (model.checkpoint.checkpoint_config).
LEGACY_DEFAULTS = {"tokenizer": {"pad": "zeros", "reference": False}, "lm": {"rope": "1d"}}


@dataclass
class TokenizerConfig:
    """Causal 3D CNN auto-encoder with lookup-free quantization (MAGVIT-v2 shape, scaled down)."""

    frames: int = 17  # frames in one clip: 1 + time_stride * k
    height: int = 64
    width: int = 64
    time_stride: int = 4  # frames per latent frame after the first (the first is encoded alone)
    patch: int = 4  # space-to-depth stem: patch x patch pixels become channels
    channels: list[int] = field(default_factory=lambda: [128, 192])  # one entry per level; each level after the first halves H, W
    res_blocks: int = 2  # residual blocks per level
    bits: int = 12  # LFQ channels; vocabulary is 2**bits
    entropy_weight: float = 0.01  # LFQ batch-entropy term; large weights make flat data encode position
    commit_weight: float = 0.25
    pad: str = "replicate"  # "replicate": ids mean content (see model.tokenizer); "zeros": first checkpoints
    reference: bool = False  # a ReferenceBlend: decoding can take outlines from a true frame (model.tokenizer)

    @property
    def spatial_stride(self) -> int:
        return self.patch * 2 ** (len(self.channels) - 1)

    @property
    def vocab_size(self) -> int:
        return 2**self.bits

    def latent_shape(self, frames: Optional[int] = None) -> tuple[int, int, int]:
        """(latent frames, latent height, latent width) for a clip of `frames` frames."""
        f = self.frames if frames is None else frames
        return (1 + (f - 1) // self.time_stride, self.height // self.spatial_stride, self.width // self.spatial_stride)

    def tokens_per_latent_frame(self) -> int:
        _, h, w = self.latent_shape()
        return h * w

    def validate(self, where: str) -> None:
        for name in ("frames", "height", "width", "time_stride", "patch", "res_blocks", "bits"):
            if getattr(self, name) <= 0:
                raise InvalidInput(f"{where}: tokenizer.{name} must be positive, got {getattr(self, name)}")
        if (self.frames - 1) % self.time_stride:
            raise InvalidInput(
                f"{where}: tokenizer.frames={self.frames} is not 1 + {self.time_stride}*k "
                f"(the causal tokenizer encodes frame 0 alone, then groups of {self.time_stride})"
            )
        if not self.channels or any(c <= 0 for c in self.channels):
            raise InvalidInput(f"{where}: tokenizer.channels must be a non-empty list of positive ints")
        s = self.spatial_stride
        if self.height % s or self.width % s:
            raise InvalidInput(
                f"{where}: tokenizer.height/width {self.height}x{self.width} not divisible by the spatial stride {s}"
            )
        if not 1 <= self.bits <= 20:
            raise InvalidInput(f"{where}: tokenizer.bits must be in 1..20, got {self.bits}")
        if self.pad not in PADS:
            raise InvalidInput(f"{where}: tokenizer.pad must be one of {', '.join(PADS)}, got {self.pad!r}")


@dataclass
class LMConfig:
    """Decoder-only prefix LM: pre-norm, RMSNorm, rotary positions, SwiGLU."""

    dim: int = 256
    n_layers: int = 8
    n_heads: int = 8
    mlp_hidden: int = 704  # SwiGLU hidden width (about 8/3 * dim, rounded to a multiple of 64)
    text_dim: int = 384  # width of the frozen text encoder's states
    max_text_tokens: int = 16  # per-token states kept in the prefix (plus one pooled vector)
    rope_base: float = 10000.0
    rope: str = "3d"  # "3d": visual ids rotate by (latent frame, row, column); "1d": by sequence index
    text_dropout: float = 0.1  # fraction of training samples whose text is dropped (for CFG)

    def validate(self, where: str) -> None:
        for name in ("dim", "n_layers", "n_heads", "mlp_hidden", "text_dim", "max_text_tokens"):
            if getattr(self, name) <= 0:
                raise InvalidInput(f"{where}: lm.{name} must be positive, got {getattr(self, name)}")
        if self.dim % self.n_heads or (self.dim // self.n_heads) % 2:
            raise InvalidInput(f"{where}: lm.dim={self.dim} must split into n_heads={self.n_heads} even-sized heads")
        if self.rope not in ROPES:
            raise InvalidInput(f"{where}: lm.rope must be one of {', '.join(ROPES)}, got {self.rope!r}")
        if not 0.0 <= self.text_dropout < 1.0:
            raise InvalidInput(f"{where}: lm.text_dropout must be in [0, 1), got {self.text_dropout}")


@dataclass(frozen=True)
class SamplingOptions:
    """How visual ids are drawn. One frozen object goes whole from the caller (preset, CLI flags or Python
    keywords) to the sampler, as whisper passes its DecodingOptions; this class is the one place that
    defaults and validates them (an impossible value cannot be constructed)."""

    temperature: float = 1.0
    top_k: int = 0  # 0 = off
    top_p: float = 1.0  # 1.0 = off
    guidance: float = 3.0  # classifier-free guidance scale; 1.0 = conditional model only
    seed: int = 0  # the seed a call uses when it is given none
    decoding: str = "sequential"  # or "jacobi": several tokens per model call, same tokens (model.sampling)
    negative: str = ""  # text guidance steers away from ("" = the text-dropped model, as trained)
    # guidance for inpaint / outpaint (None = `guidance`): remaking a hidden region leans on the text more
    # than drawing a whole clip does (tiny: 3.0 keeps inpainting's shapes where 2.0 loses some; eval/study/README.md)
    edit_guidance: Optional[float] = None
    # the prompt rewritten into training words first (model.prompt_reader); None = on for a preset's own
    # shipped weights (whose training words the reader knows), off for any other checkpoint
    read_prompt: Optional[bool] = None

    ALIASES = {"cfg": "guidance"}  # older names still accepted (preset key, Python keyword)

    def __post_init__(self) -> None:

        if not (self.temperature > 0 and math.isfinite(self.temperature)):
            raise InvalidSampling("temperature", f"must be > 0, got {self.temperature:g}")
        if self.top_k < 0:
            raise InvalidSampling("top_k", f"must be >= 0, got {self.top_k}")
        if not 0.0 < self.top_p <= 1.0:
            raise InvalidSampling("top_p", f"must be in (0, 1], got {self.top_p:g}")
        if not (self.guidance >= 0 and math.isfinite(self.guidance)):
            raise InvalidSampling("guidance", f"must be >= 0, got {self.guidance:g}")
        if self.edit_guidance is not None and not (self.edit_guidance >= 0 and math.isfinite(self.edit_guidance)):
            raise InvalidSampling("edit_guidance", f"must be >= 0, got {self.edit_guidance:g}")
        if self.decoding not in DECODINGS:
            raise InvalidSampling("decoding", f"must be one of {', '.join(DECODINGS)}, got {self.decoding!r}")

    def with_changes(self, **changes: Any) -> "SamplingOptions":
        """These options with the given fields replaced; None leaves a field as it is."""
        fields = {f.name for f in dataclasses.fields(self)}
        given = {}
        for key, value in changes.items():
            name = self.ALIASES.get(key, key)
            if name not in fields:
                raise TypeError(f"unknown sampling option {key!r} (known: {', '.join(sorted(fields))})")
            if value is not None:
                given[name] = value
        if "guidance" in given and "edit_guidance" not in given:
            given["edit_guidance"] = None  # a guidance the caller names holds for every task
        return dataclasses.replace(self, **given) if given else self

    def for_editing(self) -> "SamplingOptions":
        """The options inpaint / outpaint sample with: `edit_guidance` in place of `guidance`, if set."""
        if self.edit_guidance is None:
            return self
        return dataclasses.replace(self, guidance=self.edit_guidance, edit_guidance=None)

    def sampler_view(self) -> dict[str, Any]:
        """What a clip's record states (JSON line, provenance): every field but the default seed."""
        return {k: v for k, v in dataclasses.asdict(self).items() if k != "seed"}


@dataclass
class VideoConfig:
    fps: int = 8
    display_size: int = 128  # files are upscaled to this (nearest-exact multiple where possible)

    def validate(self, where: str) -> None:
        if not 1 <= self.fps <= 120:
            raise InvalidInput(f"{where}: video.fps must be in 1..120, got {self.fps}")
        if not 16 <= self.display_size <= 2048:
            raise InvalidInput(f"{where}: video.display_size must be in 16..2048, got {self.display_size}")


@dataclass
class Preset:
    name: str = "custom"
    description: str = ""
    weights: Optional[str] = None  # safetensors file, relative to the preset's folder
    tokenizer: TokenizerConfig = field(default_factory=TokenizerConfig)
    lm: LMConfig = field(default_factory=LMConfig)
    sampling: SamplingOptions = field(default_factory=SamplingOptions)
    video: VideoConfig = field(default_factory=VideoConfig)
    source: Optional[str] = None  # where it was read from (not a YAML key)

    def validate(self, where: str) -> None:
        self.tokenizer.validate(where)
        self.lm.validate(where)
        self.video.validate(where)

    def to_dict(self) -> dict[str, Any]:
        d = dataclasses.asdict(self)
        d.pop("source")
        return d


def _check_type(value: Any, tp: Any, key: str, where: str) -> Any:
    origin = typing.get_origin(tp)
    if origin is typing.Union:  # Optional[X]
        args = [a for a in typing.get_args(tp) if a is not type(None)]
        if value is None:
            return None
        return _check_type(value, args[0], key, where)
    if origin is list:
        if not isinstance(value, list):
            raise InvalidInput(f"{where}: {key} must be a list, got {type(value).__name__}")
        (inner,) = typing.get_args(tp)
        return [_check_type(v, inner, f"{key}[{i}]", where) for i, v in enumerate(value)]
    if tp is float:
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise InvalidInput(f"{where}: {key} must be a number, got {value!r}")
        return float(value)
    if tp is int:
        if isinstance(value, bool) or not isinstance(value, int):
            raise InvalidInput(f"{where}: {key} must be an integer, got {value!r}")
        return value
    if tp is bool:
        if not isinstance(value, bool):
            raise InvalidInput(f"{where}: {key} must be true or false, got {value!r}")
        return value
    if tp is str:
        if not isinstance(value, str):
            raise InvalidInput(f"{where}: {key} must be a string, got {value!r}")
        return value
    if dataclasses.is_dataclass(tp):
        return _fill(tp, value, key, where)
    raise TypeError(f"unsupported config type {tp}")


def _fill(cls: type, data: Any, prefix: str, where: str) -> Any:
    if not isinstance(data, dict):
        raise InvalidInput(f"{where}: {prefix or 'the preset'} must be a mapping, got {type(data).__name__}")
    hints = typing.get_type_hints(cls)
    names = {f.name for f in dataclasses.fields(cls) if f.name != "source"}
    aliases = getattr(cls, "ALIASES", {})
    kwargs = {}
    for key, value in data.items():
        full = f"{prefix}.{key}" if prefix else str(key)
        name = aliases.get(key, key)
        if name not in names:
            raise InvalidInput(f"{where}: unknown key '{full}' (known: {', '.join(sorted(names))})")
        if name in kwargs:
            raise InvalidInput(f"{where}: '{full}' is another name for '{prefix}.{name}'; give one of them")
        kwargs[name] = _check_type(value, hints[name], full, where)
    try:
        return cls(**kwargs)
    except InvalidInput as e:  # a value the class itself refuses (SamplingOptions checks its own)
        raise InvalidInput(f"{where}: {e}") from None


def preset_from_dict(data: dict, where: str = "<dict>") -> Preset:
    preset = _fill(Preset, data, "", where)
    preset.validate(where)
    return preset


def presets_dir() -> Path:
    """Folder that holds the shipped presets: package data when installed, the repo's presets/ otherwise."""
    try:
        from importlib.resources import files

        p = Path(str(files(PRESETS_PACKAGE)))
        if p.is_dir():
            return p
    except (ModuleNotFoundError, TypeError):
        pass
    return Path(__file__).resolve().parent.parent / "presets"


def list_presets() -> list[str]:
    return sorted(p.stem for p in presets_dir().glob("*.yaml"))


def load_preset(name_or_path: str) -> Preset:
    """Load a shipped preset by name, or any YAML file by path."""
    import yaml

    path = Path(name_or_path)
    if path.suffix not in (".yaml", ".yml"):
        path = presets_dir() / f"{name_or_path}.yaml"
        if not path.is_file():
            raise InvalidInput(f"unknown preset '{name_or_path}' (available: {', '.join(list_presets())})")
    elif not path.is_file():
        raise InvalidInput(f"preset file not found: {path}")
    try:
        data = yaml.safe_load(path.read_text())
    except yaml.YAMLError as e:
        raise InvalidInput(f"{path}: not valid YAML ({str(e).splitlines()[0]})") from None
    preset = preset_from_dict(data or {}, str(path))
    preset.source = str(path)
    return preset


def weights_path(preset: Preset) -> Optional[Path]:
    if preset.weights is None:
        return None
    p = Path(preset.weights)
    if not p.is_absolute() and preset.source:
        p = Path(preset.source).parent / p
    return p
