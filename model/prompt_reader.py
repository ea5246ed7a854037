"""PromptReader: read a free-form prompt as the shape world's colour, shape and motion, and write it
again in the words the LM was trained on.

Why: the LM reads frozen MiniLM states and learnt only the training captions' wordings. A new phrasing
("lifting off", "tent shape") reaches it as states it was never trained on: a probe on those states
reads all three attributes of new wordings right about half the time (README, model card). MiniLM's
pooled sentence vector, though, was trained for exactly this — paraphrases land near each other — so
matching the prompt's phrases to the training vocabulary by that similarity, and handing the LM a
training-style caption, carries new wordings much further (as DALL-E 3 rewrites prompts into the style
of its training captions). Only the *train* split's wordings are known here: the eval's held-out
wordings stay unseen (a test checks it).

Rules, in order (each one a place where being wrong is cheaper than guessing):
  * whole-word training wordings are read as they are ("crimson", "moving left"), longest first;
  * an attribute with no training wording is read from the phrase (1-5 words, not only stop words, not
    inside a matched wording) whose sentence vector lies nearest one value's centroid of training
    wordings, ranked by that similarity plus its margin over the runner-up value, and kept only when
    the similarity is at least MIN_SIMILARITY;
  * the prompt is rewritten only when every attribute is read, at least one of them from a training
    wording, none twice with different values, and at least one only by similarity. A prompt in
    training words already is left as written; one the reader cannot place (no shape-world word at
    all, a colour named twice) goes to the LM unchanged.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Optional

import numpy as np
import torch
import torch.nn.functional as F

from .data.captions import BACKGROUND_WORDS, COLOR_WORDS, MOTION_VERBS, MOTION_WORDS, SHAPE_WORDS, canonical_caption
from .data.world import COLORS_LIST, MOTIONS, SHAPES

ATTRIBUTES = ("color", "shape", "motion")
MIN_SIMILARITY = 0.4  # cosine to a value's centroid; unrelated words ("dog", "sunset") score 0.3-0.45
MAX_PHRASE_WORDS = 5
STOP_WORDS = frozenset(
    "a an the of its it is are be was which that this these those and or but in on at with to from for by as "
    "there here shape colour color background backdrop video clip footage animation".split()
)
_WORD = re.compile(r"[\w'-]+")


def training_vocabulary() -> list[tuple[str, str, str]]:
    """(wording, attribute, value) for every train-split wording, and the backgrounds' names."""
    rows = [(w, "color", c) for c, ws in COLOR_WORDS["train"].items() for w in ws]
    rows += [(w, "shape", s) for s, ws in SHAPE_WORDS["train"].items() for w in ws]
    rows += [(w, "motion", m) for m in MOTIONS for w in MOTION_WORDS["train"][m] + MOTION_VERBS["train"][m]]
    rows += [(w, "background", b) for b, ws in BACKGROUND_WORDS.items() for w in ws]
    return rows


@dataclass(frozen=True)
class Reading:
    """What the reader made of a prompt. `values` maps attribute -> value; `by_similarity` names the
    attributes read from a phrase that is not a training wording, with that phrase."""

    prompt: str
    values: dict[str, str] = field(default_factory=dict)
    by_similarity: dict[str, str] = field(default_factory=dict)
    conflicting: bool = False

    @property
    def complete(self) -> bool:
        return all(a in self.values for a in ATTRIBUTES)

    @property
    def rewritten(self) -> Optional[str]:
        """The training-style caption the LM gets instead of the prompt, or None (prompt used as written)."""
        exact = [a for a in ATTRIBUTES if a in self.values and a not in self.by_similarity]
        if self.conflicting or not self.complete or not exact or not self.by_similarity:
            return None
        c, s, m = (self.values[a] for a in ATTRIBUTES)
        text = canonical_caption(c, s, m)
        if "background" in self.values:  # a train template: "{a} {color} {shape} {motion} on a {bg} background"
            article = "an" if c[0] in "aeiou" else "a"
            text = f"{article}{text[1:]} on a {self.values['background']} background"
        return text


