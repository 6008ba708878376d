"""``python -m talklib synth``: a clip from text, and one-line errors (exit 2) for every bad input."""

import numpy as np
import pytest

from talklib.cli import main


def _run(capsys, *argv):
    code = main(["synth", *argv])
    err = capsys.readouterr().err.strip()
    return code, err


def test_text_clip(tmp_path, capsys):
    out = tmp_path / "hello"
    code, _ = _run(capsys, "--out", str(out), "--text", "Hello.", "-p", "synth_size=64", "-p", "synth_views=yaw_p30",
                   "--identity", "1")
    assert code == 0
    from talklib.data.dataset import load_clip

    clip = load_clip(out)
    assert clip.identity == "id01" and clip.views == ["front", "yaw_p30"] and clip.size == (64, 64)
    assert np.abs(clip.id_coeffs()).sum() > 0
    # existing output without --force
    code, err = _run(capsys, "--out", str(out), "--text", "Hello again.")
    assert code == 2 and "already exists: pass --force" in err and "\n" not in err


def test_audio_clip(tmp_path, capsys):
    from talklib.audio.arctic import arctic_path

    code, _ = _run(capsys, "--out", str(tmp_path / "a"), "--audio", str(arctic_path()), "-p", "synth_size=64",
                   "-p", "synth_views=front")
    assert code == 0


@pytest.mark.parametrize("argv,message", [
    (["--text", "   "], "--text is empty"),
    (["--preset", "huge"], "unknown preset 'huge'"),
    (["-p", "synth_sise=3"], "unknown parameter 'synth_sise'"),
    (["-p", "synth_size=big"], "synth_size takes a int"),
    (["--identity", "-1", "--text", "hi"], "--identity -1 is negative"),
    (["--text", "hi", "-p", "synth_views=side"], "synth_views must be"),
])
def test_bad_arguments(tmp_path, capsys, argv, message):
    code, err = _run(capsys, "--out", str(tmp_path / "o"), *argv)
    assert code == 2 and message in err and err.startswith("error: ") and "\n" not in err


def test_not_audio(tmp_path, capsys):
    bad = tmp_path / "notes.wav"
    bad.write_text("this is not audio")
    code, err = _run(capsys, "--out", str(tmp_path / "o"), "--audio", str(bad))
    assert code == 2 and "not an audio file" in err and "\n" not in err
    assert not (tmp_path / "o").exists()
