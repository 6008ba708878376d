"""``python -m talklib train``: trains, refuses what it must, resumes after kill -9, renders from a wav."""

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from talklib.cli import main

ROOT = Path(__file__).resolve().parents[1]
TINY = ["-p", "nerf_size=16", "-p", "nerf_samples=8", "-p", "nerf_occ_res=8", "-p", "nerf_plane_res=8,16",
        "-p", "nerf_hidden=8", "-p", "nerf_cond_code=4", "-p", "nerf_feat_dim=4", "-p", "nerf_a2e_steps=5",
        "-p", "cond_audio_dim=4"]


def _train(corpus, out, conditions="mfcc,f_illu", steps=20, *more):
    return ["train", "--data", str(corpus.path), "--conditions", conditions, "--out", str(out), *TINY,
            "-p", f"nerf_steps={steps}", "--ckpt-every", "5", "--eval-every", "10", *more]


def _one_line(capsys, argv, needle):
    capsys.readouterr()                      # what earlier commands printed
    code = main(argv)
    err = capsys.readouterr().err.strip()
    assert code == 2 and err.startswith("error: ") and "\n" not in err and needle in err, err
    return err


def test_train_then_render_from_a_wav(featured_corpus, tmp_path, capsys):
    out = tmp_path / "ck"
    assert main(_train(featured_corpus, out, "a_content,a_rhythm,a_pitch,f_illu")) == 0
    summary = json.loads((out / "train.json").read_text())
    assert summary["status"] == "finished" and summary["steps"] == 20 and np.isfinite(summary["heldout_psnr"])
    assert summary["conditions"] == "a_content,a_rhythm,a_pitch,f_illu"
    wav = featured_corpus.clip(split="testA").path / "aud.wav"
    video = tmp_path / "t.mp4"
    assert main(["render", "--checkpoint", str(out), "--audio", str(wav), "--out", str(video)]) == 0
    from talklib.data.video import read_video

    frames, fps = read_video(video)
    assert len(frames) == featured_corpus.clip(split="testA").n_frames and frames.shape[1:] == (16, 16, 3)


def test_audio_shorter_than_the_window_is_refused_by_render(featured_corpus, tmp_path, capsys, wav):
    out = tmp_path / "short"
    assert main(_train(featured_corpus, out, "deepspeech,f_illu", 5)) == 0
    _one_line(capsys, ["render", "--checkpoint", str(out), "--audio", str(wav), "--out", str(tmp_path / "s.mp4")],
              "needs at least 0.32 s")
    assert not (tmp_path / "s.mp4").exists()


def test_a_field_on_the_disentangled_audio_renders_from_a_wav(featured_corpus, tmp_path):
    """NeRF-3DTalker's Eq. (1) condition: render recomputes f_exp-aud / f_exp-style with the stored module."""
    out = tmp_path / "dis"
    assert main(_train(featured_corpus, out, "f_exp_aud:12,f_exp_style:12,f_illu", 10)) == 0
    wav = featured_corpus.clip(split="testA").path / "aud.wav"
    video = tmp_path / "d.mp4"
    assert main(["render", "--checkpoint", str(out), "--audio", str(wav), "--out", str(video)]) == 0
    from talklib.data.video import read_video

    frames, _ = read_video(video)
    assert len(frames) == featured_corpus.clip(split="testA").n_frames


def test_a_3dmm_expression_field_gets_an_audio_network_to_be_rendered(featured_corpus, tmp_path):
    out = tmp_path / "exp"
    assert main(_train(featured_corpus, out, "f_exp:12,f_illu", 10)) == 0
    wav = featured_corpus.clip(split="testA").path / "aud.wav"
    assert main(["render", "--checkpoint", str(out), "--audio", str(wav), "--out", str(tmp_path / "e.mp4")]) == 0


