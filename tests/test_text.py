"""The lean MiniLM forward equals transformers' BertModel on the same packaged weights."""

import torch

from model.text import TextEncoder, model_dir

torch.set_num_threads(1)
TEXTS = ["a red circle moving right", "", "what you see is a pure violet sphere which makes its way left, slowly and surely on grey"]


def test_matches_transformers():
    from transformers import AutoModel, AutoTokenizer

    d = str(model_dir())
    tok, ref = AutoTokenizer.from_pretrained(d), AutoModel.from_pretrained(d).eval()
    b = tok(TEXTS, padding="max_length", truncation=True, max_length=16, return_tensors="pt")
    with torch.no_grad():
        want = ref(**b).last_hidden_state
    states, valid, pooled = TextEncoder(16).encode(TEXTS)
    assert torch.equal(valid, b["attention_mask"].bool())
    m = valid[..., None]
    assert torch.allclose(states * m, want * m, atol=1e-4)
    assert torch.allclose(pooled.norm(dim=-1), torch.ones(3), atol=1e-5)


def test_different_prompts_differ_and_same_prompt_repeats():
    enc = TextEncoder(16)
    a, _, pa = enc.encode(["a red circle moving right", "a blue square moving up"])
    b, _, pb = enc.encode(["a red circle moving right"])
    assert torch.equal(a[0], b[0]) and torch.equal(pa[0], pb[0])
    assert (pa[0] @ pa[1]) < 0.95
