"""PrefixLM: a decoder-only transformer, bidirectional over the prefix and causal over the output.

Positions: with `rope="3d"` (Lumos-1's and Qwen2-VL's multi-axis rotary positions; LlamaGen uses the 2-D
case) a visual id at latent frame t, row h, column w rotates by (B + t, B + h, B + w) on three disjoint
sets of frequencies, B being one base per sequence; every other token by its index on all three axes, so
text reads as with 1-D rotary positions. A cell's neighbours are then at the same relative offsets in
every frame and every segment: the same cell of the control video and of the output are at offset 0,
the next latent frame is +1 in time. `rope="1d"` rotates every token by its sequence index (the first
checkpoints). The tables of a sequence are computed once and kept in the KV cache for decoding.

Pre-norm blocks with RMSNorm, rotary positions and SwiGLU; fused QKV and gate/up weights (fewer, larger
ops: at this size per-call overhead, not arithmetic, is the cost). A static KV cache is written by index,
so sampling is prefill once + one small step per token with no per-step allocation of the cache. The cache
also holds each projection in two layouts, and `project` picks the matrix-product kernel by the number of
rows: at a step's one or two rows the kernel, not the arithmetic, sets the time (bench/layout_probe.py).
"""

from __future__ import annotations

import torch
import torch.nn as nn
import torch.nn.functional as F

from .config import LMConfig, TokenizerConfig
from .tasks import LEGACY_N_SPECIAL, N_SPECIAL, SPECIAL, Sequence


class RMSNorm(nn.Module):
    def __init__(self, dim: int, eps: float = 1e-6):
        super().__init__()
        self.eps = eps
        self.weight = nn.Parameter(torch.ones(dim))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.rms_norm(x, (x.shape[-1],), self.weight, self.eps)


def rope_tables(n: int, head_dim: int, base: float, device=None) -> tuple[torch.Tensor, torch.Tensor]:
    inv = 1.0 / base ** (torch.arange(0, head_dim, 2, device=device).float() / head_dim)
    ang = torch.outer(torch.arange(n, device=device).float(), inv)  # (n, hd/2)
    return ang.cos(), ang.sin()


def rope_axes(head_dim: int) -> tuple[int, int, int]:
    """Frequency pairs given to (time, row, column): a quarter to time, the rest split between rows and columns."""
    pairs = head_dim // 2
    hw = (3 * pairs) // 8
    return pairs - 2 * hw, hw, hw


def rope_tables_3d(pos: torch.Tensor, head_dim: int, base: float) -> tuple[torch.Tensor, torch.Tensor]:
    """pos: (n, 3) positions (t, h, w) -> cos, sin (n, hd/2); each axis has its own frequency ladder."""
    angles = []
    for axis, k in enumerate(rope_axes(head_dim)):
        if k == 0:
            continue
        inv = 1.0 / base ** (torch.arange(k, device=pos.device).float() / k)
        angles.append(pos[:, axis, None].float() * inv)
    ang = torch.cat(angles, dim=-1)
    return ang.cos(), ang.sin()


