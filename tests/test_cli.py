"""The `videopoet` command line: outputs (exact frame counts, fps, sizes), batches, pipes, and one-line errors.

Most tests run in-process with Typer's CliRunner on a "micro" preset (a 1-layer LM, 8/16-channel tokenizer)
with random weights; a few use random weights of the real tiny shape, and three run the installed
console script in a subprocess. Random weights make noise, which is all the mechanics need.
"""

import json
import os
import re
import resource
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from model import video_io as V
from cli_helpers import PROMPT, SLUG, M, assert_one_error, cli, ok, read_back, snapshot, write_clip, write_png


# ----------------------------------------------------------------------------- subprocess: the real entry points


def test_help_is_fast_and_does_not_import_torch():
    exe = Path(sys.executable).with_name("videopoet")
    subprocess.run([str(exe), "--help"], capture_output=True, timeout=60)  # warm the file cache
    # CPU seconds of the child, not wall time: the promise is about the work `--help` does, and wall time
    # also counts whatever else shares the cores (a training in the background doubled it).
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    r = subprocess.run([str(exe), "--help"], capture_output=True, text=True, timeout=60)
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    assert r.returncode == 0, r.stderr
    for word in ("generate", "animate", "extend", "stylize", "inpaint", "outpaint", "info", "presets"):
        assert word in r.stdout
    assert cpu < 1.5, f"videopoet --help took {cpu:.2f} CPU seconds"
    code = "import sys, videopoet_cli.main; bad = [m for m in ('torch', 'model.pipeline', 'cv2', 'imageio') if m in sys.modules]; assert not bad, bad"
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert r.returncode == 0, r.stderr


def test_python_dash_m_version():
    r = subprocess.run([sys.executable, "-m", "videopoet_cli", "--version"], capture_output=True, text=True, timeout=60)
    assert r.returncode == 0, r.stderr
    assert r.stdout.strip() == "videopoet 0.1.0"


