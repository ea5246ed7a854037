"""Train the VideoTokenizer: L2 reconstruction (optionally + an image-gradient term) + LFQ entropy and
commitment losses, bf16 autocast.

Clips are drawn from a pool (rendered procedural world or a user's folder); a quarter of each batch are
the clips' control videos, so stylization controls tokenize as well as the videos themselves.
"""

from __future__ import annotations

import dataclasses
import time
from pathlib import Path
from typing import Optional

import numpy as np
import torch

from ..checkpoint import checkpoint_config, compare_configs, load_into, read_checkpoint, save_checkpoint
from ..config import TokenizerConfig
from ..tokenizer import VideoTokenizer
from .common import (Dist, ProgressFn, StopFlag, autocast, device_for, init_distributed, load_train_state, lr_at, make_optimizer, precision,
                     save_train_state)  # fmt: skip


def to_batch(clips: np.ndarray, device: torch.device) -> torch.Tensor:
    """uint8 (B, T, H, W, 3) -> float (B, T, 3, H, W) in [-1, 1]."""
    return torch.from_numpy(np.ascontiguousarray(clips)).to(device).permute(0, 1, 4, 2, 3).float().div(127.5).sub(1)


def gradient_loss(rec: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
    """Mean L1 distance between the spatial finite differences of rec and x, both (B, T, 3, H, W).

    Why: L2 alone is minimised by the mean of every picture a token grid could stand for, and for objects
    one latent cell wide that mean is a soft blob (small circles decode to squarish blobs). Matching the
    image gradients (the gradient-difference loss of Mathieu et al., 2016, made for blurry video
    prediction) rewards edges where the target has them. Measured (eval/study/README.md): as a decoder-only fine-tune
    of the shipped tokenizer no round-trip shape reading changed, and on the whole tokenizer it kept no
    more small outlines, so it is off by default."""
    dx = (rec[..., :, 1:] - rec[..., :, :-1]) - (x[..., :, 1:] - x[..., :, :-1])
    dy = (rec[..., 1:, :] - rec[..., :-1, :]) - (x[..., 1:, :] - x[..., :-1, :])
    return dx.abs().mean() + dy.abs().mean()


def _hidden_conv(name: str, p: torch.Tensor) -> bool:
    """The convolutions between the first and the last layer of the encoder and of the decoder: Muon's share.
    The layers that read pixels or ids in and write them out keep AdamW, as embeddings and heads do."""
    return name.startswith(("encoder.levels.", "encoder.down.", "decoder.levels.", "decoder.up."))


@torch.no_grad()
def reconstruction_psnr(tok: VideoTokenizer, clips: np.ndarray, batch: int = 8, round_trip=None) -> float:
    """Mean PSNR (dB, peak 255) of decode(encode(clip)) over uint8 clips; `round_trip` (clips in [-1, 1]
    -> reconstructions) replaces decode(encode(.)), e.g. a study's decoder fed more than the ids."""
    tok.eval()
    round_trip = round_trip or (lambda x: tok.decode(tok.encode(x)))
    device = next(tok.parameters()).device
    vals = []
    for i in range(0, len(clips), batch):
        x = to_batch(clips[i : i + batch], device)
        y = round_trip(x)
        mse = ((y - x) ** 2).mean(dim=(1, 2, 3, 4)).clamp_min(1e-10)
        vals.append(10 * torch.log10(4.0 / mse))
    return float(torch.cat(vals).mean())


def train_tokenizer(
    cfg: TokenizerConfig,
    clips: np.ndarray,
    controls: Optional[np.ndarray],
    held_out: np.ndarray,
    out_dir: Path,
    steps: int,
    batch: int = 8,
    lr: float = 1e-3,
    warmup: int = 200,
    seed: int = 0,
    resume: bool = False,
    save_every: int = 250,
    eval_every: int = 500,
    entropy_anneal: int = 0,
    init: Optional[Path] = None,
    decoder_only: bool = False,
    edge_weight: float = 0.0,
    on_progress: Optional[ProgressFn] = None,
    log=print,
    compile: bool = False,
    optimizer: str = "adamw",
) -> dict:
    """Train and write out_dir/tokenizer.safetensors (weights) and out_dir/tokenizer-state.safetensors.

    init starts from a trained tokenizer's weights. decoder_only freezes the encoder (and so every token
    id): the decoder learns to draw the same ids better, and an LM trained on those ids stays valid.
    edge_weight adds that multiple of `gradient_loss` to the loss (0: L2 alone, as before). compile: the
    forward pass through torch.compile (one static graph; bench/train_compile_probe.py). optimizer: "adamw", or
    "muon" for Muon on the hidden convolutions (`_hidden_conv`) and AdamW on the rest."""
    d: Dist = init_distributed()
    device = device_for(d)
    out_dir = Path(out_dir)
    torch.manual_seed(seed)
    model = VideoTokenizer(cfg).to(device)
    if init is not None:
        tensors, meta = read_checkpoint(Path(init))
        compare_configs(dataclasses.asdict(cfg), checkpoint_config(meta).get("tokenizer", {}), Path(init), "tokenizer.")
        load_into(model, tensors, "tokenizer", Path(init))
    if decoder_only:
        model.encoder.requires_grad_(False)
    trainable = [(n, p) for n, p in model.named_parameters() if p.requires_grad]
    opt = make_optimizer(optimizer, trainable, lr, hidden=_hidden_conv, weight_decay=0.0, betas=(0.9, 0.99), device=device)
    state_path = out_dir / "tokenizer-state.safetensors"
    step = 0
    config = dataclasses.asdict(cfg)
    if resume and state_path.exists():
        step, _, _ = load_train_state(state_path, model, opt, "tokenizer-train")
        log(f"resumed from {state_path} at step {step}")
    if init is not None and step == 0 and d.main:
        log(f"initialised from {init}: held-out PSNR {reconstruction_psnr(model, held_out):.2f} dB")
    train_model = model
    if d.world > 1:
        train_model = torch.nn.parallel.DistributedDataParallel(model)
    if compile:
        train_model = torch.compile(train_model, dynamic=False)
    n_ctrl = batch // 4 if controls is not None else 0
    metrics: dict[str, float] = {}
    t0, seen = time.time(), 0
    if d.main:
        log(f"precision: {precision(device)}")
    with StopFlag() as flag:
        while step < steps and not flag.stop:
            model.train()
            if decoder_only:
                model.encoder.eval()  # frozen: ids are a fixed function of the clip
            for g in opt.param_groups:
                g["lr"] = lr_at(step, steps, lr, warmup)
            rng = np.random.default_rng([seed, d.rank, step])  # a batch is a function of the step: resume-exact
            idx = rng.integers(len(clips), size=batch - n_ctrl)
            parts = [clips[idx]]
            if n_ctrl:
                parts.append(controls[rng.integers(len(controls), size=n_ctrl)])
            x = to_batch(np.concatenate(parts), device)
            if rng.random() < 0.5:  # horizontal flip: free variety
                x = x.flip(-1)
            # optional warm-up of the entropy term (3x -> 1x over `entropy_anneal` steps, the paper's schedule);
            # off by default: on flat-coloured data a strong batch-entropy push makes ids encode position
            entropy_scale = 3.0 - 2.0 * min(1.0, step / entropy_anneal) if entropy_anneal > 0 else 1.0
            with autocast(device):
                # a tensor under compile: a Python float would be a constant of the graph (a recompile per value)
                rec, _, aux, stats = train_model(x, torch.tensor(entropy_scale) if compile else entropy_scale)
            recon = ((rec.float() - x) ** 2).mean()
            loss = 5.0 * recon + aux
            if edge_weight > 0:
                loss = loss + edge_weight * gradient_loss(rec.float(), x)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
            opt.step()
            step += 1
            seen += len(x)
            metrics = {
                "loss": float(loss.detach()),
                "psnr_batch": float(10 * torch.log10(4.0 / recon.detach().clamp_min(1e-10))),
                "clips_per_s": seen * d.world / (time.time() - t0),
                "lr": opt.param_groups[0]["lr"],
            }
            if d.main and (step % eval_every == 0 or step == steps):
                metrics["psnr_held_out"] = reconstruction_psnr(model, held_out)
                log(f"step {step} held-out PSNR {metrics['psnr_held_out']:.2f} dB")
            if on_progress and d.main:
                on_progress(step, steps, metrics)
            if d.main and (step % save_every == 0 or step == steps or flag.stop):
                save_train_state(state_path, model, opt, step, config, "tokenizer-train")
                save_checkpoint(out_dir / "tokenizer.safetensors", {"tokenizer": model}, {"tokenizer": config}, "tokenizer")
    if d.main and flag.stop:
        save_train_state(state_path, model, opt, step, config, "tokenizer-train")
        save_checkpoint(out_dir / "tokenizer.safetensors", {"tokenizer": model}, {"tokenizer": config}, "tokenizer")
        log(f"stopped at step {step}; state saved to {state_path}")
    return {"step": step, "stopped": flag.stop, **metrics}
