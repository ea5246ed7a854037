"""The token layout of every task, in one place (VideoPoet's special tokens, prefix/output split, CFG).

  <bos> <task> <bot_i> [pooled text] [per-token text states] <eot_i> (<bov_i> visual-in <eov_i>) <res> | <bov_o> visual-out
Left of `|` is the prefix: attention there is bidirectional; from <bov_o> on it is causal and the loss is
on the visual-out ids only. The text slot holds continuous vectors (projected MiniLM states), so its token
ids are placeholders. Text is dropped (all text keys masked, a learned null vector in the pooled slot) for
classifier-free guidance. Audio segments are not used by this model and are left out, as the paper does
for tasks without audio. Every visual-out segment has a fixed length, so <eov_o> <eos> are implied.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Optional

import torch

SPECIAL_TOKENS = (
    "<pad>", "<bos>", "<eos>",
    "<task_t2v>", "<task_t2i>", "<task_i2v>", "<task_continue>", "<task_stylize>", "<task_motion>",
    "<bot_i>", "<eot_i>", "<bov_i>", "<eov_i>", "<res>", "<bov_o>", "<eov_o>",
    "<task_inpaint>", "<task_outpaint>", "<mask>",
)  # fmt: skip
# Tokens are only ever appended: a checkpoint with fewer special rows loads by inserting the new rows
# (PrefixLM.upgrade_state), so every id keeps its meaning.
LEGACY_N_SPECIAL = (16,)
SPECIAL = {name: i for i, name in enumerate(SPECIAL_TOKENS)}
N_SPECIAL = len(SPECIAL_TOKENS)

TASKS = ("t2v", "t2i", "i2v", "continue", "stylize", "motion", "inpaint", "outpaint")
VISUAL_IN_TASKS = ("i2v", "continue", "stylize", "motion", "inpaint", "outpaint")
MASKED_TASKS = ("inpaint", "outpaint")  # visual-in is the clip with hidden latent cells as <mask>


def visual_token(ids: torch.Tensor) -> torch.Tensor:
    """Visual id -> vocabulary id (visual ids follow the special tokens)."""
    return ids + N_SPECIAL


@dataclass
class Sequence:
    """A batch of sequences that share one layout."""

    tokens: torch.Tensor  # (B, S) int64: the prefix, <bov_o>, then visual-out tokens if known
    text_start: int  # index of the pooled-text slot; per-token states follow it
    text_states: torch.Tensor  # (B, Lt, text_dim)
    text_valid: torch.Tensor  # (B, Lt) bool: False for padding and for dropped text
    text_pooled: torch.Tensor  # (B, text_dim)
    has_text: torch.Tensor  # (B,) bool
    prefix_len: int  # index of <bov_o>: positions before it are the bidirectional prefix
    n_out: int  # visual-out ids this layout produces
    in_start: int = -1  # index of the first visual-in id (-1: no visual input)
    n_in: int = 0  # visual-in ids
    out_follows_in: bool = False  # visual-out continues visual-in in time (i2v, continue); else they are aligned
    negative: Optional[tuple] = None  # (states, valid, pooled) of a negative prompt: the other half of CFG
    out_known: Optional[torch.Tensor] = None  # (B, n_out) visual ids the sampler must keep (-1: free), e.g. unmasked cells

    @property
    def batch(self) -> int:
        return self.tokens.shape[0]

    def to(self, device) -> "Sequence":
        moved = {f.name: getattr(self, f.name) for f in dataclasses.fields(self)}
        if self.negative is not None:
            moved["negative"] = tuple(t.to(device) for t in self.negative)
        return Sequence(**{k: (v.to(device) if torch.is_tensor(v) else v) for k, v in moved.items()})

    def key_valid(self) -> torch.Tensor:
        """(B, S) bool: which positions may be attended to (padding/dropped text may not)."""
        valid = torch.ones_like(self.tokens, dtype=torch.bool)
        Lt = self.text_states.shape[1]
        valid[:, self.text_start + 1 : self.text_start + 1 + Lt] = self.text_valid
        return valid

    def without_text(self) -> "Sequence":
        """The same prefix with the text dropped: the unconditional half of CFG."""
        return dataclasses.replace(self, text_valid=torch.zeros_like(self.text_valid), has_text=torch.zeros_like(self.has_text))

    def with_negative(self, states: torch.Tensor, valid: torch.Tensor, pooled: torch.Tensor) -> "Sequence":
        """The same batch whose CFG branch reads this (one) negative prompt instead of no text."""
        B = self.batch
        return dataclasses.replace(self, negative=(states.expand(B, -1, -1), valid.expand(B, -1), pooled.expand(B, -1)))

    def doubled(self) -> "Sequence":
        """[conditional; unconditional] in one batch, so CFG costs one model call per step. With a
        negative prompt the second half reads it instead of dropped text."""
        if self.negative is not None:
            s, v, p = self.negative
            u = dataclasses.replace(self, text_states=s.to(self.text_states), text_valid=v.to(self.text_valid.device),
                                    text_pooled=p.to(self.text_pooled), has_text=torch.ones_like(self.has_text))  # fmt: skip
        else:
            u = self.without_text()
        cat = torch.cat
        return dataclasses.replace(
            self, tokens=cat([self.tokens, u.tokens]), text_states=cat([self.text_states, u.text_states]),
            text_valid=cat([self.text_valid, u.text_valid]), text_pooled=cat([self.text_pooled, u.text_pooled]),
            has_text=cat([self.has_text, u.has_text]),
        )  # fmt: skip


def build(
    task: str,
    text_states: torch.Tensor,
    text_valid: torch.Tensor,
    text_pooled: torch.Tensor,
    n_out: int,
    visual_in: torch.Tensor | None = None,
    visual_out: torch.Tensor | None = None,
    has_text: torch.Tensor | None = None,
    in_mask: torch.Tensor | None = None,
) -> Sequence:
    """Lay out a batch for `task`. visual_in/visual_out are flat visual ids (B, N) (not yet offset).
    in_mask (B, N) bool, for inpaint/outpaint only: True where a visual-in id is hidden (becomes <mask>)."""
    if task not in TASKS:
        raise ValueError(f"unknown task {task!r}; known: {TASKS}")
    needs_in = task in VISUAL_IN_TASKS
    if needs_in != (visual_in is not None):
        raise ValueError(f"task {task} {'needs' if needs_in else 'takes no'} visual input")
    if (task in MASKED_TASKS) != (in_mask is not None):
        raise ValueError(f"task {task} {'needs' if task in MASKED_TASKS else 'takes no'} mask")
    B, Lt, _ = text_states.shape
    dev = text_states.device

    def tok(name: str) -> torch.Tensor:
        return torch.full((B, 1), SPECIAL[name], dtype=torch.long, device=dev)

    parts = [tok("<bos>"), tok(f"<task_{task}>"), tok("<bot_i>")]
    text_start = 3
    parts.append(torch.full((B, 1 + Lt), SPECIAL["<pad>"], dtype=torch.long, device=dev))
    parts.append(tok("<eot_i>"))
    in_start, n_in = -1, 0
    if visual_in is not None:
        in_start = sum(p.shape[1] for p in parts) + 1
        n_in = visual_in.reshape(B, -1).shape[1]
        vin = visual_token(visual_in.reshape(B, -1).long())
        if in_mask is not None:
            if in_mask.shape != vin.shape:
                raise ValueError(f"mask shape {tuple(in_mask.shape)} does not match visual input {tuple(vin.shape)}")
            vin = vin.masked_fill(in_mask.to(vin.device), SPECIAL["<mask>"])
        parts += [tok("<bov_i>"), vin, tok("<eov_i>")]
    parts.append(tok("<res>"))
    prefix_len = sum(p.shape[1] for p in parts)
    parts.append(tok("<bov_o>"))
    if visual_out is not None:
        parts.append(visual_token(visual_out.reshape(B, -1).long()))
    if has_text is None:
        has_text = text_valid.any(dim=1)
    text_valid = text_valid & has_text[:, None]
    return Sequence(
        torch.cat(parts, 1), text_start, text_states, text_valid, text_pooled, has_text, prefix_len, n_out,
        in_start, n_in, task in ("i2v", "continue"),
    )  # fmt: skip
