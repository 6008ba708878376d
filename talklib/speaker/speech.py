"""Speech for the synthetic speaker: utterances (TTS or real audio) -> audio, phone timeline, curves."""

from __future__ import annotations

import numpy as np

from talklib.data.dataset import FPS, SAMPLE_RATE
from talklib.speaker.visemes import mouth_curves

SAMPLES_PER_FRAME = SAMPLE_RATE // FPS   # 640


def join_utterances(parts: list[tuple[np.ndarray, list]], rng: np.random.Generator,
                    lead_s: float = 0.2, pause_s: tuple[float, float] = (0.2, 0.45)):
    """Concatenate (audio, timeline) parts with pauses; pad to whole video frames.

    Returns audio (S,) float32 with S a multiple of 640 samples and the joined timeline (seconds).
    """
    chunks = [np.zeros(int(lead_s * SAMPLE_RATE), np.float32)]
    timeline = [("SIL", 0.0, lead_s)]
    t = lead_s
    for k, (audio, tl) in enumerate(parts):
        if k > 0:
            gap = int(rng.uniform(*pause_s) * SAMPLE_RATE)
            chunks.append(np.zeros(gap, np.float32))
            timeline.append(("SIL", t, t + gap / SAMPLE_RATE))
            t += gap / SAMPLE_RATE
        chunks.append(audio.astype(np.float32))
        timeline += [(p, t + s, t + e) for p, s, e in tl]
        t += len(audio) / SAMPLE_RATE
    audio = np.concatenate(chunks)
    pad = (-len(audio)) % SAMPLES_PER_FRAME + SAMPLES_PER_FRAME * 2
    audio = np.concatenate([audio, np.zeros(pad, np.float32)])
    dur = len(audio) / SAMPLE_RATE
    timeline.append(("SIL", t, dur))
    # merge neighbouring silences, drop empty entries
    merged: list[tuple[str, float, float]] = []
    for p, s, e in timeline:
        if e - s <= 1e-6:
            continue
        if merged and merged[-1][0] == p == "SIL":
            merged[-1] = ("SIL", merged[-1][1], e)
        else:
            merged.append((p, round(s, 5), round(e, 5)))
    return audio, merged


def tts_utterances(rng: np.random.Generator, voice: str, seconds: float, sentences) -> tuple[np.ndarray, list, str]:
    """Speak sentences (drawn without replacement, cycling) with ``voice`` until ``seconds`` are reached."""
    from talklib.audio.tts import synthesize

    order = list(rng.permutation(len(sentences)))
    parts, texts, total = [], [], 0.0
    while total < seconds:
        if not order:
            order = list(rng.permutation(len(sentences)))
        s = sentences[order.pop(0)]
        a, tl = synthesize(s, voice)
        parts.append((a, tl))
        texts.append(s)
        total += len(a) / SAMPLE_RATE + 0.3
    audio, tl = join_utterances(parts, rng)
    return audio, tl, " ".join(texts)


def expression_from_speech(rng: np.random.Generator, timeline, n_frames: int, strength: float,
                           **motion_kw) -> dict[str, np.ndarray]:
    """Ground-truth curves for one clip: exp (T, 79), pose (T, 6), illu (T, 27), blink_rate."""
    from talklib.speaker.motion import spontaneous

    mouth = mouth_curves(timeline, n_frames, FPS, strength=strength)
    extra = spontaneous(rng, n_frames, timeline, FPS, **motion_kw)
    exp = extra["exp_extra"].copy()
    exp[:, :mouth.shape[1]] += mouth
    exp[:, :mouth.shape[1]] = np.clip(exp[:, :mouth.shape[1]], 0.0, 1.0)
    return {"exp": exp.astype(np.float32), "pose": extra["pose"], "illu": extra["illu"],
            "blink_rate": extra["blink_rate"]}
