"""Action-unit accuracy (NeRF-3DTalker's "AU Acc") and a landmark-based detector for lip AUs.

``au_accuracy(pred, gt)`` is the fraction of (frame, AU) entries where the predicted on/off label equals
the ground truth — the synthetic speaker's ``au_label`` (T, 10) for notebooks, or the reference video's
detected labels in ``python -m talklib eval``.

``lip_aus_from_landmarks`` detects four AUs from mediapipe landmarks by geometry, relative to a neutral
(median) face of the *reference* video so both videos are judged on one scale:
AU20 lip stretcher (mouth width up), AU25 lips part (inner lip gap), AU26 jaw drop (outer lip opening),
AU45 blink (eye aspect ratio down). Distances are divided by the inter-ocular distance.
``calibrate_lip_aus`` fits the four thresholds to labelled frames; notebook 04 fits them on the
synthetic speaker's training clip and measures them on its held-out clips. ``DEFAULT_THRESHOLDS`` are that fit on
the small preset's training clip (seed 0); for real faces, calibrate on labelled frames.
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


#: Thresholds of ``lip_aus_from_landmarks``; ``calibrate_lip_aus`` fits them to labelled frames.
DEFAULT_THRESHOLDS = {"width_gain": 0.074, "gap": 0.015, "opening_gain": 0.024, "ear_ratio": 0.813}


def _scores(landmarks, neutral_from=None) -> np.ndarray:
    """(T, 4) detector scores, each "on" above its threshold (EAR negated so that holds for AU45 too)."""
    f = _lip_features(landmarks)
    ref = _lip_features(neutral_from if neutral_from is not None else landmarks)
    neutral = np.nanmedian(ref, axis=0)
    open_eye = np.nanpercentile(ref[:, 3], 90)
    return np.stack([f[:, 0] / neutral[0] - 1, f[:, 1], f[:, 2] / neutral[2] - 1, -f[:, 3] / open_eye], axis=1)


def lip_aus_from_landmarks(landmarks, neutral_from=None, thresholds: dict[str, float] | None = None) -> np.ndarray:
    """Binary (T, 4) labels for ``LANDMARK_AUS`` from landmarks (T, 478, 2).

    ``neutral_from``: landmarks whose per-feature median defines the neutral face (default: the same);
    AU20 = width > (1 + width_gain) x neutral, AU25 = inner gap > ``gap`` IOD,
    AU26 = outer opening > (1 + opening_gain) x neutral, AU45 = EAR < ``ear_ratio`` x open-eye level.
    ``thresholds`` defaults to ``DEFAULT_THRESHOLDS``; fit them with ``calibrate_lip_aus``.
    """
    t = {**DEFAULT_THRESHOLDS, **(thresholds or {})}
    cut = np.array([t["width_gain"], t["gap"], t["opening_gain"], -t["ear_ratio"]])
    with np.errstate(invalid="ignore"):
        return (_scores(landmarks, neutral_from) > cut).astype(np.uint8)


def calibrate_lip_aus(landmarks, labels) -> dict[str, float]:
    """Thresholds that make ``lip_aus_from_landmarks`` agree best with labels (T, 4) on these frames.

    Each AU's threshold is chosen among its score's quantiles to maximise frame accuracy on the given
    (training) frames; measure the result on other clips.
    """
    s, y = _scores(landmarks), np.asarray(labels) > 0.5
    if s.shape != y.shape:
        raise UserError(f"labels must be (T, {len(LANDMARK_AUS)}) for {LANDMARK_AUS}, not {y.shape}")
    best = []
    for k in range(s.shape[1]):
        finite = s[:, k][np.isfinite(s[:, k])]
        cands = np.unique(np.quantile(finite, np.linspace(0, 1, 201)))
        acc = [np.mean((s[:, k] > c) == y[:, k]) for c in cands]
        best.append(float(cands[int(np.argmax(acc))]))
    return {"width_gain": best[0], "gap": best[1], "opening_gain": best[2], "ear_ratio": -best[3]}
