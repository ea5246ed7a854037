"""Where a small object's outline is lost: in the tokenizer's 12-bit code, or in its decoder.

A copy of the shipped decoder is fine-tuned (the tokenizer's data and L2 loss, the encoder frozen) on one
of three inputs, and its round trip read by the analyser per shape and object size (extend_diagnosis.py,
part 1), with held-out PSNR:
  bits      the shipped ids alone: the control (a plain decoder-only fine-tune);
  features  the ids plus the encoder's continuous features before quantization (128 channels per cell):
            an upper bound, what a code that kept everything the encoder saw could give this decoder;
  extra:N   the ids plus N more sign bits, read off those features by a new head trained straight through
            (more bits per cell without touching the ids the LM was trained on).
The new decoder inputs start at zero, so every variant starts as the shipped decoder.

Usage: python eval/study/code_bottleneck.py features [--steps 800]   (about 9 min at one thread)
"""

import argparse
import os
import sys
import time
from pathlib import Path

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

sys.path[:0] = [str(Path(__file__).resolve().parents[2]), str(Path(__file__).resolve().parent)]
from extend_diagnosis import round_trip_by_size  # noqa: E402
from model.checkpoint import load_into, read_checkpoint  # noqa: E402
from model.config import load_preset  # noqa: E402
from model.controls import control_video  # noqa: E402
from model.data.sources import load_clips  # noqa: E402
from model.data.world import render_clips  # noqa: E402
from model.tokenizer import CausalConv3d, VideoTokenizer  # noqa: E402
from model.train.common import lr_at  # noqa: E402
from model.train.tokenizer import reconstruction_psnr, to_batch  # noqa: E402


class WiderCode(nn.Module):
    """The shipped tokenizer with its encoder frozen and its decoder fed the ids plus `extra` channels."""

    def __init__(self, tok: VideoTokenizer, mode: str):
        super().__init__()
        self.tok, self.mode, cfg = tok, mode, tok.cfg
        tok.encoder.requires_grad_(False)
        n_extra = 0 if mode == "bits" else cfg.channels[-1] if mode == "features" else int(mode.split(":")[1])
        self.head = CausalConv3d(cfg.channels[-1], n_extra, pad=cfg.pad) if mode.startswith("extra:") else None
        old = tok.decoder.conv_in.conv
        new = nn.Conv3d(cfg.bits + n_extra, old.out_channels, old.kernel_size)
        with torch.no_grad():
            new.weight.zero_()
            new.weight[:, : cfg.bits] = old.weight
            new.bias.copy_(old.bias)
        tok.decoder.conv_in.conv = new

    def code(self, video: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(B, T, 3, H, W) -> decoder input (B, bits + extra, T', h, w), commitment loss of any new bits."""
        enc = self.tok.encoder
        with torch.no_grad():
            features = enc.features(self.tok._to_groups(video))
            bits = torch.where(enc.conv_out(features) > 0, 1.0, -1.0)
        if self.mode == "bits":
            return bits, torch.zeros(())
        if self.mode == "features":
            return torch.cat([bits, features.float()], 1), torch.zeros(())
        z = self.head(features).float()
        q = torch.where(z > 0, 1.0, -1.0)
        return torch.cat([bits, z + (q - z).detach()], 1), F.mse_loss(z, q.detach())

    def forward(self, video: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        z, commit = self.code(video)
        return self.tok._from_groups(self.tok.decoder(z)), commit


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("mode", help="bits | features | extra:N")
    ap.add_argument("--steps", type=int, default=800)
    ap.add_argument("--lr", type=float, default=3e-4)
    args = ap.parse_args()
    if args.mode not in ("bits", "features") and not (args.mode.startswith("extra:") and args.mode[6:].isdigit()):
        raise SystemExit(f"mode must be bits, features or extra:N, got {args.mode!r}")
    torch.set_num_threads(int(os.environ.get("THREADS", 1)))
    torch.manual_seed(3)
    p = load_preset("tiny")
    cfg, weights = p.tokenizer, Path(__file__).resolve().parents[2] / "presets" / "tiny.safetensors"
    tok = VideoTokenizer(cfg)
    load_into(tok, read_checkpoint(weights)[0], "tokenizer", weights)
    model = WiderCode(tok, args.mode)
    clips = load_clips("world:4000", cfg.frames, cfg.height, p.video.fps, 1, print).clips
    controls = np.stack([control_video(c, motion_only=i % 2 == 1) for i, c in enumerate(clips[: len(clips) // 4])])
    held = render_clips(64, 999, cfg.frames, cfg.height, allow_held_out=True)[1]
    params = [q for q in model.parameters() if q.requires_grad]
    opt = torch.optim.AdamW(params, lr=args.lr, betas=(0.9, 0.99), weight_decay=0.0)
    t0 = time.time()
    model.tok.encoder.eval()
    for step in range(args.steps):
        for g in opt.param_groups:
            g["lr"] = lr_at(step, args.steps, args.lr, 50)
        rng = np.random.default_rng([3, step])
        x = to_batch(np.concatenate([clips[rng.integers(len(clips), size=6)], controls[rng.integers(len(controls), size=2)]]), "cpu")
        x = x.flip(-1) if rng.random() < 0.5 else x
        with torch.autocast("cpu", dtype=torch.bfloat16):
            rec, commit = model(x)
        loss = 5 * ((rec.float() - x) ** 2).mean() + 0.25 * commit
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(params, 1.0)
        opt.step()
        if (step + 1) % 100 == 0:
            print(f"step {step + 1}/{args.steps} loss {loss.item():.4f} ({time.time() - t0:.0f} s)", flush=True)
    model.eval()
    with torch.no_grad():
        psnr = reconstruction_psnr(tok, held, round_trip=lambda v: model(v)[0].clamp(-1, 1))
        print(f"{args.mode}: held-out PSNR {psnr:.2f} dB after {args.steps} steps")
        round_trip_by_size(tok, round_trip=lambda v: model(v)[0])
    print(f"({time.time() - t0:.0f} s)")


if __name__ == "__main__":
    main()
