"""The prompt reader (model.prompt_reader): it knows the train split's words only, leaves prompts in
training words as written, reads new wordings by sentence similarity — checked on a vocabulary that is
in neither caption split, so neither the eval's held-out words nor the training words test it — and
leaves alone what it cannot place."""

import json

import numpy as np
import pytest

from cli_helpers import M, cli, ok
from model.data import captions as C
from model.data.world import BACKGROUNDS, COLORS, COLORS_LIST, MOTIONS, SHAPES
from model.prompt_reader import PromptReader, training_vocabulary

# New wordings, in neither split of model.data.captions (checked below).
DEV_COLORS = {
    "red": ("strawberry", "brick red", "rust red"), "orange": ("apricot", "mandarin orange", "burnt orange"),
    "yellow": ("mustard", "gold", "butter yellow"), "green": ("jade", "forest green", "mint"),
    "cyan": ("teal", "sky cyan", "pale cyan"), "blue": ("navy", "azure", "navy blue"),
    "purple": ("lavender", "lilac", "plum"), "white": ("cream", "off-white", "frost white"),
}  # fmt: skip
DEV_SHAPES = {"circle": ("round token", "bubble", "ring"), "square": ("cube", "squared slab", "checker tile"),
              "triangle": ("cone", "pyramid", "triangular sign")}  # fmt: skip
DEV_MOTIONS = {
    "left": ("advancing left", "rolling leftward", "veering to the left"),
    "right": ("advancing right", "rolling rightward", "veering to the right"),
    "up": ("flying upward", "going skyward", "shooting upward"),
    "down": ("diving downward", "dropping toward the floor", "sliding downhill"),
    "still": ("stuck in place", "immobile", "not stirring"),
}
DEV_TEMPLATES = ("{a} {color} {shape} {motion}", "an animation of {a} {shape}, {color}, {motion}", "show me {a} {color} {shape} {motion}")


def dev_prompts(n: int = 60, seed: int = 0) -> list[tuple[str, str, str, str]]:
    """Prompts with one attribute in a new wording and the other two in training words (the case the
    reader is for: a user's own word for one thing), or all three new."""
    rng = np.random.default_rng(seed)
    out = []
    for i in range(n):
        c, s, m = COLORS_LIST[rng.integers(8)], SHAPES[rng.integers(3)], MOTIONS[rng.integers(5)]
        words = {"color": c, "shape": s, "motion": C.canonical_caption(c, s, m).split(f"{s} ", 1)[1]}
        new = {"color": DEV_COLORS[c], "shape": DEV_SHAPES[s], "motion": DEV_MOTIONS[m]}
        for attr in (("color", "shape", "motion") if i % 4 == 3 else (("color", "shape", "motion")[i % 3],)):
            words[attr] = new[attr][int(rng.integers(3))]
        t = DEV_TEMPLATES[int(rng.integers(len(DEV_TEMPLATES)))]
        out.append((C.fill_template(t, words["color"], words["shape"], words["motion"], words["motion"], "black"), c, s, m))
    return out


@pytest.fixture(scope="module")
def reader():
    from model.text import shared_text_encoder

    enc = shared_text_encoder(16)
    return PromptReader(lambda texts: enc.encode(list(texts))[2])


def test_knows_the_training_words_and_no_held_out_word():
    known = {w for w, _, _ in training_vocabulary()}
    assert C.all_wordings("train") <= known
    assert not known & C.all_wordings("heldout")
    dev = {w for d in (DEV_COLORS, DEV_SHAPES, DEV_MOTIONS) for ws in d.values() for w in ws}
    assert not dev & (known | C.all_wordings("heldout"))


def test_training_captions_are_read_and_left_as_written(reader):
    rng = np.random.default_rng(1)
    for _ in range(150):
        c, s, m = COLORS_LIST[rng.integers(8)], SHAPES[rng.integers(3)], MOTIONS[rng.integers(5)]
        p = C.compose(c, s, m, list(BACKGROUNDS)[rng.integers(3)], rng, "train")
        r = reader.read(p)
        assert (r.values.get("color"), r.values.get("shape"), r.values.get("motion")) == (c, s, m), p
        assert not r.phrases and reader.rewrite(p) == p