def positions_3d(seq: Sequence, n: int, grid: tuple[int, int]) -> torch.Tensor:
    """(n, 3) rotary positions of the first n tokens of seq's layout (see the module docstring)."""
    gh, gw = grid
    tpf = gh * gw
    pos = torch.arange(n, device=seq.tokens.device)[:, None].repeat(1, 3)
    base = seq.in_start if seq.n_in else seq.prefix_len + 1

    def cells(j: torch.Tensor, t0: int) -> torch.Tensor:
        return base + torch.stack([t0 + j // tpf, (j % tpf) // gw, j % gw], dim=1)

    if seq.n_in:
        j = torch.arange(min(seq.n_in, max(0, n - seq.in_start)), device=pos.device)
        pos[seq.in_start : seq.in_start + len(j)] = cells(j, 0)
    first_out = seq.prefix_len + 1
    if n > first_out:
        t0 = seq.n_in // tpf if seq.out_follows_in else 0
        pos[first_out:n] = cells(torch.arange(n - first_out, device=pos.device), t0)
    return pos


def full_width(cos: torch.Tensor, sin: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """(S, hd/2) tables -> (S, hd) tables for apply_rope: [cos, cos] and [-sin, sin]."""
    return torch.cat([cos, cos], -1), torch.cat([-sin, sin], -1)


def apply_rope(x: torch.Tensor, cos: torch.Tensor, sin: torch.Tensor) -> torch.Tensor:
    """x: (..., S, hd); cos/sin: (S, hd) from full_width. Rotates pairs (first half, second half):
    x * [cos, cos] + [x2, x1] * [-sin, sin], three kernels (a step is a few hundred small ops, so
    the count is what costs)."""
    xf = x.float()
    return torch.addcmul(xf * cos, xf.roll(x.shape[-1] // 2, -1), sin).type_as(x)


class KVCache:
    """Pre-allocated keys/values for every layer, plus which positions may be attended to."""

    def __init__(self, cfg: LMConfig, batch: int, max_len: int, device, dtype):
        hd = cfg.dim // cfg.n_heads
        shape = (cfg.n_layers, batch, cfg.n_heads, max_len, hd)
        self.k = torch.zeros(shape, device=device, dtype=dtype)
        self.v = torch.zeros(shape, device=device, dtype=dtype)
        self.layers = [(self.k[i], self.v[i]) for i in range(cfg.n_layers)]  # per-layer views, made once
        self.key_valid = torch.zeros(batch, max_len, dtype=torch.bool, device=device)
        self.max_len = max_len
        self.cos = self.sin = torch.empty(0)  # rotary tables of the sequence, set by prefill
        self.bias = torch.empty(0)  # (B, 1, 1, max_len) additive mask of key_valid (0 / -inf), set by prefill
        # the LM's projections as (w, w_t) pairs, per layer (qkv, out, w13, w2), and the head's: set by
        # PrefixLM.new_cache (see step_weights and project)
        self.weights: list[tuple[tuple[torch.Tensor, torch.Tensor], ...]] = []
        self.head: tuple[torch.Tensor, torch.Tensor] = (torch.empty(0), torch.empty(0))


SMALL_ROWS = 16  # from 2 to this many rows, w @ x^T beats x @ w_t and F.linear (bench/layout_probe.py)


def project(x: torch.Tensor, w: torch.Tensor, w_t: torch.Tensor | None = None) -> torch.Tensor:
    """x (..., in) through the projection w (out, in), w_t being w as an (in, out) contiguous copy (or None).
    A sampling step is a few small matrix products whose time depends on the kernel more than on the
    arithmetic, and on this kind of CPU the fastest kernel depends on the number of rows
    (bench/layout_probe.py): 2..SMALL_ROWS rows (a guided batch-2 step, a Jacobi chunk of 8 at batch 1 or 2)
    w @ x^T, transposed back into a contiguous result (downstream ops on the transposed view cost more than
    the copy); one row (a batch-1 decode step) or more (prefill) x @ w_t. Without w_t (training: the
    parameters themselves) F.linear."""
    if w_t is None:
        return F.linear(x, w)
    rows = x.numel() // x.shape[-1]
    if 1 < rows <= SMALL_ROWS:
        return (w @ x.reshape(rows, -1).t()).t().contiguous().view(*x.shape[:-1], w.shape[0])
    return x @ w_t


class Attention(nn.Module):
    """Fused q/k/v projection (q, k, v stacked, heads inside each) and the output projection."""

    def __init__(self, cfg: LMConfig):
        super().__init__()
        self.n_heads, self.head_dim = cfg.n_heads, cfg.dim // cfg.n_heads
        self.qkv = nn.Linear(cfg.dim, 3 * cfg.dim, bias=False)
        self.out = nn.Linear(cfg.dim, cfg.dim, bias=False)


class SwiGLU(nn.Module):
    """Fused gate/up projection (w13) and the down projection (w2)."""

    def __init__(self, cfg: LMConfig):
        super().__init__()
        self.w13 = nn.Linear(cfg.dim, 2 * cfg.mlp_hidden, bias=False)
        self.w2 = nn.Linear(cfg.mlp_hidden, cfg.dim, bias=False)


class Block(nn.Module):
    """x + attention(norm(x)), then + SwiGLU(norm(x)). Written as one function of the weights, not as calls
    into submodules: a decode step is a few hundred small ops, and per-call overhead, not arithmetic, is
    what it costs (one path for training, prefill, decode steps and Jacobi chunks)."""

    def __init__(self, cfg: LMConfig):
        super().__init__()
        self.n1, self.attn = RMSNorm(cfg.dim), Attention(cfg)
        self.n2, self.mlp = RMSNorm(cfg.dim), SwiGLU(cfg)

    def forward(self, x, cos, sin, mask, cache: KVCache | None = None, layer: int = 0, start: int = 0):
        """x (B, S, D) at positions start..start+S-1, or (B, D): one token (a decode step, fewer reshapes);
        with a cache, this layer's keys/values are written at [start, start+S) and the attention reads the
        filled part [0, start+S)."""
        one = x.dim() == 2
        B, S, D = (x.shape[0], 1, x.shape[1]) if one else x.shape
        H, hd, eps = self.attn.n_heads, self.attn.head_dim, self.n1.eps
        if cache is None:  # training: the parameters themselves (autograd)
            p_qkv, p_out, p13, p2 = (self.attn.qkv.weight,), (self.attn.out.weight,), (self.mlp.w13.weight,), (self.mlp.w2.weight,)
        else:  # sampling: the cache's copies, in both layouts
            p_qkv, p_out, p13, p2 = cache.weights[layer]
        qkv = project(F.rms_norm(x, (D,), self.n1.weight, eps), *p_qkv)
        qkv = qkv.view(B, 3 * H, 1, hd) if one else qkv.view(B, S, 3 * H, hd).transpose(1, 2)  # (B, 3H, S, hd)
        qk = apply_rope(qkv[:, : 2 * H], cos, sin)  # q and k rotated in one call
        q, k, v = qk[:, :H], qk[:, H:], qkv[:, 2 * H :]
        if cache is not None:
            kc, vc = cache.layers[layer]
            kc.narrow(2, start, S).copy_(k)
            vc.narrow(2, start, S).copy_(v)
            k, v = kc.narrow(2, 0, start + S), vc.narrow(2, 0, start + S)
        y = F.scaled_dot_product_attention(q, k, v, attn_mask=mask)
        y = y.view(B, D) if one else y.transpose(1, 2).reshape(B, S, D)
        x = x + project(y, *p_out)
        a, b = project(F.rms_norm(x, (D,), self.n2.weight, eps), *p13).chunk(2, dim=-1)
        return x + project(F.silu(a) * b, *p2)


def prefix_lm_mask(key_valid: torch.Tensor, prefix_len: int, q_start: int = 0, n_q: int | None = None) -> torch.Tensor:
    """(B, 1, n_q, L) bool: query i sees key j iff j is valid and (j < prefix_len or j <= i)."""
    B, L = key_valid.shape
    n_q = L - q_start if n_q is None else n_q
    qi = torch.arange(q_start, q_start + n_q, device=key_valid.device)[:, None]
    kj = torch.arange(L, device=key_valid.device)[None, :]
    allowed = (kj < prefix_len) | (kj <= qi)
    return allowed[None, None] & key_valid[:, None, None, :]


class PrefixLM(nn.Module):
    def __init__(self, cfg: LMConfig, visual_vocab: int, grid: tuple[int, int]):
        """grid: (rows, columns) of a latent frame; `visual_vocab` ids; positions as `cfg.rope` says."""
        super().__init__()
        self.cfg, self.visual_vocab, self.grid = cfg, visual_vocab, tuple(grid)
        self.embed = nn.Embedding(N_SPECIAL + visual_vocab, cfg.dim)
        self.text_proj = nn.Linear(cfg.text_dim, cfg.dim)
        self.pool_proj = nn.Linear(cfg.text_dim, cfg.dim)
        self.null_text = nn.Parameter(torch.zeros(cfg.dim))
        self.blocks = nn.ModuleList(Block(cfg) for _ in range(cfg.n_layers))
        self.norm = RMSNorm(cfg.dim)
        self.head = nn.Linear(cfg.dim, visual_vocab, bias=False)  # logits over visual ids only
        self._rope_len = 0
        self.apply(self._init)
        for n, p in self.named_parameters():  # scaled init of residual projections (GPT-2)
            if n.endswith("attn.out.weight") or n.endswith("mlp.w2.weight"):
                nn.init.normal_(p, std=0.02 / (2 * cfg.n_layers) ** 0.5)

    @classmethod
    def for_tokenizer(cls, cfg: LMConfig, tokenizer: TokenizerConfig) -> "PrefixLM":
        """The LM over a tokenizer's ids: its vocabulary and its latent grid."""
        return cls(cfg, tokenizer.vocab_size, tokenizer.latent_shape()[1:])

    def upgrade_state(self, state: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        """Weights from a checkpoint written with fewer special tokens: insert rows for the new ones
        (task tokens start as a copy of <task_stylize>, the other aligned video-to-video task; <mask> as
        the mean visual embedding), so such checkpoints load and fine-tune. Visual rows keep their ids."""
        emb = state.get("embed.weight")
        if emb is None or emb.dim() != 2:
            return state
        n_old = emb.shape[0] - self.visual_vocab
        if n_old == N_SPECIAL or n_old not in LEGACY_N_SPECIAL:
            return state
        new = []
        for name in list(SPECIAL)[n_old:]:
            if name.startswith("<task_"):
                new.append(emb[SPECIAL["<task_stylize>"]])
            else:
                new.append(emb[n_old:].float().mean(0).to(emb.dtype))
        return {**state, "embed.weight": torch.cat([emb[:n_old], torch.stack(new), emb[n_old:]])}

    @staticmethod
    def _init(m: nn.Module) -> None:
        if isinstance(m, nn.Linear):
            nn.init.normal_(m.weight, std=0.02)
            if m.bias is not None:
                nn.init.zeros_(m.bias)
        elif isinstance(m, nn.Embedding):
            nn.init.normal_(m.weight, std=0.02)

    def rope(self, seq: Sequence, n: int) -> tuple[torch.Tensor, torch.Tensor]:
        """cos, sin (n, hd) (full_width) for the first n positions of seq's layout."""
        hd, device = self.cfg.dim // self.cfg.n_heads, seq.tokens.device
        if self.cfg.rope == "3d":
            return full_width(*rope_tables_3d(positions_3d(seq, n, self.grid), hd, self.cfg.rope_base))
        if self._rope_len < n or self._cos.device != device:
            n2 = max(n, 1024)
            self._cos, self._sin = full_width(*rope_tables(n2, hd, self.cfg.rope_base, device))
            self._rope_len = n2
        return self._cos[:n], self._sin[:n]

    def embed_sequence(self, seq: Sequence, upto: int) -> torch.Tensor:
        """Token embeddings with the text slot replaced by projected text states."""
        x = self.embed(seq.tokens[:, :upto])
        Lt = seq.text_states.shape[1]
        s = seq.text_start
        dtype = x.dtype
        pooled = torch.where(
            seq.has_text[:, None], self.pool_proj(seq.text_pooled.to(dtype)), self.null_text.to(dtype)
        )
        states = self.text_proj(seq.text_states.to(dtype))
        return torch.cat([x[:, :s], pooled[:, None], states, x[:, s + 1 + Lt :]], dim=1)

    def _run(self, x, mask, start, cos, sin, cache=None):
        """Blocks over x (positions start.. of the sequence); cos/sin are the tables for exactly those."""
        for i, blk in enumerate(self.blocks):
            x = blk(x, cos, sin, mask, cache, i, start)
        return self.norm(x)

    def forward(self, seq: Sequence) -> torch.Tensor:
        """Training/teacher forcing: logits (B, n_out, V) for every visual-out position."""
        S = seq.prefix_len + seq.n_out  # <bov_o> and all but the last visual-out token are inputs
        x = self.embed_sequence(seq, S)
        mask = prefix_lm_mask(seq.key_valid()[:, :S], seq.prefix_len)
        h = self._run(x, mask, 0, *self.rope(seq, S))
        return self.head(h[:, seq.prefix_len : S])

    def new_cache(self, batch: int, max_len: int, device, dtype=torch.float32) -> KVCache:
        cache = KVCache(self.cfg, batch, max_len, device, dtype)
        cache.weights, cache.head = self.step_weights()
        return cache

    @torch.no_grad()
    def step_weights(self) -> tuple[list[tuple[tuple[torch.Tensor, torch.Tensor], ...]], tuple[torch.Tensor, torch.Tensor]]:
        """Every projection as a (w, w_t) pair for the cached passes (prefill, decode steps, Jacobi chunks):
        w a copy of the (out, in) weight, w_t the same transposed to (in, out), contiguous; `project` picks
        the one whose kernel is fastest for the rows at hand. Copied per cache (35 MB, a few milliseconds
        against a few hundred for a clip), so a sampler uses the weights as they are when it starts."""
        pair = lambda w: (w.detach().clone(), w.detach().t().contiguous())  # noqa: E731
        layers = [(pair(b.attn.qkv.weight), pair(b.attn.out.weight), pair(b.mlp.w13.weight), pair(b.mlp.w2.weight)) for b in self.blocks]
        return layers, pair(self.head.weight)

    def prefill(self, seq: Sequence, cache: KVCache) -> torch.Tensor:
        """Run the prefix, <bov_o> and any given visual-out ids once; fill the cache; return logits (B, V)
        for the next output id."""
        S = seq.tokens.shape[1]
        x = self.embed_sequence(seq, S)
        cache.key_valid[:, :S] = seq.key_valid()[:, :S]
        cache.key_valid[:, S:] = True  # output positions: valid once written, and only those <= pos are read
        cache.bias = torch.zeros(cache.key_valid.shape, device=x.device).masked_fill_(~cache.key_valid, float("-inf"))[:, None, None]
        mask = prefix_lm_mask(cache.key_valid[:, :S], seq.prefix_len)
        cache.cos, cache.sin = self.rope(seq, cache.max_len)
        h = self._run(x, mask, 0, cache.cos[:S], cache.sin[:S], cache)
        return project(h[:, -1], *cache.head)

    def decode_chunk(self, tokens: torch.Tensor, pos: int, cache: KVCache, prefix_len: int) -> torch.Tensor:
        """Feed S visual ids (B, S) at positions pos..pos+S-1 (causal among themselves); logits (B, S, V)."""
        x = self.embed(tokens + N_SPECIAL)
        S = tokens.shape[1]
        mask = prefix_lm_mask(cache.key_valid[:, : pos + S], prefix_len, pos, S)
        return project(self._run(x, mask, pos, cache.cos[pos : pos + S], cache.sin[pos : pos + S], cache), *cache.head)

    def decode_step(self, token: torch.Tensor, pos: int, cache: KVCache) -> torch.Tensor:
        """Feed one visual id (B,) at position pos; return logits (B, V) for the next one."""
        x = F.embedding(token + N_SPECIAL, self.embed.weight)  # (B, D): the blocks' one-token form
        # a new output token sees every valid key up to itself (the prefix is all before it): a slice of the
        # additive mask made at prefill (a bool mask is converted in every layer, two more ops each)
        mask = cache.bias[:, :, :, : pos + 1].to(x.dtype)
        return project(self._run(x, mask, pos, cache.cos[pos : pos + 1], cache.sin[pos : pos + 1], cache), *cache.head)
