"""Landmark distances, blinks per second, AU accuracy, head-pose distances: known answers."""

import numpy as np
import pytest

from talklib.errors import UserError
from talklib.metrics.action_units import au_accuracy, calibrate_lip_aus, lip_aus_from_landmarks
from talklib.metrics.blinks import LEFT_EYE, RIGHT_EYE, blink_events, blinks_per_second, eye_aspect_ratio
from talklib.metrics.landmarks import LIPS_80, MOUTH_40, f_lmd, lmd_79, m_lmd
from talklib.metrics.pose import d_pos, d_rot, euler_to_rotation, pose_from_landmarks, rotation_to_euler


def _face(t=10, seed=0):
    rng = np.random.default_rng(seed)
    return np.repeat(rng.uniform(50, 200, (1, 478, 2)), t, axis=0)


def test_lmd_known_shift_and_scale():
    ref = _face()
    moved = ref + np.array([3.0, 4.0])  # whole face shifted by 5 px
    assert f_lmd(moved, ref) == pytest.approx(5.0)
    assert m_lmd(moved, ref) == pytest.approx(0.0, abs=1e-9)  # mouth is mean-centred: shape unchanged
    assert lmd_79(ref, ref) == 0.0
    wide = ref.copy()  # mouth 2x larger around its centre: each point moves by its distance to the centre
    for idx in (list(MOUTH_40),):
        c = ref[:, idx].mean(axis=1, keepdims=True)
        wide[:, idx] = c + 2 * (ref[:, idx] - c)
    want = np.linalg.norm(ref[:, list(MOUTH_40)] - ref[:, list(MOUTH_40)].mean(axis=1, keepdims=True), axis=-1).mean()
    assert m_lmd(wide, ref) == pytest.approx(want)
    assert len(set(LIPS_80)) == 80 and len(set(MOUTH_40)) == 40
    nan = moved.copy()
    nan[0] = np.nan  # frames without a face are skipped
    assert f_lmd(nan, ref) == pytest.approx(5.0)
    with pytest.raises(UserError, match="shape"):
        f_lmd(ref[:5], ref)


def _eyes_landmarks(ear_series):
    """Landmarks whose both eyes have exactly the given aspect ratio per frame."""
    lm = np.zeros((len(ear_series), 478, 2))
    for t, e in enumerate(ear_series):
        for eye, x0 in ((RIGHT_EYE, 0.0), (LEFT_EYE, 100.0)):
            p1, p2, p3, p4, p5, p6 = eye
            lm[t, p1], lm[t, p4] = (x0, 0), (x0 + 30, 0)  # width 30
            h = e * 30  # (|p2-p6| + |p3-p5|) / (2 * 30) = e
            lm[t, p2], lm[t, p6] = (x0 + 10, -h / 2), (x0 + 10, h / 2)
            lm[t, p3], lm[t, p5] = (x0 + 20, -h / 2), (x0 + 20, h / 2)
    return lm


def test_blinks_per_second_known_rate():
    ear = np.full(100, 0.3)  # 4 s at 25 fps
    for start in (10, 40, 80):
        ear[start:start + 3] = 0.05
    lm = _eyes_landmarks(ear)
    np.testing.assert_allclose(eye_aspect_ratio(lm), ear, atol=1e-12)
    assert blink_events(ear) == [(10, 13), (40, 43), (80, 83)]
    assert blinks_per_second(eye_aspect_ratio(lm), fps=25) == pytest.approx(3 / 4.0)
    assert blinks_per_second(np.full(50, 0.3), fps=25) == 0.0
    assert blinks_per_second(ear, fps=25, min_frames=4) == 0.0


def test_au_accuracy_known_and_lip_detector():
    gt = np.array([[1, 0], [1, 1], [0, 0], [0, 1]])
    assert au_accuracy(gt, gt) == 1.0
    assert au_accuracy(1 - gt, gt) == 0.0
    assert au_accuracy(np.array([[1, 0], [1, 1], [1, 1], [0, 1]]), gt) == pytest.approx(6 / 8)
    with pytest.raises(UserError, match="shape"):
        au_accuracy(gt[:2], gt)
    # jaw drop: open the outer lips (0 up, 17 down) on half of the frames
    lm = _face(20, seed=1)
    lm[:, 263], lm[:, 33] = (150, 80), (90, 80)  # IOD 60
    lm[:, 0], lm[:, 17], lm[:, 13], lm[:, 14] = (120, 150), (120, 160), (120, 154), (120, 154)  # lips closed
    lm[10:, 17] = (120, 180)
    lm[10:, 14] = (120, 175)
    aus = lip_aus_from_landmarks(lm, neutral_from=lm[:10])
    assert aus[:10, 2].sum() == 0 and aus[10:, 2].all()  # AU26
    assert aus[:10, 1].sum() == 0 and aus[10:, 1].all()  # AU25: gap 21 px = 0.35 IOD > 0.015
    # thresholds fitted to labels that follow the geometry reproduce them exactly
    labels = np.zeros((20, 4), np.uint8)
    labels[10:, 1:3] = 1
    fitted = calibrate_lip_aus(lm, labels)
    assert au_accuracy(lip_aus_from_landmarks(lm, thresholds=fitted), labels) == 1.0
    with pytest.raises(UserError, match="labels must be"):
        calibrate_lip_aus(lm, labels[:, :2])


def test_pose_known_rotation():
    angles = np.array([[10.0, -5.0, 3.0], [0.0, 0.0, 0.0], [-20.0, 15.0, -7.0]])
    np.testing.assert_allclose(rotation_to_euler(euler_to_rotation(angles)), angles, atol=1e-9)
    rng = np.random.default_rng(0)
    template = rng.normal(0, 50, (478, 3))
    R = euler_to_rotation(angles)
    frames = np.einsum("tij,kj->tki", R, template) + np.array([5.0, -2.0, 1.0])
    rot, pos = pose_from_landmarks(frames, template)
    np.testing.assert_allclose(rot, angles, atol=1e-6)
    ref_rot = np.zeros_like(angles)
    assert d_rot(rot, ref_rot) == pytest.approx(np.abs(angles).mean(), abs=1e-6)
    assert d_pos(pos + np.array([3.0, 4.0, 0.0]), pos) == pytest.approx(5.0)
    assert d_rot(np.array([[179.0, 0, 0]]), np.array([[-179.0, 0, 0]])) == pytest.approx(2 / 3)  # wrapped
    with pytest.raises(UserError, match="shapes"):
        d_rot(rot[:2], rot)