class PromptReader:
    """read(prompt) -> Reading; rewrite(prompt) -> the text the LM should get. `encode` maps a list of
    texts to unit-norm sentence vectors (the TextEncoder's pooled output)."""

    def __init__(self, encode):
        self._encode = encode
        self.vocabulary = training_vocabulary()
        ordered = sorted(self.vocabulary, key=lambda r: (-len(r[0]), r))
        self._exact = [(re.compile(r"(?<!\w)" + re.escape(w) + r"(?!\w)"), a, v) for w, a, v in ordered]
        self._centroids: Optional[dict[str, tuple[tuple[str, ...], torch.Tensor]]] = None

    def centroids(self) -> dict[str, tuple[tuple[str, ...], torch.Tensor]]:
        """Per attribute: (values, unit centroid of each value's training wordings). Built on first need,
        so prompts in training words never pay for it."""
        if self._centroids is None:
            rows = [r for r in self.vocabulary if r[1] in ATTRIBUTES]
            vecs = self._encode([w for w, _, _ in rows])
            self._centroids = {}
            for attr, values in (("color", COLORS_LIST), ("shape", SHAPES), ("motion", MOTIONS)):
                cen = [vecs[[i for i, r in enumerate(rows) if r[1] == attr and r[2] == v]].mean(0) for v in values]
                self._centroids[attr] = (tuple(values), F.normalize(torch.stack(cen), dim=-1))
        return self._centroids

    def read(self, prompt: str) -> Reading:
        text = prompt.lower()
        words = [(m.group(), m.start(), m.end()) for m in _WORD.finditer(text)]
        found: dict[str, set[str]] = {}
        used: set[int] = set()
        taken = np.zeros(len(text) + 1, dtype=bool)
        for rx, attr, value in self._exact:
            for m in rx.finditer(text):
                if not taken[m.start() : m.end()].any():
                    taken[m.start() : m.end()] = True
                    found.setdefault(attr, set()).add(value)
                    used |= {i for i, (_, a, b) in enumerate(words) if a >= m.start() and b <= m.end()}
        conflicting = any(len(v) > 1 for v in found.values())
        values = {a: next(iter(v)) for a, v in found.items() if len(v) == 1}
        missing = [a for a in ATTRIBUTES if a not in found]
        by_similarity: dict[str, str] = {}
        if missing and not conflicting and any(a in values for a in ATTRIBUTES):
            by_similarity = self._similar(words, used, missing)
            values.update({a: v for a, (v, _) in by_similarity.items()})
            by_similarity = {a: phrase for a, (_, phrase) in by_similarity.items()}
        return Reading(prompt, values, by_similarity, conflicting)

    def _similar(self, words: list[tuple[str, int, int]], used: set[int], missing: list[str]) -> dict[str, tuple[str, str]]:
        w = [x for x, _, _ in words]
        spans = [(i, j) for i in range(len(w)) for j in range(i + 1, min(len(w), i + MAX_PHRASE_WORDS) + 1)
                 if not all(x in STOP_WORDS for x in w[i:j]) and not used.intersection(range(i, j))]  # fmt: skip
        if not spans:
            return {}
        vecs = self._encode([" ".join(w[i:j]) for i, j in spans])
        cands = []
        for attr in missing:
            values, cen = self.centroids()[attr]
            top = (vecs @ cen.T).topk(2, dim=1)
            for k, (i, j) in enumerate(spans):
                best, second = float(top.values[k, 0]), float(top.values[k, 1])
                if best >= MIN_SIMILARITY:
                    cands.append((best + (best - second), attr, values[int(top.indices[k, 0])], i, j))
        out: dict[str, tuple[str, str]] = {}
        for _, attr, value, i, j in sorted(cands, key=lambda c: -c[0]):
            if attr not in out and not used.intersection(range(i, j)):
                out[attr] = (value, " ".join(w[i:j]))
                used |= set(range(i, j))
        return out

    def rewrite(self, prompt: str) -> str:
        return self.read(prompt).rewritten or prompt
