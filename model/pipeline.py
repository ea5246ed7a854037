"""VideoPoet: the one object a Python user (and the CLI) calls. Tensors in, tensors out.

Frames are float tensors in [-1, 1], shape (T, 3, H, W) for one clip, (N, T, 3, H, W) for several.
Clips longer than one window are made by continuation: each new window is conditioned on the last
`context` latent frames (9 frames, about a second) of what was made so far.
"""

from __future__ import annotations

import dataclasses
import functools
import math
from pathlib import Path
from typing import Callable, Optional, Sequence as Seq, Union

import torch

from . import tasks
from .checkpoint import CheckpointError, checkpoint_config, compare_configs, file_hash, load_into, read_checkpoint
from .config import DTYPES, MAX_FPS, MAX_FRAMES, Preset, SamplingOptions, TokenizerConfig, load_preset, weights_path
from .errors import InvalidInput, VideoPoetError
from .sampling import sample, sample_jacobi
from .tokenizer import VideoTokenizer
from .transformer import PrefixLM

Progress = Callable[[int, int], None]
CONTEXT_LATENTS = 3  # latent frames of context when continuing (1 + 4*2 = 9 frames)


def context_frames(t: TokenizerConfig) -> int:
    """Frames a continuation window is conditioned on: the CONTEXT_LATENTS latent frames (frame 0 alone)."""
    return 1 + t.time_stride * (CONTEXT_LATENTS - 1)


def frames_per_window(t: TokenizerConfig) -> int:
    """New frames each continuation window adds after the first window."""
    return t.time_stride * (t.latent_shape()[0] - CONTEXT_LATENTS)


def tokens_per_window(t: TokenizerConfig) -> int:
    """New ids each continuation window samples (its latent frames past the context)."""
    return (t.latent_shape()[0] - CONTEXT_LATENTS) * t.tokens_per_latent_frame()


def frames_made(preset: Preset, frames: int, fps: float) -> tuple[int, int]:
    """(frames the request needs at the preset's frame rate, frames the model makes for them): one image,
    or a first window and then (latent frames - context) latent frames per further window."""
    t = preset.tokenizer
    native = 1 + math.ceil((frames - 1) * preset.video.fps / fps)
    if native == 1:
        return 1, 1
    step = frames_per_window(t)
    return native, t.frames + step * math.ceil(max(0, native - t.frames) / step)


def _check_prompt(prompt: str) -> str:
    if not isinstance(prompt, str) or not prompt.strip():
        raise InvalidInput("the prompt is empty")
    return prompt.strip()


