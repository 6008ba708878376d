"""Real human speech: the CMU ARCTIC clip that pysptk ships, with phone timings by forced alignment.

``arctic_a0007.wav`` (pysptk's example, 16 kHz, 4 s) says "And you always want to
see it in the superlative degree." pocketsphinx (its bundled US-English acoustic model and CMU
dictionary) aligns that transcript to the audio at 10 ms resolution. pysptk itself is not imported
(its import needs an old setuptools); the file is found through ``importlib.util.find_spec``.
"""

from __future__ import annotations

import importlib.util
from pathlib import Path

import numpy as np

from talklib.errors import UserError

ARCTIC_NAME = "arctic_a0007"
ARCTIC_TEXT = "and you always want to see it in the superlative degree"


def arctic_path() -> Path:
    """Path of pysptk's bundled ARCTIC clip (UserError if pysptk is not installed)."""
    spec = importlib.util.find_spec("pysptk")
    if spec is None or spec.origin is None:
        raise UserError("pysptk is not installed, so its ARCTIC clip cannot be found: install requirements.txt")
    p = Path(spec.origin).parent / "example_audio_data" / f"{ARCTIC_NAME}.wav"
    if not p.is_file():
        raise UserError(f"the ARCTIC clip {p} is missing from pysptk: reinstall pysptk")
    return p


def forced_align(audio: np.ndarray, text: str, sample_rate: int = 16000) -> list[tuple[str, float, float]]:
    """Align ``text`` to ``audio`` (S,) float32 with pocketsphinx; [(phone, start_s, end_s)], ARPAbet + SIL."""
    try:
        from pocketsphinx import Decoder
    except ImportError as e:  # pragma: no cover
        raise UserError(f"pocketsphinx is not installed ({e}): install requirements.txt") from None
    pcm = (np.clip(audio, -1, 1) * 32767).astype("<i2").tobytes()
    dec = Decoder(samprate=sample_rate, loglevel="FATAL", lm=None)   # aligning needs no language model
    dec.set_align_text(text.lower())
    dec.start_utt()
    dec.process_raw(pcm, full_utt=True)
    dec.end_utt()
    dec.set_alignment()
    dec.start_utt()
    dec.process_raw(pcm, full_utt=True)
    dec.end_utt()
    al = dec.get_alignment()
    if al is None:
        raise UserError(f"forced alignment failed for {text[:40]!r}: check that the text matches the speech")
    out = []
    for word in al:
        for ph in word:
            name = "SIL" if ph.name in ("SIL", "+NSN+", "+SPN+") else ph.name
            out.append((name, ph.start / 100.0, (ph.start + ph.duration) / 100.0))
    dur = len(audio) / sample_rate
    if out and out[-1][2] < dur:
        out.append(("SIL", out[-1][2], dur))
    return out


def load_arctic() -> tuple[np.ndarray, list[tuple[str, float, float]], str]:
    """The ARCTIC clip: audio (S,) float32 16 kHz, its aligned phone timeline, and its transcript."""
    import soundfile as sf

    audio, sr = sf.read(str(arctic_path()), dtype="float32")
    if sr != 16000:
        raise UserError(f"the ARCTIC clip is {sr} Hz, expected 16000: reinstall pysptk")
    if audio.ndim > 1:
        audio = audio.mean(1)
    return audio.astype(np.float32), forced_align(audio, ARCTIC_TEXT, sr), ARCTIC_TEXT


def recognize_phones(audio: np.ndarray, sample_rate: int = 16000) -> list[tuple[str, float, float]]:
    """Phone timeline of any speech (no transcript) by pocketsphinx's phone-loop decoder.

    audio (S,) float32 at 16 kHz -> [(phone, start_s, end_s)] in ARPAbet + SIL, covering the audio.
    """
    import os

    from pocketsphinx import Decoder, get_model_path

    pcm = (np.clip(audio, -1, 1) * 32767).astype("<i2").tobytes()
    dec = Decoder(samprate=sample_rate, loglevel="FATAL", lm=None,
                  allphone=os.path.join(get_model_path(), "en-us", "en-us-phone.lm.bin"),
                  lw=2.0, pip=0.3, beam=1e-20, pbeam=1e-20)
    dec.start_utt()
    dec.process_raw(pcm, full_utt=True)
    dec.end_utt()
    out = []
    for seg in dec.seg():
        name = seg.word.upper()
        name = "SIL" if name in ("SIL", "+NSN+", "+SPN+", "<SIL>", "+BREATH+") else name
        s, e = seg.start_frame / 100.0, (seg.end_frame + 1) / 100.0
        if out and out[-1][0] == name == "SIL":
            out[-1] = ("SIL", out[-1][1], e)
        else:
            out.append((name, s, e))
    dur = len(audio) / sample_rate
    if not out:
        return [("SIL", 0.0, dur)]
    if out[-1][2] < dur:
        out.append(("SIL", out[-1][2], dur))
    return out
