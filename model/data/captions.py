"""Captions for the shape world: many wordings per attribute and many sentence shapes.

The text encoder is a frozen sentence embedder that does not bridge synonyms by itself, so zero-shot
wording has to come from caption variety: several words per colour / shape / motion, ~30 sentence
shapes, and negations for "still" (without them "not moving" reads as motion).

Two disjoint splits:
  "train"   wordings and templates used to caption training clips. Every canonical caption
            ("a red circle moving right", "a red circle staying still") is producible by this split.
  "heldout" other wordings and other sentence shapes, never used in training: the eval set's
            "unseen wordings" prompts. A held-out wording is never a whole-word part of any train
            wording or train template (it may *contain* a train word, e.g. "vivid red").

Motions have two grammatical forms: a participle/adjective phrase that follows a noun or "is"
("moving right", "not moving", "motionless") and a finite verb phrase ("moves right", "doesn't move").
Templates use {motion} / {motion_cap} for the first and {motion_v} for the second; {a} is an article
that agrees with the next word ("a"/"an"). The canonical caption is exactly
"a {color} {shape} moving {motion}" ("a orange ..." included, as specified), so the canonical template
keeps its literal "a" when it is filled with a canonical colour name and agrees otherwise.
"""

from __future__ import annotations

import re

import numpy as np

from model.data.world import BACKGROUNDS, COLORS, COLORS_LIST, HELD_OUT_COMBOS, MOTIONS, SHAPES, Scene, luma

SPLITS = ("train", "heldout")

# ---------------------------------------------------------------------------------------------- colours
# Hues kept honest: every wording clearly names the rendered hue (see world.COLORS).
COLOR_WORDS: dict[str, dict[str, tuple[str, ...]]] = {
    "train": {
        "red": ("red", "crimson", "scarlet", "bright red", "deep red", "cherry red", "ruby", "blood red"),
        "orange": ("orange", "bright orange", "deep orange", "tangerine", "pumpkin orange", "amber orange", "fiery orange"),
        "yellow": ("yellow", "bright yellow", "lemon", "lemon yellow", "golden yellow", "canary yellow", "sunflower yellow"),
        "green": ("green", "bright green", "emerald", "emerald green", "grass green", "leaf green", "kelly green"),
        "cyan": ("cyan", "bright cyan", "aqua", "turquoise", "aquamarine", "electric cyan", "deep cyan"),
        "blue": ("blue", "bright blue", "deep blue", "royal blue", "cobalt", "cobalt blue", "sapphire", "ultramarine"),
        "purple": ("purple", "bright purple", "deep purple", "violet", "grape purple", "amethyst", "bright violet"),
        "white": ("white", "bright white", "snow white", "snowy white", "milky white", "ivory"),
    },
    "heldout": {
        "red": ("vivid red", "pure red", "tomato red", "carmine", "signal red"),
        "orange": ("vivid orange", "pure orange", "carrot orange", "safety orange"),
        "yellow": ("vivid yellow", "pure yellow", "banana yellow", "daffodil yellow"),
        "green": ("vivid green", "pure green", "lime green", "shamrock green", "clover green"),
        "cyan": ("vivid cyan", "pure cyan", "glowing cyan", "bright turquoise"),
        "blue": ("vivid blue", "pure blue", "electric blue", "sapphire blue"),
        "purple": ("vivid purple", "pure purple", "royal purple", "pure violet"),
        "white": ("pure white", "chalk white", "paper white", "pearl white"),
    },
}

# ----------------------------------------------------------------------------------------------- shapes
SHAPE_WORDS: dict[str, dict[str, tuple[str, ...]]] = {
    "train": {
        "circle": ("circle", "disc", "disk", "dot", "ball", "round shape", "round blob", "orb"),
        "square": ("square", "box", "block", "tile", "square shape", "four-sided shape", "boxy shape"),
        "triangle": ("triangle", "three-sided shape", "wedge", "pyramid shape", "triangular shape", "arrowhead"),
    },
    "heldout": {
        "circle": ("circular shape", "round spot", "sphere", "coin shape"),
        "square": ("square tile", "rectangle", "squarish shape", "four-cornered shape"),
        "triangle": ("three-cornered shape", "delta shape", "triangular piece", "tent shape"),
    },
}