class VideoPoet:
    def __init__(self, preset: Preset, tokenizer: VideoTokenizer, lm: PrefixLM, checkpoint: Optional[Path] = None, device: str = "cpu",
                 dtype: str = "float32"):  # fmt: skip
        self.preset = preset
        self.tokenizer = tokenizer.eval()
        self.lm = lm.eval()
        self.checkpoint = checkpoint
        self.checkpoint_sha256 = file_hash(checkpoint, 64) if checkpoint else None
        self.checkpoint_hash = self.checkpoint_sha256[:12] if checkpoint else None
        self.device = torch.device(device)
        if dtype not in DTYPES:
            raise InvalidInput(f"dtype must be one of {', '.join(DTYPES)}, got {dtype!r}")
        if dtype == "float16" and self.device.type == "cpu":
            raise InvalidInput("float16 is not usable on a CPU (use bfloat16 or float32)")
        self.dtype = dtype
        self._text_cache: dict[str, tuple[torch.Tensor, torch.Tensor, torch.Tensor]] = {}
        self._reader = None  # model.prompt_reader.PromptReader, built on first use
        self._read_cache: dict[str, str] = {}
        # extend and animate hand the decoder a true frame to copy outlines from, where it can read one
        self.use_reference = True

    # -- loading ------------------------------------------------------------------------------------
    @classmethod
    def from_pretrained(cls, preset_or_path: str = "tiny", checkpoint: Union[str, Path, None] = None, device: str = "cpu",
                        dtype: str = "float32") -> "VideoPoet":  # fmt: skip
        """A preset name or YAML file (its shipped weights, or `checkpoint`), or a .safetensors file."""
        if str(preset_or_path).endswith(".safetensors"):
            checkpoint, preset = Path(preset_or_path), None
        else:
            preset = load_preset(str(preset_or_path))
        if checkpoint is None:
            checkpoint = weights_path(preset)
            if checkpoint is None:
                raise VideoPoetError(f"preset '{preset.name}' ships no weights; give a checkpoint file")
            if not checkpoint.is_file():
                raise VideoPoetError(f"preset '{preset.name}' names weights that are not installed: {checkpoint}")
        checkpoint = Path(checkpoint)
        if not checkpoint.is_file():
            raise CheckpointError(f"checkpoint not found: {checkpoint}")
        tensors, meta = read_checkpoint(checkpoint)
        if meta.get("kind") != "videopoet":
            raise CheckpointError(f"{checkpoint}: a '{meta.get('kind')}' checkpoint; generation needs a full videopoet checkpoint")
        found = checkpoint_config(meta)
        if preset is None:
            from .config import preset_from_dict

            preset = preset_from_dict({"name": checkpoint.stem, **found}, str(checkpoint))
        expected = {"tokenizer": dataclasses.asdict(preset.tokenizer), "lm": dataclasses.asdict(preset.lm)}
        compare_configs(expected, found, checkpoint)
        tok = VideoTokenizer(preset.tokenizer)
        lm = PrefixLM.for_tokenizer(preset.lm, preset.tokenizer)
        load_into(tok, tensors, "tokenizer", checkpoint)
        load_into(lm, tensors, "lm", checkpoint)
        return cls(preset, tok.to(device), lm.to(device), checkpoint, device, dtype)

    @classmethod
    def random(cls, preset: Union[str, Preset] = "tiny", seed: int = 0, device: str = "cpu") -> "VideoPoet":
        """Randomly initialised weights of a preset's shape (for tests and as a training start)."""
        preset = load_preset(preset) if isinstance(preset, str) else preset
        torch.manual_seed(seed)
        return cls(preset, VideoTokenizer(preset.tokenizer), PrefixLM.for_tokenizer(preset.lm, preset.tokenizer), None, device)

    def replace_decoder(self, tokenizer_checkpoint: Union[str, Path]) -> None:
        """Take the tokenizer decoder (and its ReferenceBlend, if it has one) from a tokenizer checkpoint
        whose encoder is this one's (trained with its encoder frozen): ids keep their meaning, so the LM
        stays valid and only the drawing changes. An encoder that differs (beyond bf16 storage rounding)
        is refused: it would give the LM other ids."""
        path = Path(tokenizer_checkpoint)
        tensors, meta = read_checkpoint(path)
        if meta.get("kind") != "tokenizer":
            raise CheckpointError(f"{path}: a '{meta.get('kind')}' checkpoint; expected a tokenizer checkpoint")
        found = checkpoint_config(meta).get("tokenizer") or {}
        cfg = dataclasses.replace(self.preset.tokenizer, reference=bool(found.get("reference", False)))
        compare_configs({"tokenizer": dataclasses.asdict(cfg)}, {"tokenizer": found}, path)
        new = VideoTokenizer(cfg)
        load_into(new, tensors, "tokenizer", path)
        mine, theirs = self.tokenizer.state_dict(), new.state_dict()
        for k, v in theirs.items():
            if k.startswith(("decoder.", "reference_blend.")):
                continue
            a = mine[k].to(v.device)
            if not (torch.equal(a, v) or torch.equal(a.bfloat16(), v.bfloat16())):
                raise CheckpointError(f"{path}: tensor 'tokenizer.{k}' differs from this model's; only a decoder "
                                      "trained on this very encoder (frozen) can be swapped in")  # fmt: skip
        for k, v in mine.items():  # the encoder and quantizer exactly as they were (not their bf16 copy)
            if not k.startswith(("decoder.", "reference_blend.")):
                theirs[k].copy_(v)
        self.tokenizer = new.to(self.device).eval()
        self.preset = dataclasses.replace(self.preset, tokenizer=cfg)

    def save(self, path: Union[str, Path], dtype: Optional[torch.dtype] = None) -> None:
        """Write a full checkpoint (tokenizer + LM, config in the metadata) as safetensors."""
        from .checkpoint import save_checkpoint

        config = {"tokenizer": dataclasses.asdict(self.preset.tokenizer), "lm": dataclasses.asdict(self.preset.lm)}
        save_checkpoint(Path(path), {"tokenizer": self.tokenizer, "lm": self.lm}, config, "videopoet", dtype=dtype)

    @functools.cached_property
    def shipped_weights(self) -> bool:
        """Whether this is the preset's own shipped checkpoint (trained on the shape world's captions).
        Cached: preset and checkpoint are fixed at construction, and every run asks (two path resolutions)."""
        shipped = weights_path(self.preset)
        return shipped is not None and self.checkpoint is not None and Path(self.checkpoint).resolve() == shipped.resolve()

    def reads_prompts(self, options: Optional[SamplingOptions] = None) -> bool:
        flag = self.sampling_options(options).read_prompt
        return self.shipped_weights if flag is None else flag

    def prompt_for_lm(self, prompt: str, options: Optional[SamplingOptions] = None) -> str:
        """The text the LM is given for `prompt`: rewritten into training words when prompt reading is on
        and the reader places every attribute (model.prompt_reader), else the prompt as written."""
        if not self.reads_prompts(options):
            return prompt
        if self._reader is None:
            from .prompt_reader import PromptReader
            from .text import shared_text_encoder

            enc = shared_text_encoder(self.preset.lm.max_text_tokens)
            self._reader = PromptReader(lambda texts: enc.encode(list(texts))[2])
        if prompt not in self._read_cache:  # a prompt is read once per process (the note, the record, the run)
            self._read_cache[prompt] = self._reader.rewrite(prompt)
        return self._read_cache[prompt]

    def read_as(self, prompt: str, options: Optional[SamplingOptions] = None) -> dict:
        """What a clip's record adds about reading: {"read_as": text} when the LM is given other text than
        the prompt, else {}."""
        text = self.prompt_for_lm(prompt, options)
        return {"read_as": text} if text != prompt else {}

    def prompt_notes(self, prompt: str) -> list[str]:
        """Things a user should know before a prompt runs: text past the encoder's window is ignored;
        with the shipped weights (trained on the shape world), a prompt naming no colour, shape or motion
        of that world has nothing the model learnt to follow."""
        from .text import shared_text_encoder

        notes = []
        tok = shared_text_encoder(self.preset.lm.max_text_tokens).tokenizer
        enc = tok.encode(prompt)
        if enc.overflowing:
            kept = tok.decode(enc.ids, skip_special_tokens=True)
            tail = kept if len(kept) <= 40 else "..." + kept[-37:]
            notes.append(f"only the first {self.preset.lm.max_text_tokens} text tokens of the prompt are read "
                         f"(up to \"{tail}\"); the rest is ignored")  # fmt: skip
        if self.shipped_weights:
            from .data.captions import parse_attributes

            if parse_attributes(prompt) == (None, None, None):
                notes.append("the prompt names no colour, shape or motion the shipped model was trained on (it knows "
                             "red, orange, yellow, green, cyan, blue, purple, white; circle, square, triangle; moving "
                             "left, right, up, down or staying still); expect an arbitrary clip")  # fmt: skip
        return notes

    # -- pieces -------------------------------------------------------------------------------------
    def encode_text(self, prompts: Seq[str]):
        """MiniLM states for prompts (cached: a prompt is encoded once per process)."""
        from .text import shared_text_encoder

        missing = [p for p in dict.fromkeys(prompts) if p not in self._text_cache]
        if missing:
            enc = shared_text_encoder(self.preset.lm.max_text_tokens)
            s, v, p = enc.encode(list(missing))
            for i, m in enumerate(missing):
                self._text_cache[m] = (s[i], v[i], p[i])
        parts = [self._text_cache[p] for p in prompts]
        return tuple(torch.stack([x[i] for x in parts]).to(self.device) for i in range(3))

    def sampling_options(self, options: Optional[SamplingOptions] = None, **changes) -> SamplingOptions:
        """The options a call samples with: `options` (default: the preset's) with keyword changes applied
        (temperature=, top_k=, top_p=, guidance= (or its old name cfg=), decoding=, negative=)."""
        return (options or self.preset.sampling).with_changes(**changes)

    def _frames_for(self, duration_seconds: Optional[float], frames: Optional[int], fps: Optional[float]) -> tuple[int, float]:
        fps = float(fps if fps is not None else self.preset.video.fps)
        if not 0 < fps <= MAX_FPS:
            raise InvalidInput(f"fps must be in (0, {MAX_FPS:g}], got {fps:g}")
        if frames is None:
            seconds = duration_seconds if duration_seconds is not None else (self.preset.tokenizer.frames - 1) / self.preset.video.fps
            if not seconds > 0:
                raise InvalidInput(f"seconds must be positive, got {seconds:g}")
            frames = 1 + round(seconds * fps)
        if frames < 1:
            raise InvalidInput(f"frames must be at least 1, got {frames}")
        if frames > MAX_FRAMES:
            raise InvalidInput(f"{frames} frames requested; at most {MAX_FRAMES} are made in one call")
        return frames, fps

    def _native_frames(self, frames: int, fps: float) -> int:
        return frames_made(self.preset, frames, fps)[0]

    def _resample(self, video: torch.Tensor, frames: int, fps: float) -> torch.Tensor:
        """Native-fps frames -> `frames` frames at `fps` (nearest frame in time; duration preserved)."""
        native = self.preset.video.fps
        idx = torch.tensor([min(video.shape[0] - 1, round(i * native / fps)) for i in range(frames)])
        return video[idx]

    def _decode(self, ids: torch.Tensor, reference: Optional[torch.Tensor] = None, blend_from: int = 0) -> torch.Tensor:
        _, h, w = self.preset.tokenizer.latent_shape()
        with self._autocast():
            return self.tokenizer.decode(ids.view(ids.shape[0], -1, h, w), reference, blend_from).float()

    def _reference(self, frame: torch.Tensor) -> Optional[torch.Tensor]:
        """A true frame (3, H, W) of the scene the output continues, as the decoder takes it (1, 3, H, W);
        None when the tokenizer has no ReferenceBlend or `use_reference` is off."""
        if not (self.use_reference and self.tokenizer.reference_blend is not None):
            return None
        return frame.reshape(1, *frame.shape[-3:]).to(self.device).float()

    def _autocast(self):
        """Mixed precision for the compute (weights and the KV cache stay float32): `dtype` bfloat16 or float16."""
        import contextlib

        if self.dtype == "float32":
            return contextlib.nullcontext()
        return torch.autocast(self.device.type, dtype=getattr(torch, self.dtype))

    def _encode(self, video: torch.Tensor) -> torch.Tensor:
        """(B, T, 3, H, W) -> flat ids (B, T'*h*w)."""
        return self.tokenizer.encode(video.to(self.device)).flatten(1)

    def _run(self, task, prompt, n_out, visual_in=None, forced=None, in_mask=None, *, seed, progress, options: SamplingOptions) -> torch.Tensor:
        """One task's visual-out ids. `seed` may be a list: a batch of that many clips, clip i drawn from
        its own generator, so each equals the clip a run with that seed alone makes."""
        seeds = seed if isinstance(seed, (list, tuple)) else None
        prompt = self.prompt_for_lm(prompt, options)
        states, valid, pooled = self.encode_text([prompt] * (len(seeds) if seeds else 1))
        seq = tasks.build(task, states, valid, pooled, n_out, visual_in=visual_in, visual_out=forced, in_mask=in_mask)
        if in_mask is not None and task in tasks.MASKED_TASKS:  # keep every visible cell's id: only hidden ones are drawn
            known = visual_in.masked_fill(in_mask.to(visual_in.device), -1)
            if forced is not None:
                known = known.clone()
                known[:, : forced.shape[1]] = -1  # the forced prefix already fixes these
            seq = dataclasses.replace(seq, out_known=known.expand(seq.batch, -1))
        if options.negative.strip():  # guidance pushes away from this text instead of from no text
            seq = seq.with_negative(*self.encode_text([options.negative.strip()]))
        gen = [torch.Generator(device=self.device).manual_seed(int(x)) for x in seeds] if seeds else torch.Generator(device=self.device).manual_seed(int(seed))
        sampler = sample_jacobi if options.decoding == "jacobi" else sample
        with self._autocast():
            return sampler(self.lm, seq, options, generator=gen, progress=progress)

    def _continue_to(self, video_ids: torch.Tensor, native_frames: int, prompts: list[str], seed: int, progress, options: SamplingOptions,
                     reference: Optional[torch.Tensor] = None) -> torch.Tensor:  # fmt: skip
        """Extend decoded frames window by window until `native_frames`, each window conditioned on the
        last CONTEXT_LATENTS latent frames; prompts[i] drives window i (the last one repeats). `reference`
        (`_reference` of a true frame) is handed to every decode."""
        cfg = self.preset.tokenizer
        ctx_frames = context_frames(cfg)
        video = self._decode(video_ids, reference)[0]
        window = 0
        while video.shape[0] < native_frames:
            ctx = self._encode(video[None, -ctx_frames:])
            prompt = prompts[min(window, len(prompts) - 1)]
            new = self._next_window(ctx, prompt, seed + 1000 * (window + 1), progress, options)
            full = self._decode(torch.cat([ctx, new], 1), reference, blend_from=ctx_frames)[0]
            video = torch.cat([video, full[ctx_frames:]])
            window += 1
        return video[:native_frames]

    def _next_window(self, ctx: torch.Tensor, prompt: str, seed: int, progress, options: SamplingOptions) -> torch.Tensor:
        """One continuation window's new ids (1, tokens_per_window) after the context ids `ctx` (1, N)."""
        return self._run("continue", prompt, tokens_per_window(self.preset.tokenizer), visual_in=ctx, seed=seed, progress=progress, options=options)

    def _windows(self, native_frames: int) -> int:
        cfg = self.preset.tokenizer
        extra = max(0, native_frames - cfg.frames)
        return 1 + math.ceil(extra / frames_per_window(cfg))

    # -- tasks --------------------------------------------------------------------------------------
    @torch.no_grad()
    def generate(
        self,
        prompt: str,
        *,
        duration_seconds: Optional[float] = None,
        frames: Optional[int] = None,
        fps: Optional[float] = None,
        seed: Optional[int] = None,
        then: Seq[str] = (),
        options: Optional[SamplingOptions] = None,
        progress: Optional[Progress] = None,
        **sampling,
    ) -> torch.Tensor:
        """Text to video: (T, 3, H, W) in [-1, 1]. `then` prompts drive the windows after the first.
        Sampling: `options` (a SamplingOptions; default the preset's) and/or keyword changes to it, e.g.
        temperature=0.8, top_k=50, guidance=3.0, decoding="jacobi", negative="a blue square"."""
        options = self.sampling_options(options, **sampling)
        seed = options.seed if seed is None else seed
        return self.generate_variations(prompt, [seed], duration_seconds=duration_seconds, frames=frames, fps=fps, then=then,
                                        options=options, progress=progress)[0]  # fmt: skip

    @torch.no_grad()
    def generate_variations(self, prompt: str, seeds: Seq[int], *, duration_seconds=None, frames=None, fps=None,
                            then: Seq[str] = (), options: Optional[SamplingOptions] = None, progress: Optional[Progress] = None,
                            **sampling) -> list[torch.Tensor]:  # fmt: skip
        """Clips of one prompt, one per seed, their first window sampled as one batch (faster per clip
        than one run each; clip i draws from its own generator, so it is exactly the clip of a run with
        seed i alone). Later windows continue clip by clip; `then` prompts drive them."""
        seeds = [int(x) for x in seeds]
        if not seeds:
            return []
        prompt = _check_prompt(prompt)
        then = [_check_prompt(p) for p in then]
        frames, fps = self._frames_for(duration_seconds, frames, fps)
        options = self.sampling_options(options, **sampling)
        cfgt = self.preset.tokenizer
        native = self._native_frames(frames, fps)
        n_tok = cfgt.tokens_per_latent_frame()
        L = cfgt.latent_shape()[0]
        n_first = n_tok if native == 1 else L * n_tok
        rest = (self._windows(native) - 1) * tokens_per_window(cfgt)
        tick = _Ticker(progress, n_first + rest * len(seeds))
        ids = self._run("t2i" if native == 1 else "t2v", prompt, n_first, seed=seeds, progress=tick, options=options)
        out = []
        for i, x in enumerate(seeds):
            if native == 1:
                out.append(self._decode(ids[i : i + 1])[0])
                continue
            video = self._continue_to(ids[i : i + 1], native, [prompt, *then], x, tick, options)
            out.append(self._resample(video, frames, fps))
        return out

    @torch.no_grad()
    def animate(self, image: torch.Tensor, prompt: str, *, duration_seconds=None, frames=None, fps=None, seed=None,
                options: Optional[SamplingOptions] = None, progress: Optional[Progress] = None, **sampling) -> torch.Tensor:  # fmt: skip
        """Image (3, H, W) to video (T, 3, H, W); frame 0 is the image as the tokenizer reproduces it."""
        prompt = _check_prompt(prompt)
        if image.dim() not in (3, 4) or (image.dim() == 4 and image.shape[0] != 1):
            raise InvalidInput(f"animate takes one image (3, H, W), got shape {tuple(image.shape)}")
        image = self._fit(image.reshape(1, 1, *image.shape[-3:]))
        frames, fps = self._frames_for(duration_seconds, frames, fps)
        options = self.sampling_options(options, **sampling)
        seed = options.seed if seed is None else seed
        cfgt = self.preset.tokenizer
        n_tok = cfgt.tokens_per_latent_frame()
        native = self._native_frames(frames, fps)
        tick = _Ticker(progress, (cfgt.latent_shape()[0] - 1) * n_tok * self._windows(native))
        first = self._encode(image)  # a 1-frame video
        new = self._run("i2v", prompt, (cfgt.latent_shape()[0] - 1) * n_tok, visual_in=first, seed=seed, progress=tick, options=options)
        video = self._continue_to(torch.cat([first, new], 1), native, [prompt], seed, tick, options, self._reference(image[0, 0]))
        return self._resample(video, frames, fps)

    @torch.no_grad()
    def extend(self, video: torch.Tensor, prompt: Union[str, Seq[str]], seconds: float, *, fps=None, seed=None,
               options: Optional[SamplingOptions] = None, progress: Optional[Progress] = None, **sampling) -> torch.Tensor:  # fmt: skip
        """Continue a clip (T, 3, H, W at the preset's fps and size) by `seconds`; returns input + new frames.
        A list of prompts changes the prompt from one extension window to the next."""
        prompts = [_check_prompt(p) for p in ([prompt] if isinstance(prompt, str) else prompt)]
        if not prompts:
            raise InvalidInput("extend needs a prompt")
        if not seconds > 0:
            raise InvalidInput(f"seconds must be positive, got {seconds:g}")
        video = self._fit(video[None])[0]
        native_fps = self.preset.video.fps
        add = round(seconds * native_fps)
        if video.shape[0] + add > MAX_FRAMES:
            raise InvalidInput(f"the result would have {video.shape[0] + add} frames; at most {MAX_FRAMES}")
        options = self.sampling_options(options, **sampling)
        seed = options.seed if seed is None else seed
        cfgt = self.preset.tokenizer
        tick = _Ticker(progress, math.ceil(add / frames_per_window(cfgt)) * tokens_per_window(cfgt))
        ctx_frames = context_frames(cfgt)
        ctx = video[-ctx_frames:]
        if ctx.shape[0] < ctx_frames:  # too short for the context window: its first frame repeated in front
            ctx = torch.cat([ctx[:1].expand(ctx_frames - ctx.shape[0], *ctx.shape[1:]), ctx])  # (context only)
        start = self._encode(ctx[None])
        out = self._continue_to(start, ctx_frames + add, prompts, seed, tick, options, self._reference(video[-1]))
        result = torch.cat([video, out[ctx_frames:]])
        return result if fps is None else self._resample(result, 1 + round((result.shape[0] - 1) * fps / native_fps), fps)

    @torch.no_grad()
    def stylize(self, source_video: torch.Tensor, style_prompt: str, *, motion_only: bool = False, seed=None,
                options: Optional[SamplingOptions] = None, progress: Optional[Progress] = None, **sampling) -> torch.Tensor:  # fmt: skip
        """Restyle a clip (T, 3, H, W at the preset's fps and size) with the text; keeps layout and motion.
        motion_only conditions on optical flow alone (motion transfer). Long clips go window by window,
        each window's first latent frames taken from the previous output so there are no seams."""
        from .controls import control_video
        from .video_io import from_uint8, to_uint8

        style_prompt = _check_prompt(style_prompt)
        video = self._fit(source_video[None])[0]
        options = self.sampling_options(options, **sampling)
        seed = options.seed if seed is None else seed
        src = self._hold_last(video)
        control = from_uint8(control_video(to_uint8(src), motion_only=motion_only)).to(self.device)
        task = "motion" if motion_only else "stylize"
        return self._aligned(task, style_prompt, control, None, seed, progress, options)[: video.shape[0]]

    @torch.no_grad()
    def inpaint(self, video: torch.Tensor, mask: torch.Tensor, prompt: str, *, seed=None, blend: bool = True,
                options: Optional[SamplingOptions] = None, progress: Optional[Progress] = None, **sampling) -> torch.Tensor:  # fmt: skip
        """Remake the masked region of a clip (T, 3, H, W at the preset's fps and size) as the text says.
        mask: (H, W) bool, True = make; every latent cell it touches is hidden from the model. Outside the
        hidden cells the input is kept, blended into the made region over one latent cell (blend=False:
        the model's whole output, as decoded)."""
        return self._masked("inpaint", video, mask, prompt, seed, progress, self.sampling_options(options, **sampling), blend)

    @torch.no_grad()
    def outpaint(self, video: torch.Tensor, mask: torch.Tensor, prompt: str, *, seed=None, blend: bool = True,
                 options: Optional[SamplingOptions] = None, progress: Optional[Progress] = None, **sampling) -> torch.Tensor:  # fmt: skip
        """Make the unknown border of a canvas (T, 3, H, W at the preset's fps and size; what is under the
        mask is ignored) so the known part continues into it. mask: (H, W) bool, True = unknown."""
        return self._masked("outpaint", video, mask, prompt, seed, progress, self.sampling_options(options, **sampling), blend)

    def mask_cells(self, mask: torch.Tensor) -> torch.Tensor:
        """(H, W) pixel mask at the model's size -> (h, w) latent cells hidden from the model."""
        from .masks import latent_cells

        H, W = self.preset.tokenizer.height, self.preset.tokenizer.width
        if mask.shape != (H, W):
            raise InvalidInput(f"expected a mask of shape ({H}, {W}), got {tuple(mask.shape)}")
        return latent_cells(mask.bool().cpu(), self.preset.tokenizer.spatial_stride)

    def _masked(self, task, video, mask, prompt, seed, progress, options: SamplingOptions, blend=True) -> torch.Tensor:
        from .masks import blend as paste_in, check_mask

        prompt = _check_prompt(prompt)
        video = self._fit(video[None])[0]
        cells = self.mask_cells(mask)
        check_mask(cells, "the mask")
        seed = options.seed if seed is None else seed
        src = self._hold_last(video)
        made = self._aligned(task, prompt, src, cells, seed, progress, options.for_editing())[: video.shape[0]]
        return paste_in(video, made, cells) if blend else made

    def _hold_last(self, video: torch.Tensor) -> torch.Tensor:
        """Pad a clip (holding its last frame) to a whole number of windows."""
        cfgt = self.preset.tokenizer
        F, T = cfgt.frames, video.shape[0]
        if T > MAX_FRAMES:
            raise InvalidInput(f"the input has {T} frames; at most {MAX_FRAMES} are used in one call")
        pad = (F - T) if T < F else (-(T - F)) % frames_per_window(cfgt)
        return torch.cat([video, video[-1:].expand(pad, *video.shape[1:])]) if pad else video

    def _aligned(self, task, prompt, source, cells, seed, progress, options: SamplingOptions,
                 start: Optional[torch.Tensor] = None) -> torch.Tensor:  # fmt: skip
        """Video-to-video tasks whose output is aligned with the input in time (stylize, motion,
        inpaint, outpaint), window by window: each window's first latent frames are forced to the
        previous output's last ones so there are no seams. cells: the hidden latent cells, if masked.
        start: frames the output goes on from (the first window is forced to their last ones too, and
        the result begins with them)."""
        cfgt = self.preset.tokenizer
        L, tpf, F = cfgt.latent_shape()[0], cfgt.tokens_per_latent_frame(), cfgt.frames
        step = frames_per_window(cfgt)
        n_windows = 1 + (source.shape[0] - F) // step
        tick = _Ticker(progress, L * tpf + (n_windows - 1) * tokens_per_window(cfgt))
        in_mask = None if cells is None else cells.flatten().repeat(L)[None].to(self.device)
        out: Optional[torch.Tensor] = start
        ctx_frames = context_frames(cfgt)
        for w in range(n_windows):
            s = w * step
            cin = self._encode(source[None, s : s + F])
            forced = None if out is None else self._encode(out[None, -ctx_frames:])
            ids = self._run(task, prompt, L * tpf, visual_in=cin, forced=forced, in_mask=in_mask, seed=seed + 1000 * w,
                            progress=tick, options=options)  # fmt: skip
            clip = self._decode(ids)[0]
            out = clip if out is None else torch.cat([out, clip[ctx_frames:]])
        return out

    def _fit(self, video: torch.Tensor) -> torch.Tensor:
        """Check (B, T, 3, H, W) matches the model's frame size (callers resize first)."""
        H, W = self.preset.tokenizer.height, self.preset.tokenizer.width
        if video.dim() != 5 or video.shape[2] != 3 or video.shape[3:] != (H, W):
            raise InvalidInput(f"expected frames of shape (T, 3, {H}, {W}), got {tuple(video.shape[1:])}")
        if video.shape[1] < 1:
            raise InvalidInput("the video has no frames")
        return video.to(self.device).float()


class _Ticker:
    """Turns per-call sampler progress into one running count over a whole multi-window job."""

    def __init__(self, progress: Optional[Progress], total: int):
        self.progress, self.total, self.done, self._last = progress, total, 0, 0

    def __call__(self, i: int, n: int) -> None:
        if i < self._last:  # a new sampler call started
            self._last = 0
        self.done += i - self._last
        self._last = i if i < n else 0
        if self.progress is not None:
            self.progress(min(self.done, self.total), self.total)
