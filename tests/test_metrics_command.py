"""``python -m talklib eval``: a full run on small face videos, and one-line errors (exit 2) for bad input."""

import json

import numpy as np
import pytest
import torch
from PIL import Image
from skimage import data

from talklib.cli import main
from talklib.data.video import write_video
from talklib.sync.model import SyncConfig, SyncNet, save_sync

N = 12


@pytest.fixture(scope="module")
def face_frames():
    face = data.astronaut()[20:276, 110:366]  # the astronaut's face, 256x256: mediapipe finds it
    return np.stack([np.roll(face, i % 3, axis=1) for i in range(N)])


def _audio(n):
    rng = np.random.default_rng(0)
    return (0.1 * rng.standard_normal(n * 640)).astype(np.float32)


def _run(capsys, *argv):
    rc = main(["eval", *map(str, argv)])
    out = capsys.readouterr()
    return rc, out.out, out.err


def test_eval_full_run(tmp_path, face_frames, capsys):
    ref = tmp_path / "ref"
    ref.mkdir()
    for i, f in enumerate(face_frames):
        Image.fromarray(f).save(ref / f"{i}.png")
    pred = write_video(tmp_path / "pred.mp4", face_frames, 25, audio=_audio(N))
    model = SyncNet(SyncConfig(dim=16)).eval()
    ckpt = save_sync(model, tmp_path / "sync.pt")
    rc, out, err = _run(capsys, "--pred", pred, "--ref", ref, "--sync-model", ckpt, "--out", tmp_path / "m.json")
    assert rc == 0, err
    body = json.loads((tmp_path / "m.json").read_text())
    m = body["metrics"]
    assert m["frames"] == N and 30 < m["psnr"] < 60 and 0.9 < m["ssim"] <= 1.0
    assert m["lpips"] is None and "lpips" in body["notes"]  # no weights: unavailable, not replaced
    assert m["face_found"] == 1.0 and m["m_lmd"] < 3.0 and m["f_lmd"] < 3.0
    assert m["av_offset"] is not None and -15 <= m["av_offset"] <= 15 and m["lse_c"] >= 0
    assert 0 <= m["cpbd"] <= 1 and m["au_acc"] >= 0.5
    # identical videos: PSNR is infinite -> null in JSON, distances zero
    rc, out, err = _run(capsys, "--pred", ref, "--ref", ref)
    m = json.loads(out)["metrics"]
    assert rc == 0 and m["psnr"] is None and m["ssim"] == pytest.approx(1.0) and m["m_lmd"] == 0.0
    assert m["lse_c"] is None  # no sync model given


def _one_line_error(rc, err, match):
    assert rc == 2
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: ") and match in lines[0], err


def test_eval_bad_input(tmp_path, face_frames, capsys):
    a = write_video(tmp_path / "a.mp4", face_frames, 25)
    short = write_video(tmp_path / "short.mp4", face_frames[:8], 25)
    small = write_video(tmp_path / "small.mp4", face_frames[:, :128, :128], 25)
    blank = write_video(tmp_path / "blank.mp4", np.full_like(face_frames, 90), 25)
    ckpt = save_sync(SyncNet(SyncConfig(dim=16)).eval(), tmp_path / "sync.pt")
    _one_line_error(*_run(capsys, "--pred", short, "--ref", a)[::2], "differ in length")
    _one_line_error(*_run(capsys, "--pred", small, "--ref", a)[::2], "differ in size")
    _one_line_error(*_run(capsys, "--pred", blank, "--ref", a)[::2], "no face was found")
    _one_line_error(*_run(capsys, "--pred", a, "--ref", a, "--sync-model", ckpt)[::2], "no audio")
    _one_line_error(*_run(capsys, "--pred", a, "--ref", a, "--audio", tmp_path / "none.wav")[::2], "none.wav")
    _one_line_error(*_run(capsys, "--pred", tmp_path / "none.mp4", "--ref", a)[::2], "does not exist")
    _one_line_error(*_run(capsys, "--pred", a, "--ref", a, "--lpips", tmp_path / "none.pth")[::2], "LPIPS weights")
    _one_line_error(*_run(capsys, "--pred", a, "--ref", a, "--sync-model", tmp_path / "none.pt")[::2], "sync model")