# ---------------------------------------------------------------------------------------------- motions
# Participle / adjective phrases: follow a noun ("a red circle moving right") or "is" ("... is motionless").
MOTION_WORDS: dict[str, dict[str, tuple[str, ...]]] = {
    "train": {
        "left": ("moving left", "moving to the left", "sliding left", "drifting leftward", "travelling from right to left",
                 "heading west", "gliding to the left", "going left", "moving leftward", "shifting left"),
        "right": ("moving right", "moving to the right", "sliding right", "drifting rightward", "travelling from left to right",
                  "heading east", "gliding to the right", "going right", "moving rightward", "shifting right"),
        "up": ("moving up", "moving upward", "rising", "going up", "floating up", "climbing", "drifting upward",
               "travelling from bottom to top", "heading north", "ascending"),
        "down": ("moving down", "moving downward", "falling", "going down", "sinking", "dropping", "drifting downward",
                 "travelling from top to bottom", "heading south", "descending"),
        "still": ("staying still", "not moving", "motionless", "stationary", "resting in place", "sitting still",
                  "standing still", "at rest", "remaining in place", "not going anywhere", "staying put", "holding still"),
    },
    "heldout": {
        "left": ("edging toward the left", "creeping leftwards", "making its way left", "sailing off to the left",
                 "crossing from right to left"),
        "right": ("edging toward the right", "creeping rightwards", "making its way right", "sailing off to the right",
                  "crossing from left to right"),
        "up": ("edging toward the top", "creeping upwards", "making its way up", "soaring upwards", "lifting off"),
        "down": ("edging toward the bottom", "creeping downwards", "making its way down", "plummeting", "tumbling down"),
        "still": ("holding perfectly still", "frozen in place", "not budging", "unmoving", "keeping its place",
                  "never leaving its spot"),
    },
}
# Finite verb phrases: "the red circle moves right", "... doesn't move".
MOTION_VERBS: dict[str, dict[str, tuple[str, ...]]] = {
    "train": {
        "left": ("moves left", "moves to the left", "slides left", "drifts leftward", "travels from right to left",
                 "heads west", "glides to the left", "goes left"),
        "right": ("moves right", "moves to the right", "slides right", "drifts rightward", "travels from left to right",
                  "heads east", "glides to the right", "goes right"),
        "up": ("moves up", "moves upward", "rises", "goes up", "floats up", "climbs", "drifts upward",
               "travels from bottom to top", "heads north", "ascends"),
        "down": ("moves down", "moves downward", "falls", "goes down", "sinks", "drops", "drifts downward",
                 "travels from top to bottom", "heads south", "descends"),
        "still": ("stays still", "doesn't move", "does not move", "isn't moving", "never moves", "stays put",
                  "remains in place", "rests in place", "sits still", "stands still", "holds still"),
    },
    "heldout": {
        "left": ("edges toward the left", "creeps leftwards", "makes its way left", "sails off to the left",
                 "crosses from right to left"),
        "right": ("edges toward the right", "creeps rightwards", "makes its way right", "sails off to the right",
                  "crosses from left to right"),
        "up": ("edges toward the top", "creeps upwards", "makes its way up", "soars upwards", "lifts off"),
        "down": ("edges toward the bottom", "creeps downwards", "makes its way down", "plummets", "tumbles down"),
        "still": ("holds perfectly still", "stays frozen in place", "does not budge", "won't budge",
                  "keeps its place", "never leaves its spot"),
    },
}

# Background wordings (not an attribute that is scored; kept apart from every colour wording).
BACKGROUND_WORDS: dict[str, tuple[str, ...]] = {
    "black": ("black",),
    "dark gray": ("dark gray", "dark grey"),
    "light gray": ("light gray", "light grey"),
}

