import re

import numpy as np
import pytest

from model.data import captions as C
from model.data.world import COLORS, HELD_OUT_COMBOS, MOTIONS, SHAPES, sample_scene


def _contains_word(haystack: str, needle: str) -> bool:
    return re.search(r"(?<!\w)" + re.escape(needle) + r"(?!\w)", haystack) is not None


def _template_text(t: str) -> str:
    return re.sub(r"\{[a-z_]+\}", " | ", t)  # the fixed words of a template


def test_lexicons_cover_every_attribute_in_both_splits():
    for split in C.SPLITS:
        assert set(C.COLOR_WORDS[split]) == set(COLORS)
        assert set(C.SHAPE_WORDS[split]) == set(SHAPES)
        assert set(C.MOTION_WORDS[split]) == set(MOTIONS) == set(C.MOTION_VERBS[split])
        for d in (C.COLOR_WORDS, C.SHAPE_WORDS, C.MOTION_WORDS, C.MOTION_VERBS):
            assert all(len(words) >= 4 for words in d[split].values())
    assert len(C.TEMPLATES["train"]) >= 20
    assert len(C.TEMPLATES["heldout"]) >= 6
    # negations for "still" are part of training
    still = C.MOTION_WORDS["train"]["still"] + C.MOTION_VERBS["train"]["still"]
    assert sum(("not" in w or "n't" in w or "never" in w) for w in still) >= 4


def test_splits_are_disjoint():
    train, held = C.all_wordings("train"), C.all_wordings("heldout")
    assert not train & held
    # a held-out wording is never a whole-word part of a train wording or of a train template's fixed text
    train_text = list(train) + [_template_text(t) for t in C.TEMPLATES["train"]]
    for w in held:
        hits = [t for t in train_text if _contains_word(t, w)]
        assert not hits, (w, hits)
    # no held-out sentence shape is a train sentence shape (also ignoring articles / punctuation)
    norm = lambda t: re.sub(r"[^a-z{}_ ]", "", t.replace("{a}", "a")).split()
    assert not {tuple(norm(t)) for t in C.TEMPLATES["heldout"]} & {tuple(norm(t)) for t in C.TEMPLATES["train"]}


def test_no_wording_maps_to_two_values():
    seen: dict[str, tuple[str, str]] = {}
    for phrase, attr, value in C._PHRASES:
        assert seen.setdefault(phrase, (attr, value)) == (attr, value), phrase


def test_every_wording_parses_back_alone():
    for split in C.SPLITS:
        for c, words in C.COLOR_WORDS[split].items():
            for w in words:
                assert C.parse_attributes(f"a {w} thing")[0] == c, w
        for s, words in C.SHAPE_WORDS[split].items():
            for w in words:
                assert C.parse_attributes(f"a {w}")[1] == s, w
        for m in MOTIONS:
            for w in C.MOTION_WORDS[split][m] + C.MOTION_VERBS[split][m]:
                assert C.parse_attributes(f"it is {w}")[2] == m, w


def test_parse_examples_and_ambiguity():
    assert C.parse_attributes("A crimson ball travelling from left to right") == ("red", "circle", "right")
    assert C.parse_attributes("the cyan block doesn't move, on a dark gray background") == ("cyan", "square", "still")
    assert C.parse_attributes("a dot on a light gray backdrop") == (None, "circle", None)
    assert C.parse_attributes("a red and blue circle") == (None, "circle", None)  # contradictory colour
    assert C.parse_attributes("hello world") == (None, None, None)


@pytest.mark.parametrize("split", C.SPLITS)
def test_captions_parse_back_for_random_scenes(split):
    rng_s, rng_c = np.random.default_rng(1), np.random.default_rng(2)
    used_templates = set()
    for _ in range(2000):
        scene = sample_scene(rng_s, allow_held_out=True)
        text = C.caption(scene, rng_c, split)
        assert C.parse_attributes(text) == (scene.color, scene.shape, scene.motion), (text, scene)
        assert "\x01" not in text and "{" not in text
        if re.search(r"\ba [aeiou]", text):  # articles agree, except "a orange ..." of the canonical form
            assert text.startswith(f"a {scene.color} ") and text.count(" a ") == 0, text
        used_templates.add(text)
    assert len(used_templates) > 1500  # varied