def test_generate_subprocess_writes_a_file(micro, tmp_path):
    exe = Path(sys.executable).with_name("videopoet")
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    r = subprocess.run([str(exe), "generate", PROMPT, *M(micro), "--frames", "5"], cwd=tmp_path, env=env,
                       capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stderr
    assert r.stdout == ""  # human messages go to stderr
    assert f"wrote {SLUG}_seed0.mp4 (5 frames, 8 fps, 128x128" in r.stderr
    frames, fps = read_back(tmp_path / f"{SLUG}_seed0.mp4")
    assert frames.shape == (5, 128, 128, 3) and fps == 8


# ----------------------------------------------------------------------------- basics


def test_version_and_no_args():
    assert ok(cli("--version")).stdout.strip() == "videopoet 0.1.0"
    r = cli()
    assert "generate" in r.stdout and "Usage" in r.stdout


def test_command_help_has_examples():
    for cmd in ("generate", "animate", "extend", "stylize", "inpaint", "outpaint", "info"):
        out = ok(cli(cmd, "--help")).stdout
        assert "Examples" in out and f"videopoet {cmd}" in out
    assert "display upscale" in ok(cli("generate", "--help")).stdout


# ----------------------------------------------------------------------------- exact frames, fps and size (tiny shape)


@pytest.mark.parametrize("name", ["x.mp4", "x.gif"])
def test_tiny_shape_default_clip(tiny_ckpt, cwd, name):
    ok(cli("generate", PROMPT, "-o", name, "--checkpoint", tiny_ckpt, "-q"))
    frames, fps = read_back(cwd / name)
    assert frames.shape == (17, 128, 128, 3)
    assert fps == pytest.approx(8, abs=0.35)  # GIF stores whole centiseconds: 13 cs
    assert V.read_video(str(cwd / name))[1] == 8.0
    assert snapshot(cwd) == [name]  # no temp file left next to it


def test_tiny_shape_frames_fps_size(tiny_ckpt, cwd):
    ok(cli("generate", PROMPT, "-o", "x.mp4", "--checkpoint", tiny_ckpt, "--frames", "9", "--fps", "4", "--size", "64"))
    frames, fps = read_back(cwd / "x.mp4")
    assert frames.shape == (9, 64, 64, 3) and fps == 4


# ----------------------------------------------------------------------------- output mechanics (micro)


def test_png_folder_output(micro, cwd):
    r = ok(cli("generate", PROMPT, *M(micro), "-o", "frames", "--format", "png", "--frames", "6", "--size", "96"))
    names = sorted(os.listdir(cwd / "frames"))
    assert names == [f"frame_{i:04d}.png" for i in range(6)]
    frames, _ = read_back(cwd / "frames")
    assert frames.shape == (6, 96, 96, 3)
    assert "wrote frames (6 frames, 8 fps, 96x96" in r.stderr


def test_gif_to_stdout_and_nothing_else(micro, cwd):
    r = ok(cli("generate", PROMPT, *M(micro), "-o", "-", "--format", "gif", "--frames", "5"))
    data = r.stdout_bytes
    assert data[:6] == b"GIF89a" and data.endswith(b";")
    with Image.open(__import__("io").BytesIO(data)) as im:
        assert im.n_frames == 5 and im.size == (128, 128)
    assert "wrote stdout" in r.stderr
    assert snapshot(cwd) == []


def test_json_lines(micro, cwd):
    r = ok(cli("generate", PROMPT, *M(micro), "--json", "--frames", "5", "--seed", "3", "--top-k", "7"))
    lines = r.stdout.strip().splitlines()
    assert len(lines) == 1
    rec = json.loads(lines[0])
    keys = {"path", "prompt", "seed", "preset", "checkpoint", "checkpoint_hash", "frames", "fps", "width", "height",
            "seconds_taken", "sampling"}
    assert keys <= set(rec)
    assert rec["path"] == f"{SLUG}_seed3.mp4" and (cwd / rec["path"]).is_file()
    assert (rec["prompt"], rec["seed"], rec["preset"], rec["frames"], rec["fps"], rec["width"], rec["height"]) == (
        PROMPT, 3, "micro", 5, 8, 128, 128)
    assert rec["checkpoint"] == str(micro[1]) and re.fullmatch(r"[0-9a-f]{12}", rec["checkpoint_hash"])
    assert rec["sampling"] == {"temperature": 1.0, "top_k": 7, "top_p": 1.0, "guidance": 3.0, "decoding": "jacobi", "negative": "",
                             "edit_guidance": 3.0, "read_prompt": False}  # fmt: skip
    assert rec["seconds_taken"] > 0
    assert "wrote" not in r.stderr and "tokens" not in r.stderr  # no progress bar, no messages


def test_json_goes_to_stderr_when_video_goes_to_stdout(micro, cwd):
    r = ok(cli("generate", PROMPT, *M(micro), "--json", "-o", "-", "--format", "mp4", "--frames", "3"))
    assert r.stdout_bytes[4:8] == b"ftyp"
    rec = json.loads(r.stderr.strip().splitlines()[-1])
    assert rec["path"] == "-" and rec["frames"] == 3


def test_num_variations_have_consecutive_seeds_and_differ(micro, cwd):
    r = ok(cli("generate", PROMPT, *M(micro), "--num", "2", "--seed", "5", "-o", "out", "--format", "png", "--json", "--frames", "5"))
    recs = [json.loads(line) for line in r.stdout.splitlines()]
    assert [x["seed"] for x in recs] == [5, 6]
    assert [x["path"] for x in recs] == [os.path.join("out", "clip-1"), os.path.join("out", "clip-2")]
    a, _ = read_back(cwd / "out" / "clip-1")
    b, _ = read_back(cwd / "out" / "clip-2")
    assert a.shape == b.shape == (5, 128, 128, 3)
    assert not np.array_equal(a, b)


def test_output_folder_and_names_without_extension(micro, cwd):
    r = ok(cli("generate", "-", *M(micro), "-o", "out/", "--frames", "2", "--json", input="a blue square\na red circle\n"))
    names = ["a-blue-square_seed0.mp4", "a-red-circle_seed0.mp4"]
    assert [json.loads(x)["path"] for x in r.stdout.splitlines()] == [os.path.join("out", n) for n in names]
    assert snapshot(cwd / "out") == names
    ok(cli("generate", "a blue square", *M(micro), "-o", "out", "--frames", "2", "-q"))  # an existing folder: a new name in it
    assert "a-blue-square_seed0-2.mp4" in snapshot(cwd / "out")
    r = cli("generate", "x", *M(micro), "-o", "myclip", "--frames", "2")
    assert r.exit_code == 2 and "has no extension" in r.stderr and not (cwd / "myclip").exists()
    ok(cli("generate", "x", *M(micro), "-o", "myclip", "--format", "gif", "--frames", "2", "-q"))
    assert read_back_gif_bytes(cwd / "myclip") == 2


def read_back_gif_bytes(path):
    with Image.open(path) as im:
        assert im.format == "GIF"
        return im.n_frames


def test_numbered_files_for_several_clips(micro, cwd):
    ok(cli("generate", PROMPT, *M(micro), "--num", "2", "-o", "clip.gif", "--frames", "2", "-q"))
    assert snapshot(cwd) == ["clip-1.gif", "clip-2.gif"]


def test_same_seed_same_frames(micro, cwd):
    ok(cli("generate", PROMPT, *M(micro), "--seed", "11", "-o", "a", "--format", "png", "--frames", "5", "-q"))
    ok(cli("generate", PROMPT, *M(micro), "--seed", "11", "-o", "b", "--format", "png", "--frames", "5", "-q"))
    ok(cli("generate", PROMPT, *M(micro), "--seed", "12", "-o", "c", "--format", "png", "--frames", "5", "-q"))
    a, b, c = (read_back(cwd / n)[0] for n in "abc")
    assert np.array_equal(a, b)
    assert not np.array_equal(a, c)


def test_prompts_file(micro, cwd):
    (cwd / "prompts.txt").write_text("a blue square falling\n\n   \na green ball bouncing\n")
    r = ok(cli("generate", "--prompts-file", "prompts.txt", *M(micro), "--json", "--frames", "2"))
    recs = [json.loads(line) for line in r.stdout.splitlines()]
    assert [x["prompt"] for x in recs] == ["a blue square falling", "a green ball bouncing"]
    assert snapshot(cwd) == ["a-blue-square-falling_seed0.mp4", "a-green-ball-bouncing_seed0.mp4", "prompts.txt"]


def test_prompts_from_stdin(micro, cwd):
    ok(cli("generate", "-", *M(micro), "--frames", "2", "-q", input="one red dot\n\ntwo red dots\n"))
    assert snapshot(cwd) == ["one-red-dot_seed0.mp4", "two-red-dots_seed0.mp4"]


def test_default_names_do_not_collide(micro, cwd):
    ok(cli("generate", PROMPT, *M(micro), "--frames", "2", "-q"))
    ok(cli("generate", PROMPT, *M(micro), "--frames", "2", "-q"))
    ok(cli("generate", PROMPT, *M(micro), "--frames", "2", "-q", "--num", "2"))  # seeds 0 and 1
    assert snapshot(cwd) == [f"{SLUG}_seed0-{i}.mp4" for i in (2, 3)] + [f"{SLUG}_seed0.mp4", f"{SLUG}_seed1.mp4"]


def test_format_picks_the_default_name(micro, cwd):
    ok(cli("generate", PROMPT, *M(micro), "--frames", "2", "-q", "--format", "gif"))
    ok(cli("generate", PROMPT, *M(micro), "--frames", "2", "-q", "--format", "png"))
    n = f"{SLUG}_seed0"
    assert snapshot(cwd) == [n, f"{n}.gif", f"{n}/frame_0000.png", f"{n}/frame_0001.png"]
    assert read_back(cwd / f"{n}.gif")[0].shape == (2, 128, 128, 3)


def test_then_prompts_make_a_long_clip(micro, cwd):
    r = ok(cli("generate", PROMPT, *M(micro), "--seconds", "3", "--then", "it turns blue", "-o", "long.mp4", "--json"))
    rec = json.loads(r.stdout)
    assert rec["then"] == ["it turns blue"] and rec["frames"] == 25
    assert read_back(cwd / "long.mp4")[0].shape[0] == 25


# ----------------------------------------------------------------------------- animate / stylize / extend


def test_animate_png(micro, cwd):
    write_png(cwd / "a.png")
    r = ok(cli("animate", "a.png", "-p", "it moves", *M(micro), "--frames", "9", "--json"))
    rec = json.loads(r.stdout)
    assert rec["path"] == "a-it-moves_seed0.mp4" and rec["input"] == "a.png" and rec["command"] == "animate"
    frames, fps = read_back(cwd / "a-it-moves_seed0.mp4")
    assert frames.shape == (9, 128, 128, 3) and fps == 8


def test_stylize_keeps_the_input_duration(micro, cwd):
    write_clip(cwd / "in.mp4", T=20, H=80, W=100, fps=24)  # 0.83 s
    ok(cli("stylize", "in.mp4", "--style", "neon lines", *M(micro), "-o", "out.mp4", "-q"))
    frames, fps = read_back(cwd / "out.mp4")
    assert frames.shape == (round(20 / 24 * 8), 128, 128, 3) and fps == 8


def test_stylize_max_seconds_truncates_with_a_notice(micro, cwd):
    write_clip(cwd / "in.mp4", T=20, fps=24)
    r = ok(cli("stylize", "in.mp4", "--style", "neon", "--motion-only", "--max-seconds", "0.5", *M(micro), "-o", "o.gif"))
    assert "--max-seconds" in r.stderr and "note" in r.stderr
    assert read_back(cwd / "o.gif")[0].shape[0] == 4  # 0.5 s at 8 fps
    r = ok(cli("stylize", "in.mp4", "--style", "neon", "--max-seconds", "5", *M(micro), "-o", "p.gif"))
    assert "--max-seconds" not in r.stderr  # nothing was cut


def test_extend_adds_seconds(micro, cwd):
    write_clip(cwd / "in.mp4", T=17, H=64, W=64, fps=8)
    r = ok(cli("extend", "in.mp4", "-p", "it keeps going", "--seconds", "1", *M(micro), "-o", "out.mp4", "--json"))
    assert json.loads(r.stdout)["frames"] == 17 + 8
    frames, fps = read_back(cwd / "out.mp4")
    assert frames.shape == (25, 128, 128, 3) and fps == 8


def test_pipe_animate_into_stylize(micro, cwd):
    write_png(cwd / "a.png")
    r = ok(cli("animate", "a.png", "-p", "x", *M(micro), "-o", "-", "--format", "mp4", "-q"))
    assert r.stdout_bytes[4:8] == b"ftyp"
    ok(cli("stylize", "-", "--style", "y", *M(micro), "-o", "out.mp4", "-q", input=r.stdout_bytes))
    frames, fps = read_back(cwd / "out.mp4")
    assert frames.shape == (17, 128, 128, 3) and fps == 8


# ----------------------------------------------------------------------------- bad input: one line, right status, nothing written


@pytest.fixture
def no_model(monkeypatch):
    """Loading the model fails the test: validation must come first."""
    from model.pipeline import VideoPoet

    def refuse(*a, **k):
        raise AssertionError("the model was loaded before validation finished")

    monkeypatch.setattr(VideoPoet, "from_pretrained", classmethod(refuse))


BAD_GENERATE = [
    (["   "], "prompt is empty"),
    ([PROMPT, "-o", "x.avi"], "avi"),
    ([PROMPT, "-o", "nodir/x.mp4"], "does not exist"),
    ([PROMPT, "-o", "-"], "--format"),
    ([PROMPT, "--format", "webm"], "format"),
    ([PROMPT, "--frames", "0"], "--frames"),
    ([PROMPT, "--frames", "1202"], "--frames"),
    ([PROMPT, "--seconds", "0"], "--seconds"),
    ([PROMPT, "--seconds", "151"], "--seconds"),
    ([PROMPT, "--seconds", "2", "--frames", "9"], "mutually exclusive"),
    ([PROMPT, "--fps", "0"], "--fps"),
    ([PROMPT, "--fps", "121"], "--fps"),
    ([PROMPT, "--size", "15"], "--size"),
    ([PROMPT, "--size", "129"], "--size"),
    ([PROMPT, "--size", "4096"], "--size"),
    ([PROMPT, "--top-p", "0"], "--top-p"),
    ([PROMPT, "--top-p", "1.5"], "--top-p"),
    ([PROMPT, "--top-k", "-1"], "--top-k"),
    ([PROMPT, "--temperature", "0"], "--temperature"),
    ([PROMPT, "--cfg", "-1"], "--guidance/--cfg must be >= 0, got -1"),
    ([PROMPT, "--guidance", "nan"], "--guidance/--cfg must be >= 0, got nan"),
    ([PROMPT, "--num", "0"], "--num"),
    ([PROMPT, "--num", "65"], "--num"),
    ([PROMPT, "--seed", "-1"], "--seed"),
    ([PROMPT, "--then", " "], "--then"),
    ([PROMPT, "-o", "-", "--format", "gif", "--num", "2"], "stdout"),
    (["--prompts-file", "missing.txt"], "not found"),
    ([PROMPT, "--prompts-file", "missing.txt"], "not both"),
    ([], "PROMPT"),
]


@pytest.mark.parametrize("args,needle", BAD_GENERATE, ids=[" ".join(a)[:40] for a, _ in BAD_GENERATE])
def test_generate_usage_errors(micro, cwd, no_model, args, needle):
    before = snapshot(cwd)
    r = cli("generate", *args, *M(micro))
    assert_one_error(r, 2, needle)
    assert snapshot(cwd) == before


def test_unknown_preset(cwd, no_model):
    assert_one_error(cli("generate", PROMPT, "--preset", "nope"), 2, "unknown preset 'nope'")
    assert snapshot(cwd) == []


def test_blank_prompts_file(micro, cwd, no_model):
    (cwd / "p.txt").write_text("\n  \n")
    assert_one_error(cli("generate", "-f", "p.txt", *M(micro)), 2, "no prompts")
    assert_one_error(cli("generate", "-", *M(micro), input="\n"), 2, "no prompts")


@pytest.mark.parametrize("cmd", [["animate", "missing.png", "-p", "x"], ["extend", "missing.mp4", "-p", "x"],
                                 ["stylize", "missing.mp4", "--style", "x"]])
def test_missing_input_file(micro, cwd, no_model, cmd):
    assert_one_error(cli(*cmd, *M(micro)), 2, "not found", "missing.")
    assert snapshot(cwd) == []


def test_other_input_errors(micro, cwd, no_model):
    write_clip(cwd / "v.mp4", T=3, H=32, W=32, fps=8)
    (cwd / "junk.mp4").write_bytes(b"this is not a video at all" * 10)
    before = snapshot(cwd)
    assert_one_error(cli("animate", "v.mp4", "-p", "x", *M(micro)), 2, "video")  # a video is not an image
    assert_one_error(cli("stylize", "junk.mp4", "--style", "x", *M(micro)), 1, "junk.mp4")
    assert_one_error(cli("stylize", "v.mp4", "--style", "x", "--max-seconds", "0", *M(micro)), 2, "--max-seconds")
    assert_one_error(cli("extend", "v.mp4", "-p", "x", "--seconds", "0", *M(micro)), 2, "--seconds")
    assert_one_error(cli("animate", "v.mp4", "-p", " ", *M(micro)), 2, "prompt is empty")
    assert snapshot(cwd) == before


def test_existing_output_needs_overwrite(micro, cwd):
    (cwd / "x.gif").write_bytes(b"old")
    with_model = cli("generate", PROMPT, *M(micro), "-o", "x.gif", "--frames", "2")
    assert_one_error(with_model, 2, "--overwrite")
    assert (cwd / "x.gif").read_bytes() == b"old"
    ok(cli("generate", PROMPT, *M(micro), "-o", "x.gif", "--frames", "2", "--overwrite", "-q"))
    assert read_back(cwd / "x.gif")[0].shape[0] == 2
    assert snapshot(cwd) == ["x.gif"]


def test_existing_numbered_output_is_refused_before_any_work(micro, cwd):
    (cwd / "clip-2.mp4").write_bytes(b"old")
    assert_one_error(cli("generate", PROMPT, *M(micro), "-o", "clip.mp4", "--num", "2"), 2, "clip-2.mp4")
    assert snapshot(cwd) == ["clip-2.mp4"]


def test_pickle_checkpoint(micro, cwd, tmp_path_factory):
    import torch

    p = tmp_path_factory.mktemp("pickle") / "model.safetensors"
    torch.save({"a": torch.zeros(1)}, p)
    assert_one_error(cli("generate", PROMPT, "--checkpoint", p), 1, "pickle")
    assert snapshot(cwd) == []


def test_missing_checkpoint(cwd):
    assert_one_error(cli("generate", PROMPT, "--checkpoint", "nope.safetensors"), 1, "checkpoint", "nope.safetensors")


def test_checkpoint_of_another_shape(micro, cwd):
    r = cli("generate", PROMPT, "--preset", "tiny", "--checkpoint", micro[1])
    assert_one_error(r, 1, "mismatch")
    assert re.search(r"'(lm|tokenizer)\.[a-z_]+'", r.stderr), r.stderr  # names the config key
    assert snapshot(cwd) == []


def test_paper_preset_ships_no_weights(cwd):
    assert_one_error(cli("generate", PROMPT, "--preset", "paper"), 1, "ships no weights")


def test_bad_device(micro, cwd):
    assert_one_error(cli("generate", PROMPT, *M(micro), "--device", "warp-drive"), 2, "--device")


# ----------------------------------------------------------------------------- batches, interrupts, internal errors


def test_one_failing_prompt_does_not_stop_the_batch(micro, cwd, monkeypatch):
    from model.errors import VideoPoetError
    from model.pipeline import VideoPoet

    real = VideoPoet.generate

    def flaky(self, prompt, **kw):
        if prompt == "bad one":
            raise VideoPoetError("the sampler fell over")
        return real(self, prompt, **kw)

    monkeypatch.setattr(VideoPoet, "generate", flaky)
    (cwd / "p.txt").write_text("bad one\ngood one\n")
    r = cli("generate", "-f", "p.txt", *M(micro), "--frames", "2", "-q")
    assert r.exit_code == 1
    assert "the sampler fell over" in r.stderr and "1 of 2 clips failed" in r.stderr
    assert "Traceback" not in r.output
    assert snapshot(cwd) == ["good-one_seed0.mp4", "p.txt"]


def test_interrupt_exits_130(micro, cwd, monkeypatch):
    from model.pipeline import VideoPoet

    def stop(self, *a, **k):
        raise KeyboardInterrupt

    monkeypatch.setattr(VideoPoet, "generate", stop)
    r = cli("generate", PROMPT, *M(micro))
    assert r.exit_code == 130 and r.stderr.strip() == "interrupted"
    assert snapshot(cwd) == []


def test_internal_error_is_one_line_unless_debug(micro, cwd, monkeypatch):
    from model.pipeline import VideoPoet

    def boom(self, *a, **k):
        raise RuntimeError("boom")

    monkeypatch.setattr(VideoPoet, "generate", boom)
    r = cli("generate", PROMPT, *M(micro), env={"VIDEOPOET_DEBUG": None})
    assert_one_error(r, 1, "internal error: RuntimeError: boom")
    r = cli("generate", PROMPT, *M(micro), env={"VIDEOPOET_DEBUG": "1"})
    assert r.exit_code == 1 and "Traceback" in r.stderr
    assert snapshot(cwd) == []


# ----------------------------------------------------------------------------- presets


def test_presets_list():
    out = ok(cli("presets")).stdout
    assert re.search(r"(?m)^tiny\b", out) and re.search(r"(?m)^paper\b.*none shipped", out)


def test_presets_show():
    out = ok(cli("presets", "show", "tiny")).stdout
    assert "bits: 12" in out and "name: tiny" in out
    assert_one_error(cli("presets", "show", "nope"), 2, "unknown preset")


# ----------------------------------------------------------------------------- usage errors, races, read-only


def test_usage_errors_are_one_line(capsys):
    from videopoet_cli.main import main

    cases = [(["generate", "x", "--bogus"], "No such option: --bogus"), (["generate", "x", "--seed", "abc"], "--seed"),
             (["nosuch"], "No such command"), (["animate"], "Missing argument")]  # fmt: skip
    for argv, words in cases:
        with pytest.raises(SystemExit) as e:
            main(argv)
        err = capsys.readouterr().err
        assert e.value.code == 2, argv
        assert err.startswith("error: ") and err.count("\n") == 1 and words in err, err
    with pytest.raises(SystemExit) as e:
        main(["--version"])
    assert e.value.code == 0 and capsys.readouterr().out.strip() == "videopoet 0.1.0"


def test_completion_is_offered():
    assert "--install-completion" in ok(cli("--help")).stdout


def test_a_name_another_run_is_writing_is_refused_up_front(micro, cwd):
    holder = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    try:
        (cwd / ".clip.mp4.videopoet-lock").write_text(str(holder.pid))
        r = cli("generate", PROMPT, *M(micro), "-o", "clip.mp4", "--frames", "2")
        assert r.exit_code == 2 and "another videopoet process" in r.stderr
        (cwd / f".{SLUG}_seed0.mp4.videopoet-lock").write_text(str(holder.pid))
        r = ok(cli("generate", PROMPT, *M(micro), "--frames", "2", "--json"))
        assert json.loads(r.stdout)["path"] == f"{SLUG}_seed0-2.mp4"  # the auto-name steps past the reserved one
    finally:
        holder.kill()
        holder.wait()
    ok(cli("generate", PROMPT, *M(micro), "-o", "clip.mp4", "--frames", "2", "-q"))  # a stale lock is ignored
    assert sorted(p.name for p in cwd.iterdir() if "lock" in p.name) == [f".{SLUG}_seed0.mp4.videopoet-lock"]  # ours are gone


def test_a_file_that_appears_during_generation_is_not_replaced(micro, cwd, monkeypatch):
    real = V._encode_mp4

    def slow(frames, tmp, fps, note=""):  # another process writes the name while this one encodes
        real(frames, tmp, fps, note)
        (cwd / "clip.mp4").write_bytes(b"someone else's")

    monkeypatch.setattr(V, "_encode_mp4", slow)
    r = cli("generate", PROMPT, *M(micro), "-o", "clip.mp4", "--frames", "2")
    assert r.exit_code == 2 and "appeared while" in r.stderr
    assert (cwd / "clip.mp4").read_bytes() == b"someone else's"
    assert [p.name for p in cwd.iterdir() if p.name != "clip.mp4"] == []  # no temp file left


def test_unwritable_output_folder_fails_before_the_model_loads(micro, cwd, monkeypatch):
    from model import pipeline

    def boom(*a, **k):
        raise AssertionError("the model was loaded")

    monkeypatch.setattr(pipeline.VideoPoet, "from_pretrained", boom)
    monkeypatch.setattr(os, "open", _failing_open(os.open, str(cwd / "ro")))
    (cwd / "ro").mkdir()
    r = cli("generate", PROMPT, *M(micro), "-o", "ro/clip.mp4", "--frames", "2")
    assert r.exit_code == 1 and "cannot write in" in r.stderr and "Read-only" in r.stderr


def _failing_open(real, folder):
    import errno

    def fake(path, flags, *a, **k):
        if str(path).startswith(folder + os.sep) and flags & os.O_CREAT:
            raise OSError(errno.EROFS, "Read-only file system", path)
        return real(path, flags, *a, **k)

    return fake


def test_notices_for_wasted_frames_and_long_prompts(micro, cwd):
    r = ok(cli("generate", PROMPT, *M(micro), "--frames", "5", "-o", "a.mp4"))
    assert "5 frames at 8 fps take 5 of the 17 frames" in r.stderr
    r = ok(cli("generate", PROMPT, *M(micro), "--frames", "17", "-o", "b.mp4"))
    assert "note" not in r.stderr
    long = PROMPT + " on a dark gray background while the camera slowly pans across a wide field of flowers"
    r = ok(cli("generate", long, *M(micro), "--frames", "17", "-o", "c.mp4"))
    assert "only the first 16 text tokens" in r.stderr and "the rest is ignored" in r.stderr
    assert "note" not in ok(cli("generate", long, *M(micro), "--frames", "17", "-o", "d.mp4", "-q")).stderr


def test_notice_for_a_prompt_the_shipped_model_cannot_read():
    from model.pipeline import VideoPoet

    vp = VideoPoet.from_pretrained("tiny")
    assert any("names no colour, shape or motion" in n for n in vp.prompt_notes("🎉🎉🎉"))
    assert any("names no colour, shape or motion" in n for n in vp.prompt_notes("一个红色的圆圈"))
    assert vp.prompt_notes(PROMPT) == []


def test_negative_prompt_steers_the_unconditional_branch(micro, cwd):
    ok(cli("generate", PROMPT, *M(micro), "--seed", "3", "-o", "a.gif", "--frames", "5", "-q"))
    r = ok(cli("generate", PROMPT, *M(micro), "--seed", "3", "-o", "b.gif", "--frames", "5", "--negative", "a blue square", "--json"))
    assert json.loads(r.stdout)["sampling"]["negative"] == "a blue square"
    ok(cli("generate", PROMPT, *M(micro), "--seed", "3", "-o", "c.gif", "--frames", "5", "--negative", " ", "-q"))
    ok(cli("generate", PROMPT, *M(micro), "--seed", "3", "-o", "d.gif", "--frames", "5", "--guidance", "1", "--negative", "x", "-q"))
    ok(cli("generate", PROMPT, *M(micro), "--seed", "3", "-o", "e.gif", "--frames", "5", "--cfg", "1", "-q"))
    a, b, c, d, e = (read_back(cwd / f"{n}.gif")[0] for n in "abcde")
    assert not np.array_equal(a, b)  # the negative prompt changed the guided draw
    assert np.array_equal(a, c)  # blank negative = none
    assert np.array_equal(d, e)  # no guidance: the negative prompt plays no part


@pytest.mark.parametrize("kind", ["mp4", "gif", "png"])
def test_info_reads_the_record_and_its_command_remakes_the_clip(micro, cwd, kind):
    import shlex

    from videopoet_cli.main import reproduce_command

    name = {"mp4": "a.mp4", "gif": "a.gif", "png": "frames/"}[kind]
    prompt = 'a red "circle"; moving = right #1'
    ok(cli("generate", prompt, *M(micro), "-o", name, "--format", kind, "--frames", "5", "--seed", "7", "--top-k", "9",
           "--negative", "blue\\ntext", "--size", "64", "-q"))  # fmt: skip
    rec = json.loads(ok(cli("info", name, "--json")).stdout)
    assert (rec["prompt"], rec["seed"], rec["frames"], rec["command"]) == (prompt, 7, 5, "generate")
    assert rec["sampling"]["top_k"] == 9 and rec["sampling"]["negative"] == "blue\\ntext"
    assert re.fullmatch(r"[0-9a-f]{64}", rec["checkpoint_sha256"])
    human = ok(cli("info", name)).stdout
    assert "reproduce:" in human and "videopoet generate" in human
    args = shlex.split(reproduce_command(rec))[1:]
    i = args.index("--preset")
    args[i : i + 2] = M(micro)
    again = {"mp4": "b.mp4", "gif": "b.gif", "png": "again/"}[kind]
    ok(cli(*args, "-o", again, "--format", kind, "-q"))
    assert np.array_equal(read_back(cwd / name)[0], read_back(cwd / again)[0])  # the same clip


def test_info_refuses_files_without_a_record(cwd):
    write_clip(cwd / "in.mp4", T=3, H=64, W=64, fps=8)
    r = cli("info", "in.mp4")
    assert r.exit_code == 1 and "no videopoet record" in r.stderr
    assert cli("info", "missing.mp4").exit_code == 2


def test_threads_follow_the_option_the_environment_and_the_affinity(micro, cwd, monkeypatch):
    import torch

    from videopoet_cli.main import cpu_threads

    assert cpu_threads(3) == 3
    monkeypatch.setenv("OMP_NUM_THREADS", "2")
    assert cpu_threads() == 2
    monkeypatch.delenv("OMP_NUM_THREADS")
    monkeypatch.setattr(os, "sched_getaffinity", lambda pid: {0}, raising=False)
    assert cpu_threads() == 1
    from videopoet_cli import main as cli_main

    monkeypatch.setattr(os, "sched_getaffinity", lambda pid: {0, 1, 2, 3}, raising=False)
    monkeypatch.setattr(cli_main, "_busy_others", lambda: 0)
    assert cpu_threads() == 4
    monkeypatch.setattr(cli_main, "_busy_others", lambda: 3)  # three other busy processes: one thread left
    assert cpu_threads() == 1
    monkeypatch.setattr(cli_main, "_busy_others", lambda: 9)
    assert cpu_threads() == 1
    ok(cli("generate", PROMPT, *M(micro), "--frames", "1", "--threads", "1", "-o", "a.gif", "-q"))
    assert torch.get_num_threads() == 1
    assert cli("generate", PROMPT, *M(micro), "--threads", "0", "-o", "b.gif").exit_code == 2


@pytest.mark.parametrize("sig, code", [("SIGTERM", 143), ("SIGINT", 130)])
def test_a_signal_during_generation_leaves_nothing(micro, tmp_path, sig, code):
    import signal

    exe = Path(sys.executable).with_name("videopoet")
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    # SIGINT back to its default in the child: a test run started as a background job (`cmd &` in a script)
    # ignores SIGINT, and every process it starts would inherit that
    p = subprocess.Popen([str(exe), "generate", PROMPT, *M(micro), "--seconds", "120", "-o", "long.mp4"], cwd=tmp_path,
                         env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                         preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))  # fmt: skip
    deadline = time.time() + 60
    while time.time() < deadline and not any(f.name.endswith("videopoet-lock") for f in tmp_path.iterdir()):
        time.sleep(0.1)  # wait until it has reserved its output: the work has started
    time.sleep(1.0)
    p.send_signal(getattr(signal, sig))
    _, err = p.communicate(timeout=60)
    assert p.returncode == code, err
    assert err.strip().splitlines()[-1] in ("terminated", "interrupted")
    assert list(tmp_path.iterdir()) == []  # no output, no temp file, no reservation left