# -------------------------------------------------------------------------------------------- templates
CANONICAL_TEMPLATE = "a {color} {shape} {motion}"
TEMPLATES: dict[str, tuple[str, ...]] = {
    "train": (
        CANONICAL_TEMPLATE,
        "{a} {color} {shape} {motion}",
        "{color} {shape} {motion}",
        "{a} {color} {shape} {motion} on a {bg} background",
        "{a} {color} {shape} {motion} against a {bg} backdrop",
        "{motion_cap}: {a} {color} {shape}",
        "video of {a} {shape} in {color}, {motion}",
        "there is {a} {color} {shape} that is {motion}",
        "the {color} {shape} {motion_v}",
        "{a} {color} {shape} {motion_v}.",
        "{color} {shape}, {motion}",
        "{shape}, {color}, {motion}",
        "{a} {shape} colored {color} {motion}",
        "a clip of {a} {color} {shape} {motion}",
        "footage showing {a} {color} {shape} {motion}",
        "{a} {color} {shape} is {motion}",
        "in this video, {a} {color} {shape} {motion_v}",
        "{a} {shape} of {color} colour, {motion}",
        "a single {color} {shape} {motion} on a {bg} background",
        "{a} {color} {shape}. it {motion_v}.",
        "animation: {color} {shape}, {motion}",
        "one {color} {shape} {motion} over a plain {bg} background",
        "{a} {color}-colored {shape} {motion}",
        "the {shape} is {color} and it {motion_v}",
        "{a} {color} {shape} on a {bg} background, {motion}",
        "a {bg} background with {a} {color} {shape} {motion}",
    ),
    "heldout": (
        "we see {a} {color} {shape} {motion}",
        "what you see is {a} {color} {shape} which {motion_v}",
        "{color} is the colour of the {shape}, which {motion_v}",
        "look: {a} {shape} painted {color}, and it is {motion}",
        "{a} {shape} {motion}; its colour: {color}",
        "picture {a} {color} {shape} {motion} in front of a {bg} wall",
        "my video shows {a} {shape}, its colour {color}, {motion}",
        "here comes {a} {color} {shape} that {motion_v}",
    ),
}

CANONICAL_WORD_P = 0.3  # train split: chance of using the canonical word for each attribute
CANONICAL_TEMPLATE_P = 0.1  # train split: extra chance of the canonical sentence shape (README prompts)


# ------------------------------------------------------------------------------------------- composing
def canonical_caption(color: str, shape: str, motion: str) -> str:
    """Exactly "a {color} {shape} moving {motion}", or "a {color} {shape} staying still"."""
    if color not in COLORS or shape not in SHAPES or motion not in MOTIONS:
        raise ValueError(f"unknown attributes {(color, shape, motion)}")
    m = "staying still" if motion == "still" else f"moving {motion}"
    return f"a {color} {shape} {m}"


def canonical_motion(motion: str) -> str:
    return "staying still" if motion == "still" else f"moving {motion}"


_ARTICLE = "\x01"


def _fix_articles(text: str) -> str:
    return re.sub(_ARTICLE + r"(\s+)(\w)", lambda m: ("an" if m.group(2) in "aeiou" else "a") + m.group(1) + m.group(2), text)


def fill_template(template: str, color_w: str, shape_w: str, motion_w: str, motion_v: str, bg_w: str) -> str:
    text = template.format(a=_ARTICLE, color=color_w, shape=shape_w, motion=motion_w, motion_cap=motion_w[:1].upper() + motion_w[1:],
                           motion_v=motion_v, bg=bg_w)
    return _fix_articles(text)


def _pick(options: tuple[str, ...], canonical: str | None, rng: np.random.Generator, split: str) -> str:
    if split == "train" and canonical is not None and rng.random() < CANONICAL_WORD_P:
        return canonical
    return options[int(rng.integers(len(options)))]


