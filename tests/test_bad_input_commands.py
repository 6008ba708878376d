"""synth, render and eval on bad or surprising input (issue 13): a one-line error (exit 2), and nothing
lost or left behind; stale temporaries of killed runs are cleaned; outputs are locked while built."""

import json
import os
import subprocess
import sys
import weakref

import numpy as np
import pytest
import torch

from talklib.cli import main

TINY = ["-p", "synth_size=64", "-p", "synth_views=front"]


def _run(capsys, *argv):
    code = main([str(a) for a in argv])
    cap = capsys.readouterr()
    return code, cap.out, cap.err.strip()


def _one_line(code, err, needle):
    assert code == 2, err
    assert err.startswith("error: ") and "\n" not in err and needle in err, err


def _dead_pid() -> int:
    p = subprocess.Popen([sys.executable, "-c", "pass"])
    p.wait()
    return p.pid


def _listing(folder):
    return sorted(str(p.relative_to(folder)) for p in folder.rglob("*"))


# ---- synth: --force replaces only what talklib made, in every mode (one check) -------------------------

@pytest.mark.parametrize("mode", [["--text", "Hello there."], [], ["--train-clip"]])
def test_force_never_replaces_a_folder_talklib_did_not_make(tmp_path, capsys, mode):
    out = tmp_path / "mine"
    (out / "sub").mkdir(parents=True)
    (out / "notes.txt").write_text("precious")
    (out / "sub" / "data.bin").write_bytes(b"\0\1")
    before = _listing(tmp_path)
    _one_line(*_run(capsys, "synth", "--out", out, "--force", *mode, *TINY)[::2], "talklib did not make")
    assert _listing(tmp_path) == before and (out / "notes.txt").read_text() == "precious"


def test_force_onto_a_file_is_refused_and_leaves_no_old_copy(tmp_path, capsys):
    out = tmp_path / "clip"
    out.write_text("not a dataset")
    _one_line(*_run(capsys, "synth", "--out", out, "--force", "--text", "Hi.", *TINY)[::2], "is a file")
    assert out.read_text() == "not a dataset" and _listing(tmp_path) == ["clip"]


def test_replace_dir_onto_a_file_leaves_no_old_copy(tmp_path):
    from talklib.outputs import replace_dir

    (tmp_path / "new").mkdir()
    (tmp_path / "x").write_text("old file")
    replace_dir(tmp_path / "new", tmp_path / "x")
    assert (tmp_path / "x").is_dir() and _listing(tmp_path) == ["x"]


def test_ensure_corpus_refuses_a_foreign_folder_even_with_force(tmp_path):
    from talklib.errors import UserError
    from talklib.speaker.build import ensure_corpus

    (tmp_path / "d").mkdir()
    (tmp_path / "d" / "keep.txt").write_text("k")
    with pytest.raises(UserError, match="talklib did not make"):
        ensure_corpus(tmp_path / "d", "small", 0, force=True, progress=False)
    assert (tmp_path / "d" / "keep.txt").read_text() == "k"


def test_force_replaces_a_clip_talklib_made_and_says_how_long_first(tmp_path, capsys):
    out = tmp_path / "clip"
    code, text, err = _run(capsys, "synth", "--out", out, "--text", "Hi.", *TINY)
    assert code == 0, err
    assert text.startswith("speech of ") and "rendering" in text and "frames" in text
    stamp = (out / "dataset.json").stat().st_mtime_ns
    _one_line(*_run(capsys, "synth", "--out", out, "--text", "Hi.", *TINY)[::2], "already exists: pass --force")
    code, _, err = _run(capsys, "synth", "--out", out, "--text", "Hello.", "--force", *TINY)
    assert code == 0, err
    assert (out / "dataset.json").stat().st_mtime_ns != stamp
    assert json.loads((out / "dataset.json").read_text())["text"] == "Hello."
    assert _listing(tmp_path)[0] == "clip" and not [p for p in tmp_path.iterdir() if p.name.startswith(".")]


