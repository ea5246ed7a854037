"""Train the PrefixLM on VideoPoet's multi-task mixture, from data pre-tokenized once and cached on disk.

Each step draws one task for the whole batch (one layout, no padding): text-to-video, text-to-image,
image-to-video, continuation, stylization (flow + structure control) and motion transfer (flow only).
Text is dropped for `lm.text_dropout` of the samples so classifier-free guidance has an unconditional
model; the loss is on visual-out ids only.
"""

from __future__ import annotations

import dataclasses
import time
from pathlib import Path
from typing import Callable, Optional

import numpy as np
import torch
import torch.nn.functional as F

from .. import tasks
from ..checkpoint import CheckpointError, atomic_save, load_into, read_checkpoint, save_checkpoint
from ..config import Preset
from ..controls import control_video
from ..errors import InvalidInput
from ..masks import draw_inpaint, draw_outpaint
from ..tokenizer import VideoTokenizer
from ..transformer import PrefixLM
from .common import (ProgressFn, StopFlag, autocast, device_for, init_distributed, load_train_state, lr_at, make_optimizer, precision,
                     save_train_state)  # fmt: skip
from .tokenizer import to_batch

# Text-to-video keeps the largest share: it is the main job and its bars are the hardest. The
# editing tasks (inpaint/outpaint) are mostly copying with a hidden region to fill, cheaper to learn.
# Continuation has half its samples at a wall (see TokenData), so it gets a little more than before.
MIXTURE = {"t2v": 0.38, "t2i": 0.06, "i2v": 0.12, "continue": 0.12, "stylize": 0.09, "motion": 0.08,
           "inpaint": 0.075, "outpaint": 0.075}  # fmt: skip


def parse_mixture(spec: str) -> dict[str, float]:
    """"continue=0.3,t2v=0.38" -> the full mixture: the named tasks take those shares and the others
    share what is left in their default proportions (so one share can change without retyping all)."""
    given: dict[str, float] = {}
    for part in (p.strip() for p in spec.split(",")):
        if not part:
            continue
        name, sep, value = part.partition("=")
        name = name.strip()
        if not sep or name not in MIXTURE:
            raise InvalidInput(f"--mixture: expected task=share with a task in {', '.join(MIXTURE)}; got {part!r}")
        try:
            share = float(value)
        except ValueError:
            raise InvalidInput(f"--mixture: {name}'s share must be a number, got {value.strip()!r}") from None
        if not 0.0 <= share <= 1.0:
            raise InvalidInput(f"--mixture: {name}'s share must be in [0, 1], got {share:g}")
        given[name] = share
    left = 1.0 - sum(given.values())
    rest = {k: v for k, v in MIXTURE.items() if k not in given}
    if left < -1e-9 or (left > 1e-9 and not rest):
        raise InvalidInput(f"--mixture: the shares must add up to 1 (given: {sum(given.values()):g})")
    scale = max(left, 0.0) / sum(rest.values()) if rest else 0.0
    return {k: given.get(k, MIXTURE[k] * scale) for k in MIXTURE}


@torch.no_grad()
def pretokenize(
    tokenizer: VideoTokenizer,
    encode_text: Callable[[list[str]], tuple[torch.Tensor, torch.Tensor, torch.Tensor]],
    clips: np.ndarray,
    captions: list[list[str]],
    n_controls: int,
    path: Path,
    batch: int = 32,
    log=print,
    continue_only: int = 0,
    control_videos: Optional[tuple[np.ndarray, np.ndarray]] = None,
) -> None:
    """Encode clips, the first n_controls clips' control videos (both kinds) and all captions to `path`;
    the last `continue_only` clips are marked as continuation-only (see TokenData). control_videos:
    the (style, motion) control videos of those clips, made beforehand (e.g. by a process pool)."""
    device = next(tokenizer.parameters()).device
    tokenizer.eval()

    def enc(videos: np.ndarray) -> torch.Tensor:
        out = []
        for i in range(0, len(videos), batch):
            with autocast(device):
                out.append(tokenizer.encode(to_batch(videos[i : i + batch], device)).to(torch.int16).cpu())
        return torch.cat(out)

    t0 = time.time()
    ids = enc(clips)
    log(f"encoded {len(clips)} clips in {time.time() - t0:.0f}s")
    style, motion = [], []
    for i in range(0, n_controls, batch):
        j = min(i + batch, n_controls)
        if control_videos is None:
            s, m = (np.stack([control_video(c, motion_only=only) for c in clips[i:j]]) for only in (False, True))
        else:
            s, m = (v[i:j] for v in control_videos)
        style.append(enc(s))
        motion.append(enc(m))
    log(f"encoded {n_controls} x 2 control videos ({time.time() - t0:.0f}s)")
    k = len(captions[0])
    flat = [c for caps in captions for c in caps]
    states, valid, pooled = encode_text(flat)
    log(f"encoded {len(flat)} captions ({time.time() - t0:.0f}s)")
    tensors = {
        "ids": ids,
        "style_ids": torch.cat(style) if style else torch.zeros((0, *ids.shape[1:]), dtype=torch.int16),
        "motion_ids": torch.cat(motion) if motion else torch.zeros((0, *ids.shape[1:]), dtype=torch.int16),
        "text_states": states.to(torch.float16).view(len(captions), k, *states.shape[1:]),
        "text_valid": valid.view(len(captions), k, -1),
        "text_pooled": pooled.to(torch.float16).view(len(captions), k, -1),
    }
    meta = {"format": "videopoet", "format_version": "1", "kind": "lm-data", "continue_only": str(continue_only)}
    atomic_save(tensors, path, meta)