def compose(color: str, shape: str, motion: str, background: str, rng: np.random.Generator, split: str = "train") -> str:
    """A caption for these attributes with a template and wordings drawn from `split`."""
    if split not in SPLITS:
        raise ValueError(f"split must be one of {SPLITS}, got {split!r}")
    templates = TEMPLATES[split]
    if split == "train" and rng.random() < CANONICAL_TEMPLATE_P:
        template = CANONICAL_TEMPLATE
    else:
        template = templates[int(rng.integers(len(templates)))]
    color_w = _pick(COLOR_WORDS[split][color], color, rng, split)
    shape_w = _pick(SHAPE_WORDS[split][shape], shape, rng, split)
    motion_w = _pick(MOTION_WORDS[split][motion], canonical_motion(motion), rng, split)
    motion_v = _pick(MOTION_VERBS[split][motion], None, rng, split)
    bg_words = BACKGROUND_WORDS[background]
    bg_w = bg_words[int(rng.integers(len(bg_words)))]
    if template == CANONICAL_TEMPLATE and color_w != color:
        template = "{a}" + template[1:]  # the literal "a" is kept only for the canonical colour names
    return fill_template(template, color_w, shape_w, motion_w, motion_v, bg_w)


def caption(scene: Scene, rng: np.random.Generator, split: str = "train") -> str:
    """A caption of `scene` drawn from `split` ("train" or "heldout"); deterministic given the rng state."""
    return compose(scene.color, scene.shape, scene.motion, scene.background, rng, split)


# --------------------------------------------------------------------------------------------- parsing
def phrase_table(splits: tuple[str, ...] = SPLITS) -> list[tuple[str, str, str]]:
    """(phrase, attribute, canonical value) for every wording of these splits, and the backgrounds' names."""
    rows: set[tuple[str, str, str]] = set()
    for split in splits:
        for c, words in COLOR_WORDS[split].items():
            rows |= {(w, "color", c) for w in words}
        for s, words in SHAPE_WORDS[split].items():
            rows |= {(w, "shape", s) for w in words}
        for m in MOTIONS:
            rows |= {(w, "motion", m) for w in MOTION_WORDS[split][m] + MOTION_VERBS[split][m]}
    for b, words in BACKGROUND_WORDS.items():
        rows |= {(w, "background", b) for w in words}
    return sorted(rows)


def phrase_patterns(rows) -> list[tuple[re.Pattern, str, str]]:
    """Whole-word patterns for (phrase, attribute, value) rows, longest phrase first (for match_phrases)."""
    ordered = sorted(rows, key=lambda r: (-len(r[0]), r))
    return [(re.compile(r"(?<!\w)" + re.escape(p) + r"(?!\w)"), attr, value) for p, attr, value in ordered]


_PHRASES = phrase_table()
_PHRASE_RE = phrase_patterns(_PHRASES)


def match_phrases(text: str, patterns: list[tuple[re.Pattern, str, str]]) -> list[tuple[int, int, str, str]]:
    """Non-overlapping matches of `patterns` in `text` (lower-cased), longest phrase wins: (start, end, attr, value)."""
    text = text.lower()
    taken = np.zeros(len(text) + 1, dtype=bool)
    found = []
    for rx, attr, value in patterns:
        for m in rx.finditer(text):
            if not taken[m.start() : m.end()].any():
                taken[m.start() : m.end()] = True
                found.append((m.start(), m.end(), attr, value))
    return sorted(found)


def _matches(text: str) -> list[tuple[int, int, str, str]]:
    """Matches of every wording of both splits (the analyser's lexicon)."""
    return match_phrases(text, _PHRASE_RE)


