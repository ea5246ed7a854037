"""PromptReader: read a free-form prompt as the shape world's colour, shape and motion, and write it
again in the words the LM was trained on.

Why: the LM reads frozen MiniLM states and learnt only the training captions' wordings. A new phrasing
("lifting off", "tent shape") reaches it as states it was never trained on: a probe on those states
reads all three attributes of new wordings right about half the time (eval/study/README.md). MiniLM's
pooled sentence vector, though, was trained for exactly this — paraphrases land near each other — so
matching the prompt's phrases to the training vocabulary by that similarity, and handing the LM a
training-style caption, carries new wordings much further (as DALL-E 3 rewrites prompts into the style
of its training captions). Only the *train* split's wordings are known here: the eval's held-out
wordings stay unseen (a test checks it).

Rules, in order (each one a place where being wrong is cheaper than guessing):
  * whole-word training wordings are read as they are ("crimson", "moving left"), longest first;
  * a colour with no training wording is looked up in the xkcd colour survey's 949 names ("mint",
    "teal", "plum"; model/data/colour_names.json, CC0) and its RGB mapped to the world colour of the
    nearest hue (pale, bright names to white; dark greys and blacks to nothing): MiniLM places colour
    names poorly ("mint" nearest blue), an RGB value does not;
  * an attribute still unread is read from the phrase (1-5 words, not only stop words, not
    inside a matched wording) whose sentence vector lies nearest one value's centroid of training
    wordings, ranked by that similarity plus its margin over the runner-up value, and kept only when
    the similarity is at least MIN_SIMILARITY;
  * similarity is tried only in a prompt anchored by a training wording or a colour name, and the
    prompt is rewritten only when every attribute is read, none twice with different values, and at
    least one not from a training wording. A prompt in training words already is left as written; one
    the reader cannot place (no shape-world word at all, a colour named twice) goes to the LM unchanged.
"""

from __future__ import annotations

import colorsys
import json
import re
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import Optional

import torch
import torch.nn.functional as F

from .data.captions import canonical_caption, canonical_motion, fill_template, match_phrases, phrase_patterns, phrase_table
from .data.world import COLORS, COLORS_LIST, MOTIONS, SHAPES

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
    return phrase_table(("train",))


def _hsv(rgb: tuple[int, int, int]) -> tuple[float, float, float]:
    h, s, v = colorsys.rgb_to_hsv(*(x / 255 for x in rgb))
    return h * 360, s, v


def world_colour(rgb: tuple[int, int, int]) -> Optional[str]:
    """The world colour an RGB value names: white for pale bright values, none for greys and near-black,
    else the chromatic world colour of the nearest hue."""
    hue, sat, val = _hsv(rgb)
    if val < 0.15:
        return None
    if sat < 0.25:
        return "white" if val >= 0.75 else None
    hues = {c: _hsv(v)[0] for c, v in COLORS.items() if c != "white"}
    return min(hues, key=lambda c: min(abs(hue - hues[c]), 360 - abs(hue - hues[c])))


@lru_cache(maxsize=1)
def colour_names() -> dict[str, str]:
    """xkcd colour survey name (hyphens as spaces) -> world colour, for the names that map to one."""
    table = json.loads((Path(__file__).parent / "data" / "colour_names.json").read_text())["colours"]
    out = {}
    for name, hexval in table.items():
        c = world_colour(tuple(int(hexval[i : i + 2], 16) for i in (1, 3, 5)))
        if c is not None:
            out[name.replace("-", " ")] = c
    return out


@dataclass(frozen=True)
class Reading:
    """What the reader made of a prompt: `values` maps attribute -> value, `how` maps it to how it was
    read ("wording": a training wording; "name": a colour name; "similarity") and `phrases` to the
    prompt's words it was read from, where that was not a training wording."""

    prompt: str
    values: dict[str, str] = field(default_factory=dict)
    how: dict[str, str] = field(default_factory=dict)
    phrases: dict[str, str] = field(default_factory=dict)
    conflicting: bool = False

    @property
    def complete(self) -> bool:
        return all(a in self.values for a in ATTRIBUTES)

    @property
    def rewritten(self) -> Optional[str]:
        """The training-style caption the LM gets instead of the prompt, or None (prompt used as written):
        every attribute read, one of them anchored (a training wording or a colour name), one not a
        training wording."""
        ways = [self.how.get(a) for a in ATTRIBUTES]
        anchored = "wording" in ways or "name" in ways
        if self.conflicting or not self.complete or not anchored or ways.count("wording") == 3:
            return None
        c, s, m = (self.values[a] for a in ATTRIBUTES)
        if "background" not in self.values:
            return canonical_caption(c, s, m)
        # a train template, filled as captions are (articles agree with the colour word)
        return fill_template("{a} {color} {shape} {motion} on a {bg} background", c, s, canonical_motion(m), "", self.values["background"])


class PromptReader:
    """read(prompt) -> Reading; rewrite(prompt) -> the text the LM should get. `encode` maps a list of
    texts to unit-norm sentence vectors (the TextEncoder's pooled output)."""

    def __init__(self, encode):
        self._encode = encode
        self.vocabulary = training_vocabulary()
        self._exact = phrase_patterns(self.vocabulary)
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
        words = [(m.group(), m.start(), m.end()) for m in _WORD.finditer(prompt.lower())]
        found: dict[str, set[str]] = {}
        used: set[int] = set()  # indices of words already read
        for start, end, attr, value in match_phrases(prompt, self._exact):
            found.setdefault(attr, set()).add(value)
            used |= {i for i, (_, a, b) in enumerate(words) if a >= start and b <= end}
        conflicting = any(len(v) > 1 for v in found.values())
        values = {a: next(iter(v)) for a, v in found.items() if len(v) == 1}
        how = {a: "wording" for a in values}
        phrases: dict[str, str] = {}
        if not conflicting and "color" not in found:
            named = self._colour_name(words, used)
            if named is not None:
                values["color"], phrases["color"] = named
                how["color"] = "name"
        missing = [a for a in ATTRIBUTES if a not in values]
        if missing and not conflicting and any(a in values for a in ATTRIBUTES):  # anchored: not a prompt from elsewhere
            for attr, (value, phrase) in self._similar(words, used, missing).items():
                values[attr], phrases[attr], how[attr] = value, phrase, "similarity"
        return Reading(prompt, values, how, phrases, conflicting)

    @staticmethod
    def _colour_name(words: list[tuple[str, int, int]], used: set[int]) -> Optional[tuple[str, str]]:
        """(world colour, phrase) for the longest xkcd colour name among the unused words, if any; its words
        are added to `used`."""
        names = colour_names()
        w = [x.replace("-", " ") for x, _, _ in words]
        for n in (3, 2, 1):
            for i in range(len(w) - n + 1):
                phrase = " ".join(w[i : i + n])
                if phrase in names and not used.intersection(range(i, i + n)):
                    used |= set(range(i, i + n))
                    return names[phrase], phrase
        return None

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
