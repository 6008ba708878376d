"""Toy speech with exactly known phones, F0 and mouth motion (for tests and quick experiments).

Additive formant synthesis: a harmonic source at a chosen F0 contour, each harmonic weighted by a
formant envelope that moves from phone to phone; fricatives are band-passed noise, stops a short
closure and a burst, SIL is silence. Each phone also has a mouth target (jaw open, lips part, pucker,
stretch) that is smoothed over time into an ``exp`` (N, 79) array in talklib.face3d's layout, so
the toy drives the same audio / sync code as the synthetic speaker's corpus, seconds instead of
minutes to make. Not a substitute for the corpus (which uses espeak-ng TTS and a real recording).
"""

from __future__ import annotations

import numpy as np

from talklib.data.dataset import EXP_NAMES, Phoneme

SR = 16000
# phone: (kind, F1, F2, F3, jaw_open, lips_part, lip_pucker, lip_stretch)
TOY_PHONES = {
    "AA": ("v", 730, 1090, 2440, 0.9, 0.9, 0.0, 0.1),
    "IY": ("v", 270, 2290, 3010, 0.2, 0.5, 0.0, 0.9),
    "UW": ("v", 300, 870, 2240, 0.2, 0.3, 0.9, 0.0),
    "EH": ("v", 530, 1840, 2480, 0.5, 0.7, 0.0, 0.5),
    "AO": ("v", 570, 840, 2410, 0.6, 0.6, 0.5, 0.0),
    "ER": ("v", 490, 1350, 1690, 0.4, 0.5, 0.3, 0.0),
    "M": ("n", 280, 1000, 2200, 0.05, 0.0, 0.1, 0.0),
    "N": ("n", 280, 1700, 2600, 0.2, 0.3, 0.0, 0.1),
    "S": ("f", 5000, 7000, 0, 0.1, 0.2, 0.0, 0.4),
    "SH": ("f", 2500, 3500, 0, 0.15, 0.3, 0.5, 0.0),
    "F": ("f", 1500, 6000, 0, 0.1, 0.1, 0.0, 0.0),
    "P": ("s", 500, 1500, 0, 0.0, 0.0, 0.0, 0.0),
    "T": ("s", 3000, 5000, 0, 0.15, 0.2, 0.0, 0.1),
    "K": ("s", 1500, 2500, 0, 0.2, 0.2, 0.0, 0.0),
    "SIL": ("x", 0, 0, 0, 0.0, 0.0, 0.0, 0.0),
}
_MOUTH_COLS = [EXP_NAMES.index(n) for n in ("jaw_open", "lips_part", "lip_pucker", "lip_stretch")]


