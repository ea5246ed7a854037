from tests.test_cli import *  # noqa
def test_no_model_fixture_bites(micro, cwd, no_model):
    r = cli("generate", PROMPT, *M(micro), "--frames", "2")
    assert r.exit_code == 1 and "model was loaded" in r.stderr, r.stderr