def test_a_finished_folder_is_refused_unless_resume_or_force(featured_corpus, tmp_path, capsys):
    out = tmp_path / "done"
    assert main(_train(featured_corpus, out, steps=10)) == 0
    _one_line(capsys, _train(featured_corpus, out, steps=10), "holds a finished run: --resume")
    capsys.readouterr()
    assert main(_train(featured_corpus, out, "mfcc,f_illu", 10, "--resume")) == 0
    assert "nothing to do" in capsys.readouterr().out
    before = (out / "nerf.pt").stat().st_mtime_ns
    assert main(_train(featured_corpus, out, "mfcc,f_illu", 10, "--force")) == 0
    assert (out / "nerf.pt").stat().st_mtime_ns != before


@pytest.mark.parametrize("case, needle", [
    ("not_dataset", "is not a talklib dataset"),
    ("not_folder", "is not a folder"),
    ("unknown", "unknown condition 'lips': choose from f_exp"),
    ("missing_feature", "needs aud_mel_win.npy"),
    ("out_file", "is a file"),
    ("both_flags", "contradict"),
    ("bad_param", "unknown parameter"),
    ("nothing_to_drive", "nothing audio can drive"),
])
def test_bad_input_is_one_line_and_writes_nothing(featured_corpus, tmp_path, capsys, case, needle):
    out = tmp_path / "o"
    argv = _train(featured_corpus, out)
    if case == "not_dataset":
        argv[2] = str(tmp_path)
    elif case == "not_folder":
        argv[2] = str(tmp_path / "nope")
    elif case == "unknown":
        argv[4] = "mfcc,lips"
    elif case == "missing_feature":
        argv[4] = "mel"
        (featured_corpus.clip(split="train").path / "aud_mel_win.npy").rename(tmp_path / "kept.npy")
    elif case == "out_file":
        out.write_text("x")
    elif case == "both_flags":
        argv += ["--resume", "--force"]
    elif case == "bad_param":
        argv += ["-p", "nerf_stepz=3"]
    elif case == "nothing_to_drive":
        argv[4] = "f_illu"
    try:
        _one_line(capsys, argv, needle)
    finally:
        if case == "missing_feature":
            (tmp_path / "kept.npy").rename(featured_corpus.clip(split="train").path / "aud_mel_win.npy")
    assert not out.is_dir() or not (out / "nerf.pt").exists()


def test_resume_with_other_conditions_is_refused(featured_corpus, tmp_path, capsys):
    out = tmp_path / "r"
    assert main(_train(featured_corpus, out, "mfcc,f_illu", 5)) == 0
    (out / "train.json").unlink()          # as if it had been interrupted
    _one_line(capsys, _train(featured_corpus, out, "f_a,f_illu", 5, "--resume"), "another configuration")


def _spawn(corpus, out, steps, *more):
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    return subprocess.Popen([sys.executable, "-m", "talklib", *_train(corpus, out, "mfcc,f_illu", steps, *more)],
                            cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


def _step(out):
    import torch

    try:
        return int(torch.load(out / "nerf.pt", weights_only=True)["step"])
    except Exception:  # noqa: BLE001 - not written yet, or being replaced
        return 0


def test_killed_three_times_it_ends_where_an_uninterrupted_run_does(featured_corpus, tmp_path):
    steps = 60
    whole = tmp_path / "whole"
    assert _spawn(featured_corpus, whole, steps).wait(timeout=300) == 0
    cut = tmp_path / "cut"
    for k in range(3):
        p = _spawn(featured_corpus, cut, steps, *(["--resume"] if k else []))
        t0 = time.time()
        while _step(cut) < 10 * (k + 1) and p.poll() is None and time.time() - t0 < 200:
            time.sleep(0.05)
        p.send_signal(signal.SIGKILL)
        p.wait()
    assert _step(cut) < steps and not (cut / "train.json").exists()
    assert _spawn(featured_corpus, cut, steps, "--resume").wait(timeout=300) == 0
    a = json.loads((whole / "train.json").read_text())
    b = json.loads((cut / "train.json").read_text())
    assert b["status"] == "finished" and b["steps"] == steps
    assert abs(a["heldout_psnr"] - b["heldout_psnr"]) < 0.1, (a["heldout_psnr"], b["heldout_psnr"])
