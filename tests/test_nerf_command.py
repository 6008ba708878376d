"""``python -m talklib render``: a video from a tiny checkpoint, and one-line errors for bad input."""

import numpy as np
import pytest
import soundfile as sf
import torch

from talklib.cli import main


def test_render_writes_one_frame_per_40ms_with_audio(ckpt, wav, tmp_path):
    from talklib.data.video import read_video, read_video_audio

    out = tmp_path / "talk.mp4"
    assert main(["render", "--checkpoint", str(ckpt), "--audio", str(wav), "--out", str(out), "--yaw", "10",
                 "--device", "cpu"]) == 0
    frames, fps = read_video(out)
    assert frames.shape == (5, 16, 16, 3) and fps == pytest.approx(25)
    assert read_video_audio(out) is not None


@pytest.mark.parametrize("case,needle", [
    ("yaw", "out of range"), ("short", "shorter than one"), ("outdir", "does not exist"),
    ("other_ckpt", "no NeRF checkpoint"), ("not_ckpt", "not a readable NeRF checkpoint"),
])
def test_bad_input_is_one_line_and_writes_nothing(ckpt, wav, tmp_path, capsys, case, needle):
    out = tmp_path / "talk.mp4"
    args = ["render", "--checkpoint", str(ckpt), "--audio", str(wav), "--out", str(out), "--device", "cpu"]
    if case == "yaw":
        args += ["--yaw", "80"]
    elif case == "short":
        short = tmp_path / "s.wav"
        sf.write(short, np.zeros(300, np.float32), 16000)
        args[4] = str(short)
    elif case == "outdir":
        args[6] = str(tmp_path / "missing" / "talk.mp4")
    elif case == "other_ckpt":
        args[2] = str(tmp_path)
    elif case == "not_ckpt":
        (tmp_path / "nerf.pt").write_bytes(b"garbage")
        args[2] = str(tmp_path)
    assert main(args) == 2
    err = capsys.readouterr().err.strip()
    assert needle in err and "\n" not in err
    assert not out.exists() and not list(tmp_path.glob("*.mp4"))


def test_checkpoint_from_another_configuration_is_refused(ckpt, wav, tmp_path, capsys):
    blob = torch.load(ckpt / "nerf.pt", weights_only=True)
    blob["extra"]["cond_default"] = torch.zeros(7)
    d = tmp_path / "bad"
    d.mkdir()
    torch.save(blob, d / "nerf.pt")
    assert main(["render", "--checkpoint", str(d), "--audio", str(wav), "--out", str(tmp_path / "t.mp4")]) == 2
    assert "different configurations" in capsys.readouterr().err