def test_num_runs_as_one_batch_with_each_clip_its_seed(micro, cwd, monkeypatch):
    from model import pipeline

    calls = []
    real = pipeline.VideoPoet.generate_variations

    def spy(self, prompt, seeds, **k):
        calls.append(list(seeds))
        return real(self, prompt, seeds, **k)

    monkeypatch.setattr(pipeline.VideoPoet, "generate_variations", spy)
    r = ok(cli("generate", PROMPT, *M(micro), "--num", "3", "--seed", "5", "-o", "v.gif", "--frames", "9", "--json"))
    assert calls == [[5, 6, 7]]  # one batched call
    assert [json.loads(x)["seed"] for x in r.stdout.splitlines()] == [5, 6, 7]
    for i, seed in enumerate((5, 6, 7)):
        ok(cli("generate", PROMPT, *M(micro), "--seed", str(seed), "-o", f"s{seed}.gif", "--frames", "9", "-q"))
        assert np.array_equal(read_back(cwd / f"v-{i + 1}.gif")[0], read_back(cwd / f"s{seed}.gif")[0])


def test_generate_variations_equals_one_run_per_seed(micro):
    import torch

    from model.pipeline import VideoPoet

    vp = VideoPoet.from_pretrained(str(micro[0]), checkpoint=micro[1])
    for frames in (1, 25):  # an image; two windows (the second continues clip by clip)
        many = vp.generate_variations(PROMPT, [3, 4], frames=frames, top_k=20, negative="blue")
        one = [vp.generate(PROMPT, seed=s, frames=frames, top_k=20, negative="blue") for s in (3, 4)]
        assert all(torch.equal(a, b) for a, b in zip(many, one))
        assert not torch.equal(many[0], many[1])


