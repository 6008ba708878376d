"""talklib.audio.io: any common audio in, 16 kHz mono float32 out; bad input refused in one line."""

import subprocess
import sys

import numpy as np
import pytest
import soundfile as sf

from talklib.audio.io import SAMPLE_RATE, load_audio, resample, save_wav
from talklib.errors import UserError


def _tone(sr, seconds=1.0, freq=440.0, amp=0.5):
    t = np.arange(int(sr * seconds)) / sr
    return (amp * np.sin(2 * np.pi * freq * t)).astype(np.float32)


def _dominant_hz(x, sr=SAMPLE_RATE):
    spec = np.abs(np.fft.rfft(x * np.hanning(len(x))))
    return np.argmax(spec) * sr / len(x)


@pytest.mark.parametrize("ext,subtype", [("wav", "PCM_16"), ("flac", "PCM_24"), ("ogg", "VORBIS"),
                                         ("mp3", "MPEG_LAYER_III"), ("wav", "FLOAT")])
def test_formats_rates_channels(tmp_path, ext, subtype):
    stereo = np.stack([_tone(22050), 0.5 * _tone(22050)], axis=1)
    path = tmp_path / f"a.{ext}"
    sf.write(path, stereo, 22050, subtype=subtype)
    y = load_audio(path)
    assert y.dtype == np.float32 and y.ndim == 1
    assert abs(len(y) - SAMPLE_RATE) < 0.1 * SAMPLE_RATE  # mp3 adds encoder padding
    assert abs(_dominant_hz(y) - 440.0) < 3.0
    assert 0.2 < np.abs(y).max() < 0.45  # mean of the channels: 0.75 * 0.5


def test_8bit_stereo_44k(tmp_path):
    """Issue 4's bad-input list: 8-bit stereo at 44.1 kHz is handled (converted), not refused."""
    stereo = np.stack([_tone(44100, amp=0.8), -_tone(44100, amp=0.4)], axis=1)
    path = tmp_path / "u8.wav"
    sf.write(path, stereo, 44100, subtype="PCM_U8")
    y = load_audio(path)
    assert len(y) == SAMPLE_RATE and y.dtype == np.float32
    assert abs(_dominant_hz(y) - 440.0) < 2.0
    assert abs(np.abs(y).max() - 0.2) < 0.03  # (0.8 - 0.4) / 2, with 8-bit quantisation


def test_arrays_int_and_layouts():
    x = _tone(8000)
    y = load_audio((x * 32767).astype(np.int16), sr=8000)
    assert len(y) == SAMPLE_RATE and abs(_dominant_hz(y) - 440) < 2
    u8 = np.round(x * 127 + 128).astype(np.uint8)
    assert np.allclose(load_audio(u8, sr=8000), y, atol=0.02)
    both = np.stack([x, x])  # (C, T)
    assert np.allclose(load_audio(both, sr=8000), load_audio(x, sr=8000), atol=1e-6)
    assert np.allclose(load_audio(both.T, sr=8000), load_audio(x, sr=8000), atol=1e-6)


def test_silence_is_valid():
    y = load_audio(np.zeros(4000, np.float32), sr=8000)
    assert y.shape == (8000,) and not y.any()


@pytest.mark.parametrize("bad,msg", [
    (np.array([0.0, np.nan, 0.1], np.float32), "NaN or infinite"),
    (np.array([0.0, np.inf, 0.1], np.float32), "NaN or infinite"),
    (np.zeros(0, np.float32), "no samples"),
    (np.zeros((3, 40, 40)), "shape"),
])
def test_bad_arrays(bad, msg):
    with pytest.raises(UserError, match=msg) as e:
        load_audio(bad)
    assert "\n" not in str(e.value) and ":" in str(e.value)


def test_nan_in_file(tmp_path):
    x = _tone(16000)
    x[100] = np.nan
    path = tmp_path / "nan.wav"
    sf.write(path, x, 16000, subtype="FLOAT")
    with pytest.raises(UserError, match="NaN or infinite"):
        load_audio(path)


def test_not_audio_missing_and_folder(tmp_path):
    text = tmp_path / "notes.wav"
    text.write_text("this is not audio\n" * 20)
    with pytest.raises(UserError, match="not an audio file"):
        load_audio(text)
    with pytest.raises(UserError, match="does not exist"):
        load_audio(tmp_path / "missing.wav")
    with pytest.raises(UserError, match="folder"):
        load_audio(tmp_path)
    empty = tmp_path / "empty.wav"
    empty.write_bytes(b"")
    with pytest.raises(UserError, match="empty"):
        load_audio(empty)


def test_save_roundtrip_and_resample(tmp_path):
    x = _tone(16000, amp=0.3)
    p = save_wav(tmp_path / "x.wav", x)
    assert np.allclose(load_audio(p), x, atol=1e-4)
    y = resample(x, 16000, 48000)
    assert len(y) == 48000 and abs(_dominant_hz(y, 48000) - 440) < 2


def test_cli_bad_input_exit_code(tmp_path):
    bad = tmp_path / "bad.mp3"
    bad.write_text("nope")
    r = subprocess.run([sys.executable, "-m", "talklib.audio.command", str(bad), "--out", str(tmp_path / "o")],
                       capture_output=True, text=True)
    assert r.returncode == 2
    lines = [ln for ln in r.stderr.strip().splitlines() if ln.startswith("error:")]
    assert len(lines) == 1 and "not an audio file" in lines[0]