def parse_attributes(text: str) -> tuple[str | None, str | None, str | None]:
    """(color, shape, motion) named in `text`, mapped to canonical values; None where absent or contradictory.

    Matches every wording of both splits (longest phrase first, whole words only), so
    "travelling from left to right" reads right and "dark gray background" is not a colour.
    """
    values: dict[str, set[str]] = {"color": set(), "shape": set(), "motion": set(), "background": set()}
    for _, _, attr, value in _matches(text):
        values[attr].add(value)

    def one(attr: str) -> str | None:
        v = values[attr]
        return next(iter(v)) if len(v) == 1 else None

    return one("color"), one("shape"), one("motion")


# ------------------------------------------------------------------------------------------ eval prompts
def _valid_backgrounds(color: str) -> list[str]:
    return [b for b, rgb in BACKGROUNDS.items() if abs(luma(rgb) - luma(COLORS[color])) >= 50]


def all_combos() -> list[tuple[str, str, str]]:
    return [(c, s, m) for c in COLORS_LIST for s in SHAPES for m in MOTIONS]


def eval_prompts(kind: str) -> list[tuple[str, str, str, str]]:
    """Deterministic eval prompts as (prompt, color, shape, motion).

    "heldout_combos":  each of the 12 HELD_OUT_COMBOS as its canonical caption plus 2 other train-split
                       captions (36 prompts): attribute recombination with in-distribution wording.
    "unseen_wordings": 40 prompts over combos seen in training, written only with held-out templates
                       and held-out wordings; each colour x motion pair appears once.
    "canonical":       the canonical caption of all 120 combos.
    """
    if kind == "canonical":
        return [(canonical_caption(c, s, m), c, s, m) for c, s, m in all_combos()]
    if kind == "heldout_combos":
        rng = np.random.default_rng(20240601)
        out = []
        for c, s, m in sorted(HELD_OUT_COMBOS):
            bgs = _valid_backgrounds(c)
            seen = {canonical_caption(c, s, m)}
            out.append((canonical_caption(c, s, m), c, s, m))
            while len(seen) < 3:
                p = compose(c, s, m, bgs[int(rng.integers(len(bgs)))], rng, "train")
                if p not in seen:
                    seen.add(p)
                    out.append((p, c, s, m))
        return out
    if kind == "unseen_wordings":
        rng = np.random.default_rng(20240602)
        # Cycle through shuffled held-out wordings/templates so every one is used.
        def cycler(options):
            options = list(options)
            order = [options[i] for i in rng.permutation(len(options))]
            i = 0
            while True:
                yield order[i % len(order)]
                i += 1

        templates = cycler(TEMPLATES["heldout"])
        colors = {c: cycler(COLOR_WORDS["heldout"][c]) for c in COLORS_LIST}
        shapes = {s: cycler(SHAPE_WORDS["heldout"][s]) for s in SHAPES}
        motions = {m: cycler(MOTION_WORDS["heldout"][m]) for m in MOTIONS}
        verbs = {m: cycler(MOTION_VERBS["heldout"][m]) for m in MOTIONS}
        out = []
        for i in range(40):  # (i % 8, i % 5) runs over all 40 colour x motion pairs (CRT)
            c, m = COLORS_LIST[i % 8], MOTIONS[i % 5]
            s = SHAPES[i % 3]
            while (c, s, m) in HELD_OUT_COMBOS:
                s = SHAPES[(SHAPES.index(s) + 1) % 3]
            bgs = _valid_backgrounds(c)
            bg = BACKGROUND_WORDS[bgs[i % len(bgs)]][0]
            p = fill_template(next(templates), next(colors[c]), next(shapes[s]), next(motions[m]), next(verbs[m]), bg)
            out.append((p, c, s, m))
        return out
    raise ValueError(f"unknown eval prompt kind {kind!r} (heldout_combos, unseen_wordings, canonical)")


def all_wordings(split: str) -> set[str]:
    """Every colour, shape and motion wording of `split`."""
    out: set[str] = set()
    for d in (COLOR_WORDS, SHAPE_WORDS, MOTION_WORDS, MOTION_VERBS):
        for words in d[split].values():
            out |= set(words)
    return out
