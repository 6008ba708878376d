"""Personal motion styles and the motion-only corpus (DFA-NeRF's pre-training data stand-in)."""

import json

import numpy as np
import pytest

from talklib.errors import UserError
from talklib.face3d import topology as topo
from talklib.metrics.blinks import LEFT_EYE, RIGHT_EYE, blinks_per_second, eye_aspect_ratio
from talklib.speaker.motion import DEFAULT_MOTION, MotionStyle, draw_motion_style, spontaneous
from talklib.speaker.motion_corpus import ensure_motion_corpus, load_motion_corpus

TIMELINE = [("SIL", 0.0, 0.3), ("AA", 0.3, 1.5), ("SIL", 1.5, 2.0), ("B", 2.0, 6.0), ("SIL", 6.0, 8.0)]


def test_landmark_layout():
    assert len(topo.LANDMARKS_68) == 68 == len(set(topo.LANDMARKS_68))
    assert sorted(topo.MOUTH_REGION_68 + topo.EYE_REGION_68) == list(range(68))
    # the 68 layout's eye points are the EAR points of metrics.blinks, in the same order
    assert tuple(topo.LANDMARKS_68[36:48]) == RIGHT_EYE + LEFT_EYE


def test_default_motion_draws_what_the_corpus_always_drew():
    a = spontaneous(np.random.default_rng(5), 200, TIMELINE)
    b = spontaneous(np.random.default_rng(5), 200, TIMELINE, motion=DEFAULT_MOTION)
    for k in a:
        assert np.asarray(a[k]).tobytes() == np.asarray(b[k]).tobytes()
    # values drawn before MotionStyle existed (commit 547f8c8): the rendered corpus's motion is unchanged
    tl = [("SIL", 0, 0.3), ("AA", 0.3, 1.0), ("SIL", 1.0, 1.4), ("B", 1.4, 2.5), ("SIL", 2.5, 4.0)]
    old = spontaneous(np.random.default_rng(3), 100, tl)
    assert float(old["pose"][50, 0]) == pytest.approx(16.732257843017578, abs=1e-5)
    assert float(old["pose"][50, 1]) == pytest.approx(3.481339931488037, abs=1e-5)
    assert float(old["blink_rate"]) == pytest.approx(0.22569474577903748, abs=1e-7)


def test_motion_style_sets_amplitudes_and_blink_rate():
    still = MotionStyle(yaw_slow=0.5, yaw_fast=0.0, blink_rate=0.1)
    lively = MotionStyle(yaw_slow=5.0, yaw_fast=1.0, blink_rate=0.8)
    n = 25 * 120
    s = spontaneous(np.random.default_rng(0), n, [("SIL", 0.0, n / 25)], motion=still)
    li = spontaneous(np.random.default_rng(0), n, [("SIL", 0.0, n / 25)], motion=lively)
    assert li["pose"][:, 0].std() > 5 * s["pose"][:, 0].std()
    assert float(s["blink_rate"]) == pytest.approx(0.1) and float(li["blink_rate"]) == pytest.approx(0.8)
    rate = lambda c: ((np.diff((c[:, 8] > 0.5).astype(int)) == 1).sum()) / (n / 25)  # noqa: E731
    assert rate(li["exp_extra"]) > 3 * rate(s["exp_extra"])
    styles = [draw_motion_style(np.random.default_rng(k)) for k in range(5)]
    assert len({st.yaw_slow for st in styles}) == 5


def test_motion_corpus_builds_reuses_and_refuses(tmp_path):
    out = tmp_path / "motion"
    c = ensure_motion_corpus(out, identities=3, seconds=5.0, seed=0, pool_sentences=2, voices=1, progress=False)
    assert c.names == ["m000", "m001", "m002"]
    s = c.sequence("m001")
    T = len(s["pose"])
    assert s["landmarks"].shape == (T, 68, 3) and s["exp"].shape == (T, 79) and s["mel"].shape == (2 * T, 80)
    assert s["blink"].shape == (T,) and np.isfinite(s["landmarks"]).all()
    # the style written as ground truth is the one that drew the motion: its blink rate is the blinks'
    meta = json.loads((out / "motion.json").read_text())
    assert meta["identities"][1]["style"]["blink_rate"] == pytest.approx(c.identity("m001")["blink_rate_hz"])
    # the eyes close in the landmarks when the blink curve says so
    ear = eye_aspect_ratio(s["landmarks"])
    assert ear[s["blink"] > 0.9].mean() < 0.5 * ear[s["blink"] < 0.05].mean()
    assert blinks_per_second(ear) >= 0
    # identities differ in face shape and style
    s0 = c.sequence("m000")
    assert np.abs(s0["landmarks"][0] - s["landmarks"][0]).max() > 1e-3
    # reused as it is (same parameters), rebuilt byte-identically when asked again elsewhere
    mtime = (out / "motion.json").stat().st_mtime_ns
    assert ensure_motion_corpus(out, 3, 5.0, 0, 2, 1, progress=False).path == out
    assert (out / "motion.json").stat().st_mtime_ns == mtime
    again = ensure_motion_corpus(tmp_path / "again", 3, 5.0, 0, 2, 1, progress=False)
    assert np.array_equal(again.sequence("m002")["pose"], c.sequence("m002")["pose"])
    with pytest.raises(UserError, match="unknown identity"):
        c.sequence("m099")
    foreign = tmp_path / "foreign"
    foreign.mkdir()
    (foreign / "notes.txt").write_text("mine")
    with pytest.raises(UserError, match="not a motion corpus"):
        ensure_motion_corpus(foreign, 3, 5.0, 0, 2, 1, progress=False)
    assert (foreign / "notes.txt").read_text() == "mine"
    with pytest.raises(UserError, match="at least 2 identities"):
        ensure_motion_corpus(tmp_path / "x", 1, 5.0, 0, 2, 1, progress=False)
    with pytest.raises(UserError, match="not a motion corpus"):
        load_motion_corpus(tmp_path / "nothing")