def test_new_wordings_are_read_by_colour_name_and_similarity(reader):
    right, rewritten, rewrites_right = 0, 0, 0
    for p, c, s, m in dev_prompts():
        r = reader.read(p)
        right += (r.values.get("color"), r.values.get("shape"), r.values.get("motion")) == (c, s, m)
        if (got := reader.rewrite(p)) != p:
            rewritten += 1
            assert C.parse_attributes(got) == (r.values["color"], r.values["shape"], r.values["motion"])
            rewrites_right += C.parse_attributes(got) == (c, s, m)
    # measured when written: 49 of 60 read right, 44 rewritten, 39 of them right (a guess: 1 in 120);
    # misses: "cube" nearest the circles, "immobile" / "not stirring" under the similarity floor,
    # "jade" and "azure" (xkcd: blue-green, sky blue) mapped to the neighbouring hue
    assert right >= 44 and rewritten >= 38 and rewrites_right >= 0.8 * rewritten, (right, rewritten, rewrites_right)


def test_colour_names_map_by_hue():
    from model.prompt_reader import colour_names, world_colour

    names = colour_names()
    assert (names["mint"], names["plum"], names["teal"], names["navy"], names["cream"], names["carmine"]) == \
        ("green", "purple", "cyan", "blue", "white", "red")  # fmt: skip
    assert world_colour((128, 128, 128)) is None and world_colour((5, 5, 5)) is None  # greys are backgrounds
    assert all(world_colour(rgb) == c for c, rgb in COLORS.items())


@pytest.mark.parametrize("prompt", ["a dog running in the park", "sunset over the sea", "a red circle", "🎉🎉", "一个红色的圆圈",
                                    "a red and blue circle lifting off", "a red circle moving right"])  # fmt: skip
def test_what_it_cannot_place_or_need_not_change_is_left_alone(reader, prompt):
    assert reader.rewrite(prompt) == prompt


def test_rewrite_keeps_a_named_background_and_the_article(reader):
    assert reader.rewrite("an orange disc plummeting on a dark grey background") == \
        "an orange circle moving down on a dark gray background"  # fmt: skip
    assert reader.rewrite("a crimson tent shape staying still") == "a red triangle staying still"


def test_pipeline_reads_prompts_only_when_asked_or_shipped(monkeypatch):
    from model.pipeline import VideoPoet

    vp = VideoPoet.random("tiny")
    assert not vp.shipped_weights and not vp.reads_prompts()
    assert vp.prompt_for_lm("a red disc lifting off") == "a red disc lifting off"
    seen = []
    real = vp.encode_text
    monkeypatch.setattr(vp, "encode_text", lambda prompts: seen.extend(prompts) or real(prompts))
    vp.generate("a red disc lifting off", frames=1, read_prompt=True, guidance=1.0)
    assert seen[0] == "a red circle moving up"
    seen.clear()
    vp.generate("a red disc lifting off", frames=1, guidance=1.0)
    assert seen[0] == "a red disc lifting off"


def test_cli_records_what_the_model_read(micro, cwd):
    r = ok(cli("generate", "a red disc lifting off", *M(micro), "--read-prompt", "--json", "--frames", "1", "-o", "a.gif"))
    assert json.loads(r.stdout)["read_as"] == "a red circle moving up"
    assert 'read as "a red circle moving up"' in r.stderr
    info = ok(cli("info", "a.gif")).stdout
    assert "read_as:" in info and "--read-prompt" in info
    for flag in ("--literal", None):  # --literal, and the default for a checkpoint that is not the shipped one
        r = ok(cli("generate", "a red disc lifting off", *M(micro), *([flag] if flag else []), "--json", "--frames", "1",
                   "-o", "b.gif", "--overwrite"))  # fmt: skip
        assert "read_as" not in json.loads(r.stdout) and "read as" not in r.stderr

