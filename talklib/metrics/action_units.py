"""Action-unit accuracy (NeRF-3DTalker's "AU Acc") and a landmark-based detector for lip AUs.

``au_accuracy(pred, gt)`` is the fraction of (frame, AU) entries where the predicted on/off label equals
the ground truth — the synthetic speaker's ``au_label`` (T, 10) for notebooks, or the reference video's
detected labels in ``python -m talklib eval``.

``lip_aus_from_landmarks`` detects four AUs from mediapipe landmarks by geometry, relative to a neutral
(median) face of the *reference* video so both videos are judged on one scale:
AU20 lip stretcher (mouth width up), AU25 lips part (inner lip gap), AU26 jaw drop (outer lip opening),
AU45 blink (eye aspect ratio down). Distances are divided by the inter-ocular distance.
The default thresholds were calibrated on the synthetic speaker's training clip (id00_train, ground-truth
AU labels, ``AU_ON_THRESHOLD`` 1.0); on its held-out clips they agree with the truth on ~90 % of
(frame, AU) entries (notebook 05). For real faces, recalibrate them on labelled frames.
"""

from __future__ import annotations

import numpy as np

from talklib.errors import UserError

LANDMARK_AUS = ("AU20", "AU25", "AU26", "AU45")


def au_accuracy(pred, gt) -> float:
    """Mean agreement of binary AU labels (T, K) (any values > 0.5 count as on)."""
    p, g = np.asarray(pred), np.asarray(gt)
    if p.shape != g.shape:
        raise UserError(f"AU label arrays differ in shape {p.shape} vs {g.shape}: give (T, K) for both")
    if p.size == 0:
        raise UserError("AU label arrays are empty: give at least one frame")
    return float(np.mean((p > 0.5) == (g > 0.5)))


def au_accuracy_per_unit(pred, gt, names) -> dict[str, float]:
    p, g = np.asarray(pred) > 0.5, np.asarray(gt) > 0.5
    return {n: float(np.mean(p[:, k] == g[:, k])) for k, n in enumerate(names)}


def _lip_features(lm: np.ndarray) -> np.ndarray:
    """(T, 478, 2) -> (T, 4): mouth width, inner gap, outer opening (all / IOD), EAR."""
    from talklib.metrics.blinks import eye_aspect_ratio

    p = np.asarray(lm, np.float64)[..., :2]
    iod = np.linalg.norm(p[:, 263] - p[:, 33], axis=-1)
    iod = np.maximum(iod, 1e-9)
    width = np.linalg.norm(p[:, 291] - p[:, 61], axis=-1) / iod
    gap = np.linalg.norm(p[:, 14] - p[:, 13], axis=-1) / iod
    opening = np.linalg.norm(p[:, 17] - p[:, 0], axis=-1) / iod
    return np.stack([width, gap, opening, eye_aspect_ratio(p)], axis=1)


def lip_aus_from_landmarks(landmarks, neutral_from=None, width_gain: float = 0.075, gap: float = 0.132,
                           opening_gain: float = 0.008, ear_ratio: float = 0.815) -> np.ndarray:
    """Binary (T, 4) labels for ``LANDMARK_AUS`` from landmarks (T, 478, 2).

    ``neutral_from``: landmarks whose per-feature median defines the neutral face (default: the same);
    AU20 = width > (1 + width_gain) x neutral, AU25 = inner gap > ``gap`` IOD,
    AU26 = outer opening > (1 + opening_gain) x neutral, AU45 = EAR < ``ear_ratio`` x open-eye level.
    """
    f = _lip_features(landmarks)
    ref = _lip_features(neutral_from if neutral_from is not None else landmarks)
    neutral = np.nanmedian(ref, axis=0)
    open_eye = np.nanpercentile(ref[:, 3], 90)
    with np.errstate(invalid="ignore"):
        out = np.stack([f[:, 0] > (1 + width_gain) * neutral[0], f[:, 1] > gap,
                        f[:, 2] > (1 + opening_gain) * neutral[2], f[:, 3] < ear_ratio * open_eye], axis=1)
    return out.astype(np.uint8)