def toy_utterance(seconds: float, seed: int, f0_mean: float = 140.0, rate: float = 1.0,
                  phones: list[str] | None = None, fps: int = 25) -> dict:
    """A toy utterance about ``seconds`` long.

    Returns ``audio`` (T,) float32 16 kHz, ``phonemes`` (list of Phoneme), ``f0`` (T,) Hz of the source
    (0 where unvoiced), ``exp`` (N, 79) mouth expression at ``fps``, ``n_frames``.
    ``phones``: a fixed phone sequence (else random); ``rate`` scales the speaking rate.
    """
    rng = np.random.default_rng(seed)
    names = [p for p in TOY_PHONES if p != "SIL"]
    seq, durs, t = [], [], 0.15
    seq.append("SIL"), durs.append(0.15)
    k = 0
    while (phones is None and t < seconds - 0.2) or (phones is not None and k < len(phones)):
        p = phones[k] if phones is not None else names[int(rng.integers(len(names)))]
        kind = TOY_PHONES[p][0]
        d = {"v": 0.14, "n": 0.09, "f": 0.11, "s": 0.08, "x": 0.15}[kind] * float(rng.uniform(0.7, 1.4)) / rate
        seq.append(p), durs.append(d)
        t += d
        k += 1
    seq.append("SIL"), durs.append(max(0.15, seconds - t))
    bounds = np.concatenate([[0.0], np.cumsum(durs)])
    total = int(round(bounds[-1] * SR))
    ts = np.arange(total) / SR
    idx = np.clip(np.searchsorted(bounds, ts, side="right") - 1, 0, len(seq) - 1)
    kinds = np.array([TOY_PHONES[p][0] for p in seq])[idx]
    form = np.array([TOY_PHONES[p][1:4] for p in seq], np.float64)[idx]
    # smooth the formant tracks (20 ms) so transitions glide
    ker = np.hanning(321) / np.hanning(321).sum()
    form = np.stack([np.convolve(np.pad(form[:, j], 160, mode="edge"), ker, "valid") for j in range(3)], 1)
    # F0: declining contour with a little vibrato, per-utterance offset
    f0 = f0_mean * (1.1 - 0.2 * ts / max(ts[-1], 1e-3)) * (1 + 0.03 * np.sin(2 * np.pi * 4.0 * ts + rng.uniform(0, 6)))
    voiced = np.isin(kinds, ["v", "n"])
    phase = 2 * np.pi * np.cumsum(f0) / SR
    src = np.zeros(total)
    for h in range(1, int(4000 / f0.min()) + 1):
        fh = h * f0
        env = sum(1.0 / (1.0 + ((fh - form[:, j]) / (60.0 + 0.05 * form[:, j])) ** 2) for j in range(3)) / h ** 0.5
        src += env * np.sin(h * phase) * (fh < SR / 2 - 200)
    src = src / (np.abs(src).max() + 1e-9) * 0.5
    nasal = kinds == "n"
    audio = np.where(voiced, src * np.where(nasal, 0.4, 1.0), 0.0)
    # fricatives and bursts: band-passed noise
    from scipy.signal import butter, sosfilt

    noise = rng.standard_normal(total)
    fric = np.zeros(total)
    for p in ("S", "SH", "F", "T", "K", "P"):
        sel = np.array([q == p for q in seq])[idx]
        if sel.any():
            lo, hi = TOY_PHONES[p][1], min(TOY_PHONES[p][2], SR / 2 - 100)
            band = sosfilt(butter(4, [lo / (SR / 2), hi / (SR / 2)], btype="band", output="sos"), noise)
            fric += np.where(sel, band, 0.0)
    # stops: closure (silence) for the first 60%, then the burst
    stop = kinds == "s"
    start_of = bounds[idx]
    frac = (ts - start_of) / np.maximum(np.asarray(durs)[idx], 1e-6)
    fric = np.where(stop & (frac < 0.6), 0.0, fric)
    audio = audio + 0.25 * fric / (np.abs(fric).max() + 1e-9)
    fade = np.minimum(1.0, np.minimum(ts, ts[-1] - ts) / 0.01)
    audio = (audio * fade).astype(np.float32)
    # mouth: per-phone targets, smoothed with 60 ms
    n_frames = int(round(total / SR * fps))
    centres = (np.arange(n_frames) + 0.5) / fps
    fidx = np.clip(np.searchsorted(bounds, centres, side="right") - 1, 0, len(seq) - 1)
    targets = np.array([TOY_PHONES[p][4:8] for p in seq], np.float32)[fidx]
    k3 = np.array([0.25, 0.5, 0.25])
    targets = np.stack([np.convolve(np.pad(targets[:, j], 1, mode="edge"), k3, "valid") for j in range(4)], 1)
    exp = np.zeros((n_frames, 79), np.float32)
    exp[:, _MOUTH_COLS] = targets
    phonemes = [Phoneme(p, float(bounds[i]), float(bounds[i + 1])) for i, p in enumerate(seq)]
    return {"audio": audio, "phonemes": phonemes, "f0": np.where(voiced, f0, 0.0).astype(np.float32),
            "exp": exp, "n_frames": n_frames}