class TokenData:
    """Pre-tokenized clips; `batch(task, B, rng)` lays out one task's training batch.

    The last `continue_only` clips (world: objects bouncing off a wall) serve the continuation task
    alone, for WALL_SHARE of its samples: their captions name the motion before the bounce, which would
    teach text-to-video the wrong thing, but continuing a clip must learn what a wall does."""

    WALL_SHARE = 0.5

    def __init__(self, path: Path, tokens_per_frame: int, text_dropout: float, context_noise: float = 0.0, vocab: int = 0):
        """context_noise: continuation samples see up to this fraction of their known ids replaced by random
        ids (each sample draws its rate from [0, context_noise)), so the LM learns to continue a slightly
        wrong past (its own earlier windows, decoded and re-encoded) instead of copying the errors on."""
        t, meta = read_checkpoint(path)
        if meta.get("kind") != "lm-data":
            raise CheckpointError(f"{path}: not a pre-tokenized data file")
        self.ids = t["ids"].long()  # (N, T', h, w)
        self.style = t["style_ids"].long()
        self.motion = t["motion_ids"].long()
        self.states, self.valid, self.pooled = t["text_states"], t["text_valid"], t["text_pooled"]
        self.tpf = tokens_per_frame
        self.text_dropout = text_dropout
        if context_noise and vocab <= 0:
            raise ValueError("context_noise needs the visual vocabulary size")
        self.context_noise, self.vocab = float(context_noise), int(vocab)
        self.continue_only = int(meta.get("continue_only", "0"))  # files written before: none
        if not 0 <= self.continue_only < len(self.ids):
            raise CheckpointError(f"{path}: continue_only {self.continue_only} out of range for {len(self.ids)} clips")

    def __len__(self) -> int:
        return len(self.ids)

    def batch(self, task: str, B: int, rng: np.random.Generator, device) -> tuple[tasks.Sequence, torch.Tensor]:
        n_main = len(self.ids) - self.continue_only
        n_pool = len(self.style) if task in ("stylize", "motion") else n_main
        idx = rng.integers(n_pool, size=B)
        if task == "continue" and self.continue_only:
            wall = rng.random(B) < self.WALL_SHARE
            idx = np.where(wall, n_main + rng.integers(self.continue_only, size=B), idx)
        idx = torch.from_numpy(idx)
        cap = torch.from_numpy(rng.integers(self.states.shape[1], size=B))
        states = self.states[idx, cap].float()
        valid = self.valid[idx, cap]
        pooled = self.pooled[idx, cap].float()
        has_text = torch.from_numpy(rng.random(B) >= self.text_dropout)
        vid = self.ids[idx].flatten(1)  # (B, T'*h*w)
        tpf, T = self.tpf, self.ids.shape[1]
        vin, in_mask = None, None
        if task in ("inpaint", "outpaint"):
            draw = draw_inpaint if task == "inpaint" else draw_outpaint
            shape = tuple(self.ids.shape[1:])
            in_mask = torch.from_numpy(np.stack([draw(rng, shape) for _ in range(B)])).flatten(1)
            vin, out = vid, vid
        elif task == "t2v":
            out = vid
        elif task == "t2i":
            out = vid[:, :tpf]
        elif task == "i2v":
            vin, out = vid[:, :tpf], vid[:, tpf:]
        elif task == "continue":
            k = int(rng.integers(2, T))  # 2..T-1 known latent frames
            vin, out = vid[:, : k * tpf], vid[:, k * tpf :]
            if self.context_noise > 0:
                rate = rng.random((B, 1)) * self.context_noise
                hit = torch.from_numpy(rng.random(vin.shape) < rate)
                vin = torch.where(hit, torch.from_numpy(rng.integers(self.vocab, size=vin.shape)), vin)
        else:
            vin = (self.style if task == "stylize" else self.motion)[idx].flatten(1)
            out = vid
        seq = tasks.build(task, states, valid, pooled, out.shape[1], visual_in=vin, visual_out=out, has_text=has_text, in_mask=in_mask)
        return seq.to(device), out.to(device)


def lm_loss(lm: torch.nn.Module, seq: tasks.Sequence, target: torch.Tensor) -> torch.Tensor:
    logits = lm(seq)
    return F.cross_entropy(logits.float().flatten(0, 1), target.flatten())