def test_dtype(micro, cwd):
    ok(cli("generate", PROMPT, *M(micro), "--frames", "5", "--dtype", "bfloat16", "-o", "a.gif", "-q"))
    ok(cli("generate", PROMPT, *M(micro), "--frames", "5", "-o", "b.gif", "-q"))
    a, b = read_back(cwd / "a.gif")[0], read_back(cwd / "b.gif")[0]
    assert a.shape == b.shape == (5, 128, 128, 3)
    for bad, words in (("float16", "not usable on a CPU"), ("int8", "--dtype must be")):
        r = cli("generate", PROMPT, *M(micro), "--dtype", bad, "-o", "c.gif")
        assert r.exit_code == 2 and words in r.stderr


def test_eval_seed_draws_the_same_prompts_with_other_seeds(micro, cwd, monkeypatch):
    """`eval --seed S` samples clip i with seed S + i and records S; the prompts are the same."""
    from model.pipeline import VideoPoet

    seen = []
    real = VideoPoet.generate

    def spy(self, prompt, **kw):
        seen.append((prompt, kw["seed"]))
        return real(self, prompt, **kw)

    monkeypatch.setattr(VideoPoet, "generate", spy)
    for seed in (0, 7):
        ok(cli("eval", *M(micro), "--tasks", "t2v", "--limit", "2", "--seed", seed, "--out", f"e{seed}.json"))
        report = json.loads((cwd / f"e{seed}.json").read_text())
        assert report["seed"] == seed and report["t2v_heldout_combos"]["n"] == 2
    prompts = [p for p, _ in seen]
    assert prompts[:4] == prompts[4:] and [s for _, s in seen] == [0, 1, 0, 1, 7, 8, 7, 8]
    bad = cli("eval", *M(micro), "--tasks", "t2v", "--seed", "-1")
    assert bad.exit_code == 2 and "--seed" in bad.stderr
