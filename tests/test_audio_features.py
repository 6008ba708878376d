"""talklib.audio.features: one row per video frame, SpeechSplit mel, RAPT F0 on known signals."""

import json

import numpy as np
import pytest

from talklib.audio import features as F
from talklib.errors import UserError

SR = 16000


def _harmonic(f0_hz, seconds, sr=SR):
    """A buzzy voiced sound with a (possibly time-varying) F0 in Hz."""
    n = int(sr * seconds)
    f0 = np.broadcast_to(np.asarray(f0_hz, np.float64), (n,)) if np.ndim(f0_hz) == 0 else np.asarray(f0_hz)
    ph = 2 * np.pi * np.cumsum(f0) / sr
    return (0.3 * sum(np.sin(k * ph) / k for k in range(1, 12))).astype(np.float32)


@pytest.mark.parametrize("seconds", [0.04, 0.05, 0.5, 1.01, 2.0])
def test_exactly_one_row_per_frame(seconds):
    x = _harmonic(150.0, seconds)
    n = F.n_video_frames(len(x))
    assert n == int(np.floor(seconds * 25 + 0.5))
    feats = F.compute_features(x)
    for kind, arr in feats.items():
        assert arr.shape[0] == n, kind
    assert feats["mel"].shape == (n, 80) and feats["mfcc"].shape == (n, 13)
    assert feats["mel_win"].shape == (n, 16, 80) and feats["mfcc_win"].shape == (n, 16, 13)


def test_shorter_than_one_frame():
    with pytest.raises(UserError, match="shorter than one video frame") as e:
        F.compute_features(np.ones(300, np.float32) * 0.1)
    assert "\n" not in str(e.value)
    feats = F.compute_features(np.ones(300, np.float32) * 0.1, n_frames=2)  # explicit length: padded
    assert feats["mel"].shape == (2, 80)


def test_explicit_frames_crop_and_pad():
    x = _harmonic(150.0, 1.0)
    assert F.compute_features(x, n_frames=10)["mel"].shape == (10, 80)
    assert F.compute_features(x, n_frames=40)["energy"].shape == (40,)
    e = F.compute_features(x, n_frames=40)["energy"]
    assert e[:25].min() > -20 and e[30:].max() == pytest.approx(-100.0)


def test_silence():
    feats = F.compute_features(np.zeros(SR, np.float32))
    assert feats["mel"].max() == 0.0  # SpeechSplit's floor: (-100 dB - 16 + 100) / 100 clipped to 0
    assert (feats["f0"] == 0).all() and (feats["f0q"] == 0).all()
    assert np.all(np.isfinite(feats["mfcc"]))


def test_mel_settings_and_scale():
    basis = F.mel_basis()
    assert basis.shape == (80, 513)
    freqs = np.fft.rfftfreq(1024, 1 / SR)
    support = freqs[basis.sum(0) > 0]
    assert 80 < support.min() < 100 and 7500 < support.max() < 7700
    x = _harmonic(200.0, 1.0)
    mel = F.speechsplit_mel(x)
    assert mel.shape == (len(x) // 256 + 1, 80) and 0 <= mel.min() and mel.max() <= 1
    # a 60 Hz hum below the 30 Hz high-pass? no: 10 Hz rumble is removed by the high-pass
    rumble = 0.5 * np.sin(2 * np.pi * 10 * np.arange(SR) / SR).astype(np.float32)
    assert F.speechsplit_mel(rumble)[5:-5].max() < 0.2


def test_f0_constant_and_chirp():
    feats = F.compute_features(_harmonic(180.0, 1.0))
    voiced = feats["f0"] > 0
    assert voiced.mean() > 0.8
    assert np.median(feats["f0"][voiced]) == pytest.approx(180.0, rel=0.02)
    # chirp 120 -> 240 Hz: F0 rises, quantised bins rise, both speaker-normalised around the middle
    n = 2 * SR
    chirp = _harmonic(np.linspace(120, 240, n), 2.0)
    f = F.compute_features(chirp)
    v = f["f0"] > 0
    t = np.arange(len(v))[v]
    assert np.corrcoef(t, f["f0"][v])[0, 1] > 0.98
    assert np.corrcoef(t, f["f0q"][v])[0, 1] > 0.98
    assert f["f0q"][v].min() >= 1 and f["f0q"][v].max() <= 256


def test_quantise_and_onehot():
    norm = np.array([-1.0, 0.0, 0.5, 1.0], np.float32)
    q = F.quantise_f0(norm)
    assert q.tolist() == [0, 1, 129, 256]
    oh = F.f0_onehot(q)
    assert oh.shape == (4, 257) and (oh.sum(1) == 1).all() and oh[0, 0] == 1


def test_windows_are_centred():
    stream = np.arange(20, dtype=np.float32)[:, None]  # 10 video frames, step j has value j
    w = F.windows(stream, 16)
    assert w.shape == (10, 16, 1)
    assert w[5, :, 0].tolist() == list(range(3, 19))  # 8 steps each side of the centre (between 10 and 11)
    assert w[0, 0, 0] == 0 and w[9, -1, 0] == 19  # edges repeated
    assert F.per_frame(stream)[:, 0].tolist() == [0.5 + 2 * i for i in range(10)]


def test_write_features_updates_dataset_json(tmp_path):
    (tmp_path / "dataset.json").write_text(json.dumps({"kind": "speech", "files": {"aud.wav": {"unit": "16 kHz"}}}))
    feats = F.compute_features(_harmonic(150.0, 0.4))
    F.write_features(tmp_path, feats)
    meta = json.loads((tmp_path / "dataset.json").read_text())
    assert meta["kind"] == "speech" and "aud.wav" in meta["files"]
    assert meta["files"]["aud_mel_win.npy"]["shape"] == [10, 16, 80]
    assert F.read_feature(tmp_path, "mel").shape == (10, 80)
    with pytest.raises(UserError, match="missing"):
        F.read_feature(tmp_path, "nope")
    with pytest.raises(UserError, match="does not exist"):
        F.write_features(tmp_path / "nofolder", feats)


def test_cli_writes_features(tmp_path):
    import soundfile as sf

    from talklib.audio.command import main

    sf.write(tmp_path / "a.flac", np.stack([_harmonic(150.0, 0.8)] * 2, 1), 44100)
    assert main([str(tmp_path / "a.flac"), "--out", str(tmp_path / "feat")]) == 0
    assert np.load(tmp_path / "feat" / "aud_mel.npy").shape[1] == 80


def test_clean_f0_removes_glitches():
    f0 = np.array([0, 0, 200, 0, 0, 100, 101, 102, 204, 103, 104, 0], np.float32)
    out = F.clean_f0(f0, min_run=2, median=3)
    assert out[2] == 0  # a one-frame voiced blip is dropped
    assert out[8] == pytest.approx(103.0, rel=1e-4)  # the octave jump is replaced by its neighbours' median
    assert out[5] == pytest.approx(100.0, rel=1e-4) and out[-1] == 0