def train_lm(
    preset: Preset,
    data_path: Path,
    tokenizer_path: Path,
    out_dir: Path,
    steps: int,
    batch: int = 24,
    lr: float = 1.5e-3,
    warmup: int = 200,
    seed: int = 0,
    resume: bool = False,
    save_every: int = 100,
    mixture: Optional[dict[str, float]] = None,
    context_noise: float = 0.0,
    init: Optional[Path] = None,
    on_progress: Optional[ProgressFn] = None,
    log=print,
    data: Optional[TokenData] = None,
    compile: bool = False,
    optimizer: str = "adamw",
) -> dict:
    """Train and write out_dir/lm-state.safetensors (resumable) and out_dir/videopoet.safetensors (weights).
    init: a videopoet checkpoint whose LM weights start a fresh run (fine-tuning; ignored on resume).
    mixture: task shares (default MIXTURE); context_noise: see TokenData. data: batches from this
    TokenData instead of one read from data_path (a study's subclass that lays out some batches its way).
    compile: run the forward pass through torch.compile (fused element-wise kernels; one static graph per
    task layout, compiled the first time the layout comes up; bench/train_compile_probe.py measures it)."""
    d = init_distributed()
    device = device_for(d)
    out_dir = Path(out_dir)
    torch.manual_seed(seed)
    if data is None:
        data = TokenData(data_path, preset.tokenizer.tokens_per_latent_frame(), preset.lm.text_dropout, context_noise,
                         preset.tokenizer.vocab_size)  # fmt: skip
    lm = PrefixLM.for_tokenizer(preset.lm, preset.tokenizer).to(device)
    opt = make_optimizer(optimizer, list(lm.named_parameters()), lr, hidden=lambda n, p: n.startswith("blocks."), device=device)
    state_path = out_dir / "lm-state.safetensors"
    config = {"tokenizer": dataclasses.asdict(preset.tokenizer), "lm": dataclasses.asdict(preset.lm)}
    step = 0
    if resume and state_path.exists():
        step, _, _ = load_train_state(state_path, lm, opt, "lm-train")
        log(f"resumed from {state_path} at step {step}")
    elif init is not None:
        init_tensors, _ = read_checkpoint(Path(init))
        load_into(lm, init_tensors, "lm", Path(init))
        log(f"LM weights from {init}")
    model = torch.nn.parallel.DistributedDataParallel(lm) if d.world > 1 else lm
    if compile:
        # static shapes: a handful of layouts (continuation has three prefix lengths), each its own graph;
        # a dynamic-shape graph would serve them all with slower kernels
        torch._dynamo.config.cache_size_limit = max(torch._dynamo.config.cache_size_limit, 16)
        model = torch.compile(model, dynamic=False)
    mixture = mixture or MIXTURE
    if len(data.style) == 0:
        mixture = {k: v for k, v in mixture.items() if k not in ("stylize", "motion")}
    names, probs = list(mixture), np.array(list(mixture.values()), dtype=np.float64)
    probs /= probs.sum()
    if mixture != MIXTURE or context_noise:
        log("mixture: " + ", ".join(f"{k} {v:.3f}" for k, v in zip(names, probs)) + f"; context noise {context_noise:g}")

    tokenizer = VideoTokenizer(preset.tokenizer)
    tok_tensors, _ = read_checkpoint(tokenizer_path)
    load_into(tokenizer, tok_tensors, "tokenizer", tokenizer_path)

    def save() -> None:
        save_train_state(state_path, lm, opt, step, config, "lm-train")
        save_checkpoint(out_dir / "videopoet.safetensors", {"tokenizer": tokenizer, "lm": lm}, config, "videopoet", extra_meta={"step": step})

    t0, tokens, metrics = time.time(), 0, {}
    ema = None
    if d.main:
        log(f"precision: {precision(device)}")
    with StopFlag() as flag:
        while step < steps and not flag.stop:
            lm.train()
            for g in opt.param_groups:
                g["lr"] = lr_at(step, steps, lr, warmup)
            # batches are a function of the step (resume-exact); the task is the same on every rank
            task = names[np.random.default_rng([seed, step]).choice(len(names), p=probs)]
            sample_rng = np.random.default_rng([seed, d.rank, step, 1])
            seq, target = data.batch(task, batch, sample_rng, device)
            with autocast(device):
                loss = lm_loss(model, seq, target)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            torch.nn.utils.clip_grad_norm_(lm.parameters(), 1.0)
            opt.step()
            step += 1
            tokens += target.numel()
            lv = float(loss.detach())
            ema = lv if ema is None else 0.98 * ema + 0.02 * lv
            metrics = {"loss": lv, "loss_ema": ema, "tok_per_s": tokens * d.world / (time.time() - t0), "lr": opt.param_groups[0]["lr"]}
            if on_progress and d.main:
                on_progress(step, steps, {**metrics, "task": names.index(task)})
            if d.main and (step % save_every == 0 or step == steps):
                save()
        if d.main and flag.stop:
            save()
            log(f"stopped at step {step}; state saved to {state_path}")
    return {"step": step, "stopped": flag.stop, **metrics}
