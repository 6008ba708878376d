"""talklib.speaker + talklib.audio.tts/arctic: speech -> curves with known answers, blinks, determinism."""

import hashlib

import numpy as np
import pytest

from talklib.data.dataset import EXP_NAMES
from talklib.speaker.motion import blink_curve
from talklib.speaker.visemes import mouth_curves, viseme

JAW, PART, PUCKER = (EXP_NAMES.index(n) for n in ("jaw_open", "lips_part", "lip_pucker"))


def test_visemes_known_answers():
    assert viseme("M") == viseme("B") == viseme("P") == "PBM"
    assert viseme("AA") == "AA" and viseme("SIL") == "rest" and viseme("??") == "rest"
    # "AA M AA": the jaw is open on the vowels, the lips close on the bilabial
    tl = [("SIL", 0.0, 0.2), ("AA", 0.2, 0.5), ("M", 0.5, 0.62), ("AA", 0.62, 0.92), ("SIL", 0.92, 1.2)]
    c = mouth_curves(tl, 30)
    f = lambda s: int(s * 25)
    assert c[f(0.35), JAW] > 0.5 and c[f(0.56), PART] < 0.2 < c[f(0.35), PART]
    assert c[f(0.56), JAW] < c[f(0.35), JAW] and c[1, JAW] < 0.05
    # coarticulation: the jaw starts opening before the vowel begins, and curves are smooth
    assert 0.02 < c[f(0.18), JAW] < c[f(0.35), JAW]
    assert np.abs(np.diff(c[:, JAW])).max() < 0.35
    w = mouth_curves([("W", 0.0, 0.3)], 8)
    assert w[3, PUCKER] > 0.6


def test_blinks_have_natural_rate_and_duration():
    rng = np.random.default_rng(0)
    c, events = blink_curve(rng, 25 * 600, rate_hz=0.3)
    rate = len(events) / 600
    assert 0.2 < rate < 0.4
    d = np.array([e - s for s, e in events])
    assert d.min() >= 0.15 and d.max() <= 0.25
    assert c.max() == 1.0 and (c > 0.5).mean() < 0.1


def test_tts_phonemes_and_determinism():
    from talklib.audio.tts import synthesize

    a, tl = synthesize("Mama made a map.", "us_f")
    b, _ = synthesize("Mama made a map.", "us_f")
    assert a.dtype == np.float32 and 0.5 < len(a) / 16000 < 3.0 and np.array_equal(a, b)
    phones = [p for p, _, _ in tl]
    assert phones.count("M") >= 3 and "P" in phones and tl[0][1] == 0.0
    assert all(e > s for _, s, e in tl) and abs(tl[-1][2] - len(a) / 16000) < 1e-6


def test_arctic_alignment():
    from talklib.audio.arctic import load_arctic

    audio, tl, text = load_arctic()
    assert audio.shape == (64000,) and text.split()[-1] == "degree"
    words = [p for p, _, _ in tl if p != "SIL"]
    assert words[:3] == ["AE", "N", "D"] and words[-2:] == ["R", "IY"]
    # speech starts after the leading pause (~0.37 s in the recording)
    assert 0.2 < tl[1][1] < 0.5


def _digest(root):
    h = hashlib.sha256()
    for p in sorted(x for x in root.rglob("*") if x.is_file() and x.name != "build_time_s.txt"):
        h.update(p.relative_to(root).as_posix().encode())
        h.update(p.read_bytes())
    return h.hexdigest()


def test_same_seed_byte_identical_and_reuse(tmp_path):
    from talklib.speaker.build import ensure_corpus

    tiny = dict(size=64, train_seconds=1.0, test_seconds=1.0, speech_clips=1, views="yaw_m30",
                lighting_drift=True)
    a = ensure_corpus(tmp_path / "a", "small", 3, progress=False, **tiny)
    b = ensure_corpus(tmp_path / "b", "small", 3, progress=False, **tiny)
    assert _digest(a.path) == _digest(b.path)
    c = ensure_corpus(tmp_path / "c", "small", 4, progress=False, **tiny)
    assert _digest(c.path) != _digest(a.path)
    # reuse: no overrides, or the same overrides -> untouched; changed overrides -> rebuilt
    stamp = (a.path / "corpus.json").stat().st_mtime_ns
    assert ensure_corpus(tmp_path / "a", "small", 3, progress=False).fingerprint == a.fingerprint
    assert ensure_corpus(tmp_path / "a", "small", 3, progress=False, **tiny).fingerprint == a.fingerprint
    assert (a.path / "corpus.json").stat().st_mtime_ns == stamp
    d = ensure_corpus(tmp_path / "a", "small", 3, progress=False, **{**tiny, "size": 72})
    assert d.fingerprint != a.fingerprint and d.clip().size == (72, 72)
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")]   # no temp folders left


def test_unknown_override_and_preset(tmp_path):
    from talklib.errors import UserError
    from talklib.speaker.build import ensure_corpus

    with pytest.raises(UserError, match="unknown corpus parameter 'sise'"):
        ensure_corpus(tmp_path / "x", "small", 0, sise=64)
    with pytest.raises(UserError, match="unknown preset 'medium'"):
        ensure_corpus(tmp_path / "x", "medium", 0)