@pytest.mark.parametrize("argv,needle", [
    (["--seed", "-3", "--text", "hi"], "--seed -3 is negative"),
    (["--seed", "-3"], "--seed -3 is negative"),
    (["--identity", "99"], "--identity 99 applies to one clip"),
    (["--voice", "us_f", "--train-clip"], "--voice us_f applies to --text only"),
])
def test_synth_arguments_that_cannot_apply(tmp_path, capsys, argv, needle):
    _one_line(*_run(capsys, "synth", "--out", tmp_path / "o", *argv, *TINY)[::2], needle)
    assert list(tmp_path.iterdir()) == []


def test_builders_refuse_a_negative_seed(tmp_path):
    from talklib.errors import UserError
    from talklib.speaker.build import build_training_clip, speech_clip_job

    with pytest.raises(UserError, match="seed -3 is negative"):
        build_training_clip(tmp_path / "c", "small", -3, 0, progress=False)
    with pytest.raises(UserError, match="seed -1 is negative"):
        speech_clip_job("small", -1, text="hi")
    assert list(tmp_path.iterdir()) == []


# ---- stale temporaries and locks ---------------------------------------------------------------------

def test_synth_removes_what_killed_runs_left_and_keeps_live_ones(tmp_path, capsys):
    dead, live = _dead_pid(), os.getppid()
    (tmp_path / f".clip.building-{dead}" / "ori_imgs").mkdir(parents=True)
    (tmp_path / f".clip.old-{dead}").write_text("old")
    (tmp_path / f".clip.building-{live}").mkdir()
    (tmp_path / ".other.building-1").mkdir()            # another output's: not ours to judge here
    code, _, err = _run(capsys, "synth", "--out", tmp_path / "clip", "--text", "Hi.", *TINY)
    assert code == 0, err
    assert sorted(p.name for p in tmp_path.iterdir()) == [f".clip.building-{live}", ".other.building-1", "clip"]


def test_a_checkpoint_save_removes_temporaries_of_killed_saves(tmp_path):
    from talklib.nerf.scene import toy_scene
    from talklib.nerf.train import model_for_scene, save_checkpoint

    dead, live = _dead_pid(), os.getppid()
    (tmp_path / f".nerf.pt.tmp-{dead}-abcd1234").write_bytes(b"half a checkpoint")
    (tmp_path / f".nerf.pt.tmp-{live}-abcd1234").write_bytes(b"being written")
    model = model_for_scene(toy_scene(n_frames=5, size=16, seed=0), n_samples=8, occ_res=8,
                            field=dict(plane_res=[8], hidden=8, cond_code=4))
    save_checkpoint(tmp_path / "nerf.pt", model)
    assert sorted(p.name for p in tmp_path.iterdir()) == [f".nerf.pt.tmp-{live}-abcd1234", "nerf.pt"]