def test_split_wordings_stay_in_their_split():
    rng_s, rng_c = np.random.default_rng(3), np.random.default_rng(4)
    train, held = C.all_wordings("train"), C.all_wordings("heldout")
    for _ in range(300):
        scene = sample_scene(rng_s)
        t = C.caption(scene, rng_c, "train")
        h = C.caption(scene, rng_c, "heldout")
        assert not any(_contains_word(t.lower(), w) for w in held), t
        t_phrases = {t.lower()[a:b] for a, b, attr, _ in C._matches(t) if attr != "background"}
        h_phrases = {h.lower()[a:b] for a, b, attr, _ in C._matches(h) if attr != "background"}
        assert len(t_phrases) == 3 and t_phrases <= train, (t, t_phrases - train)
        assert len(h_phrases) == 3 and h_phrases <= held, (h, h_phrases - held)


def test_determinism():
    scene = sample_scene(np.random.default_rng(0))
    a = [C.caption(scene, np.random.default_rng(7), s) for s in C.SPLITS]
    b = [C.caption(scene, np.random.default_rng(7), s) for s in C.SPLITS]
    assert a == b
    rng = np.random.default_rng(7)
    many = {C.caption(scene, rng) for _ in range(50)}
    assert len(many) > 10


def test_canonical_caption_and_train_producible():
    assert C.canonical_caption("red", "circle", "right") == "a red circle moving right"
    assert C.canonical_caption("blue", "square", "still") == "a blue square staying still"
    with pytest.raises(ValueError):
        C.canonical_caption("pink", "circle", "right")
    # the canonical caption is producible by the train split: canonical template + canonical words
    assert C.CANONICAL_TEMPLATE in C.TEMPLATES["train"]
    for c, s, m in C.all_combos():
        assert c in C.COLOR_WORDS["train"][c] and s in C.SHAPE_WORDS["train"][s]
        assert C.canonical_caption(c, s, m).split(f"{c} {s} ", 1)[1] in C.MOTION_WORDS["train"][m]
    # ...and actually produced by sampling
    rng = np.random.default_rng(5)
    scene = sample_scene(np.random.default_rng(6), color="orange", shape="triangle", motion="still")
    produced = [C.caption(scene, rng) for _ in range(3000)]
    assert produced.count(C.canonical_caption("orange", "triangle", "still")) >= 3


def test_eval_prompts():
    canon = C.eval_prompts("canonical")
    assert len(canon) == 120 and len({p for p, *_ in canon}) == 120
    assert all(p == C.canonical_caption(c, s, m) for p, c, s, m in canon)

    hc = C.eval_prompts("heldout_combos")
    assert len(hc) == 36 and len({p for p, *_ in hc}) == 36
    assert {(c, s, m) for _, c, s, m in hc} == set(HELD_OUT_COMBOS)
    held = C.all_wordings("heldout")
    for p, c, s, m in hc:
        assert C.parse_attributes(p) == (c, s, m), p
        assert not any(_contains_word(p, w) for w in held), p
    for combo in HELD_OUT_COMBOS:
        assert C.canonical_caption(*combo) in {p for p, *_ in hc}

    uw = C.eval_prompts("unseen_wordings")
    assert len(uw) == 40 and len({p for p, *_ in uw}) == 40
    assert not {(c, s, m) for _, c, s, m in uw} & set(HELD_OUT_COMBOS)
    assert len({(c, m) for _, c, _, m in uw}) == 40
    for p, c, s, m in uw:
        assert C.parse_attributes(p) == (c, s, m), p
        phrases = {p.lower()[a:b] for a, b, attr, _ in C._matches(p) if attr != "background"}
        assert phrases <= held and len(phrases) >= 3, (p, phrases)
    # every held-out template is used
    for t in C.TEMPLATES["heldout"]:
        fixed = [w for w in re.sub(r"\{[a-z_]+\}", " ", t).split() if w.isalpha() and len(w) > 3]
        assert any(all(f in p for f in fixed) for p, *_ in uw), t

    assert C.eval_prompts("canonical") == canon and C.eval_prompts("unseen_wordings") == uw  # deterministic
    with pytest.raises(ValueError):
        C.eval_prompts("nope")
