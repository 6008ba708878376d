"""Phonemes -> visemes -> expression curves, with coarticulation (dominance blending).

Each ARPAbet phone belongs to a viseme (a mouth shape); each viseme is a target for the named mouth
components of the expression (``talklib.data.dataset.EXP_NAMES``). Speech does not jump from target
to target: neighbouring phones overlap. We use Cohen & Massaro's dominance model: phone i has a
dominance D_i(t) = α_i exp(-θ |t - c_i|) around its centre c_i, and each component follows
x(t) = Σ_i D_i(t) T_i / Σ_i D_i(t). Bilabials (P, B, M) dominate strongly, so the lips really close.
"""

from __future__ import annotations

import numpy as np

from talklib.data.dataset import EXP_NAMES

VISEME_OF = {
    "SIL": "rest",
    "P": "PBM", "B": "PBM", "M": "PBM",
    "F": "FV", "V": "FV",
    "TH": "TH", "DH": "TH",
    "T": "TDN", "D": "TDN", "N": "TDN", "L": "TDN", "S": "TDN", "Z": "TDN",
    "SH": "SH", "ZH": "SH", "CH": "SH", "JH": "SH",
    "K": "KG", "G": "KG", "NG": "KG", "HH": "KG", "Y": "IY",
    "R": "R", "W": "W",
    "UW": "UW", "UH": "UW", "OW": "OW", "OY": "OW", "AO": "AO",
    "AA": "AA", "AW": "AA", "AY": "AA",
    "AE": "EH", "AH": "EH", "EH": "EH", "EY": "EH", "ER": "ER",
    "IY": "IY", "IH": "IY",
}

# targets of the mouth components (unlisted = 0) and the viseme's dominance strength
VISEMES: dict[str, tuple[dict[str, float], float]] = {
    "rest": ({}, 0.6),
    "PBM": ({"jaw_open": 0.03, "lip_pucker": 0.1}, 3.0),
    "FV": ({"jaw_open": 0.08, "lips_part": 0.15, "upper_lip_raise": 0.35}, 2.0),
    "TH": ({"jaw_open": 0.18, "lips_part": 0.45}, 1.2),
    "TDN": ({"jaw_open": 0.15, "lips_part": 0.4, "lip_stretch": 0.15}, 0.9),
    "SH": ({"jaw_open": 0.12, "lips_part": 0.35, "lip_funnel": 0.6}, 1.5),
    "KG": ({"jaw_open": 0.25, "lips_part": 0.45}, 0.7),
    "R": ({"jaw_open": 0.14, "lips_part": 0.3, "lip_funnel": 0.35}, 1.0),
    "W": ({"jaw_open": 0.08, "lips_part": 0.2, "lip_pucker": 0.8}, 2.0),
    "UW": ({"jaw_open": 0.15, "lips_part": 0.3, "lip_pucker": 0.65}, 1.5),
    "OW": ({"jaw_open": 0.35, "lips_part": 0.5, "lip_funnel": 0.55}, 1.3),
    "AO": ({"jaw_open": 0.5, "lips_part": 0.6, "lip_funnel": 0.3}, 1.2),
    "AA": ({"jaw_open": 0.65, "lips_part": 0.7}, 1.2),
    "EH": ({"jaw_open": 0.4, "lips_part": 0.55, "lip_stretch": 0.25}, 1.0),
    "ER": ({"jaw_open": 0.25, "lips_part": 0.4, "lip_funnel": 0.35}, 1.0),
    "IY": ({"jaw_open": 0.18, "lips_part": 0.45, "lip_stretch": 0.55, "smile": 0.1}, 1.1),
}
MOUTH_COMPONENTS = ("jaw_open", "lips_part", "lip_funnel", "lip_pucker", "lip_stretch", "smile", "upper_lip_raise")


def viseme(phone: str) -> str:
    """The viseme name of an ARPAbet phone ("rest" for silence or unknown phones)."""
    return VISEME_OF.get(phone, "rest")


def mouth_curves(timeline: list[tuple[str, float, float]], n_frames: int, fps: int = 25,
                 strength: float = 1.0, theta: float = 28.0, lead_s: float = 0.02) -> np.ndarray:
    """Coarticulated mouth curves at frame rate.

    timeline: [(phone, start_s, end_s)]; returns (n_frames, len(EXP_NAMES)) float32 with the mouth
    components filled (others 0). ``strength`` scales articulation (a speaker's style); ``theta``
    (1/s) is the dominance decay; the mouth leads the sound by ``lead_s``.
    """
    out = np.zeros((n_frames, len(EXP_NAMES)), np.float64)
    if not timeline:
        return out.astype(np.float32)
    t = (np.arange(n_frames) + 0.5) / fps + lead_s
    centres = np.array([(s + e) / 2 for _, s, e in timeline])
    halfdur = np.array([max((e - s) / 2, 0.01) for _, s, e in timeline])
    names = [viseme(p) for p, _, _ in timeline]
    alpha = np.array([VISEMES[n][1] for n in names])
    # dominance: flat inside the phone, exponential decay outside
    dist = np.maximum(np.abs(t[:, None] - centres[None]) - halfdur[None] * 0.5, 0.0)
    D = alpha[None] * np.exp(-theta * dist)                        # (T, P)
    D /= D.sum(1, keepdims=True) + 1e-12
    index = {n: i for i, n in enumerate(EXP_NAMES)}
    for comp in MOUTH_COMPONENTS:
        target = np.array([VISEMES[n][0].get(comp, 0.0) for n in names])
        out[:, index[comp]] = D @ target * strength
    return np.clip(out, 0.0, 1.0).astype(np.float32)