def test_a_second_synth_into_a_folder_being_built_is_refused(tmp_path, capsys):
    out = tmp_path / "clip"
    holder = subprocess.Popen(
        [sys.executable, "-c", "import sys, time; from talklib.outputs import output_lock\n"
         f"with output_lock({str(out)!r}):\n    print('held', flush=True); time.sleep(60)"],
        stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline().strip() == "held"
        _one_line(*_run(capsys, "synth", "--out", out, "--text", "Hi.", *TINY)[::2],
                  f"being written by another process (pid {holder.pid}")
        assert not out.exists()
    finally:
        holder.kill()
        holder.wait()
    # the holder died without removing its lock file: the next run takes it over
    assert (tmp_path / ".clip.lock").read_text().strip() == str(holder.pid)
    code, _, err = _run(capsys, "synth", "--out", out, "--text", "Hi.", *TINY)
    assert code == 0, err
    assert sorted(p.name for p in tmp_path.iterdir()) == ["clip"]


def test_output_lock_is_reentrant_and_released(tmp_path):
    from talklib.outputs import output_lock

    with output_lock(tmp_path / "x") as lock:
        with output_lock(tmp_path / "x"):
            assert lock.read_text().strip() == str(os.getpid())
        assert lock.exists()
    assert not lock.exists()


# ---- render ------------------------------------------------------------------------------------------



def _render(capsys, ckpt, wav, out, *more):
    return _run(capsys, "render", "--checkpoint", ckpt, "--audio", wav, "--out", out, "--device", "cpu", *more)


@pytest.mark.parametrize("batch", ["0", "-3"])
def test_render_batch_must_be_positive(ckpt, wav, tmp_path, capsys, batch):
    _one_line(*_render(capsys, ckpt, wav, tmp_path / "t.mp4", "--batch", batch)[::2], f"--batch {batch}")
    assert list(tmp_path.iterdir()) == []


def test_render_refuses_to_overwrite_without_force(ckpt, wav, tmp_path, capsys):
    out = tmp_path / "t.mp4"
    out.write_bytes(b"my old video")
    _one_line(*_render(capsys, ckpt, wav, out)[::2], "already exists: pass --force")
    assert out.read_bytes() == b"my old video" and _listing(tmp_path) == ["t.mp4"]
    code, _, err = _render(capsys, ckpt, wav, out, "--force")
    assert code == 0, err
    assert out.read_bytes() != b"my old video" and _listing(tmp_path) == ["t.mp4"]


def _damage(src, dst, how):
    dst.mkdir()
    data = bytearray((src / "nerf.pt").read_bytes())
    if how == "bytes":   # same size, bytes inside the weights changed
        import zipfile

        with zipfile.ZipFile(src / "nerf.pt") as z:
            info = max(z.infolist(), key=lambda i: i.file_size)
            start = info.header_offset + 30 + len(info.filename.encode()) + len(info.extra)
        for i in range(start, start + min(64, info.file_size)):
            data[i] = 0xFF
        (dst / "nerf.pt").write_bytes(bytes(data))
    else:                # well-formed file whose weights hold NaN
        blob = torch.load(src / "nerf.pt", weights_only=True)
        k = next(k for k, v in blob["state"].items() if v.is_floating_point() and v.numel() > 1)
        blob["state"][k] = torch.full_like(blob["state"][k], float("nan"))
        torch.save(blob, dst / "nerf.pt")
    assert (dst / "nerf.pt").stat().st_size == len(data) or how == "nan"


@pytest.mark.parametrize("how,needle", [("bytes", "checksum mismatch"), ("nan", "NaN or inf")])
def test_a_damaged_checkpoint_is_refused_not_rendered_black(ckpt, wav, tmp_path, capsys, how, needle):
    _damage(ckpt, tmp_path / "bad", how)
    code, _, err = _render(capsys, tmp_path / "bad", wav, tmp_path / "t.mp4")
    _one_line(code, err, "is damaged")
    assert needle in err and not list(tmp_path.glob("*.mp4")) and not list(tmp_path.glob(".*"))


def test_a_checkpoint_whose_parts_do_not_fit_is_refused(ckpt, wav, tmp_path, capsys):
    blob = torch.load(ckpt / "nerf.pt", weights_only=True)
    blob["extra"]["bg"] = blob["extra"]["bg"][:8]
    (tmp_path / "bad").mkdir()
    torch.save(blob, tmp_path / "bad" / "nerf.pt")
    _one_line(*_render(capsys, tmp_path / "bad", wav, tmp_path / "t.mp4")[::2], "do not fit together")
    assert not list(tmp_path.glob("*.mp4"))


def test_a_checkpoint_without_render_settings_says_what_is_missing(ckpt, wav, tmp_path, capsys):
    from talklib.nerf.train import load_checkpoint, model_from_checkpoint, save_checkpoint

    (tmp_path / "bench").mkdir()
    save_checkpoint(tmp_path / "bench" / "nerf.pt", model_from_checkpoint(load_checkpoint(ckpt)))   # as fit() saves
    code, _, err = _render(capsys, tmp_path / "bench", wav, tmp_path / "t.mp4")
    _one_line(code, err, "missing: camera, c2w, bg, cond_default, audio_slice, audio2exp")
    assert "benchmarks/render.py --data CLIP --ckpt DIR" in err and not list(tmp_path.glob("*.mp4"))


def test_render_streams_frames_to_the_encoder(ckpt, wav, tmp_path):
    """write_video takes a generator and holds one batch at a time; the stream equals the array."""
    from talklib.data.video import read_video, write_video

    rng = np.random.default_rng(0)
    batches = [rng.integers(0, 255, (3, 16, 16, 3), dtype=np.uint8) for _ in range(6)]
    alive = []

    def gen():
        for b in batches:
            c = b.copy()
            alive.append(weakref.ref(c))
            assert sum(r() is not None for r in alive) <= 2    # this one and the encoder's last frame's
            yield c

    write_video(tmp_path / "s.mp4", gen(), fps=25)
    write_video(tmp_path / "a.mp4", np.concatenate(batches), fps=25)
    assert np.array_equal(read_video(tmp_path / "s.mp4")[0], read_video(tmp_path / "a.mp4")[0])
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a.mp4", "s.mp4"]


def test_a_failing_stream_leaves_no_video(tmp_path):
    from talklib.data.video import write_video

    def gen():
        yield np.zeros((2, 16, 16, 3), np.uint8)
        raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        write_video(tmp_path / "k.mp4", gen(), fps=25, audio=np.zeros(16000, np.float32))
    assert list(tmp_path.iterdir()) == []


# ---- eval --------------------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def video(tmp_path_factory):
    from talklib.data.video import write_video

    return write_video(tmp_path_factory.mktemp("vid") / "v.mp4", np.zeros((4, 16, 16, 3), np.uint8), fps=25)


@pytest.mark.parametrize("fps", ["-25", "0", "nan"])
def test_eval_fps_must_be_positive(video, tmp_path, capsys, fps):
    _one_line(*_run(capsys, "eval", "--pred", video, "--ref", video, "--fps", fps)[::2], "not a positive frame rate")


def test_eval_out_is_checked_before_anything_is_computed(tmp_path, capsys):
    (tmp_path / "res").mkdir()
    # the videos do not even exist: the --out error must come first, before any reading or computing
    code, out, err = _run(capsys, "eval", "--pred", tmp_path / "no.mp4", "--ref", tmp_path / "no.mp4",
                          "--out", tmp_path / "res")
    _one_line(code, err, "is a folder")
    code, out, err = _run(capsys, "eval", "--pred", tmp_path / "no.mp4", "--ref", tmp_path / "no.mp4",
                          "--out", tmp_path / "missing" / "m.json")
    _one_line(code, err, "does not exist: create it")
    assert _listing(tmp_path) == ["res"] and out == ""


def test_sigterm_during_synth_stops_cleanly(tmp_path):
    """``kill PID`` (SIGTERM) is handled like Ctrl-C: one line, exit 130, the half-built folder removed."""
    import signal
    import time

    text = "Hello there, this is a long sentence. " * 40
    proc = subprocess.Popen([sys.executable, "-m", "talklib", "synth", "--text", text, "--out", str(tmp_path / "clip"),
                             *TINY], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    deadline = time.time() + 120
    while not any(p.name.startswith(".clip.building-") for p in tmp_path.iterdir()):
        assert proc.poll() is None and time.time() < deadline, "synth ended before it started building"
        time.sleep(0.2)
    proc.send_signal(signal.SIGTERM)
    err = proc.communicate(timeout=60)[1].strip().splitlines()[-1]
    assert proc.returncode == 130 and err == "error: interrupted (terminated)", err
    assert _listing(tmp_path) == [], _listing(tmp_path)
