"""Text to speech with phoneme timing: espeak-ng (through espeakng-loader's library) via ctypes.

``synthesize(text, voice)`` returns 16 kHz mono float32 speech and its phone timeline in ARPAbet
(``talklib.data.dataset.PHONES``), from espeak's phoneme events (``audio_position`` in ms). espeak is
deterministic: the same text, voice, rate and pitch give the same samples.

espeak-ng carries synthesis state from one utterance to the next inside the C library, so each call
runs it in a fresh subprocess (synchronous mode, phoneme events on): same arguments, same samples.
"""

from __future__ import annotations

import ctypes

import numpy as np

from talklib.errors import UserError

#: Voices used by the corpus: (espeak voice name, words per minute, base pitch 0..100).
VOICES = {
    "us_m": ("en-us", 160, 45),
    "us_f": ("en-us+f3", 165, 60),
    "gb_m": ("en-gb-x-rp", 150, 40),
    "us_m2": ("en-us+m3", 175, 50),
    "gb_f": ("en+f2", 155, 65),
    "sc_m": ("en-gb-scotland", 145, 35),
}

_EVENT_PHONEME, _EVENT_END = 7, 0


class _Event(ctypes.Structure):
    _fields_ = [("type", ctypes.c_int), ("unique_identifier", ctypes.c_uint), ("text_position", ctypes.c_int),
                ("length", ctypes.c_int), ("audio_position", ctypes.c_int), ("sample", ctypes.c_int),
                ("user_data", ctypes.c_void_p), ("id", ctypes.c_char * 8)]


_CALLBACK = ctypes.CFUNCTYPE(ctypes.c_int, ctypes.POINTER(ctypes.c_short), ctypes.c_int, ctypes.POINTER(_Event))

# espeak-ng English phoneme mnemonics -> ARPAbet (no stress)
_ESPEAK_TO_ARPA = {
    "a": "AE", "a#": "AH", "A:": "AA", "A@": "AA", "aa": "AA", "A": "AA", "aI": "AY", "aI@": "AY", "aI3": "AY",
    "aU": "AW", "aU@": "AW", "@": "AH", "@@": "ER", "@2": "AH", "@5": "AH", "3": "ER", "3:": "ER", "@L": "L",
    "e": "EH", "e@": "EH", "eI": "EY", "E": "EH", "i": "IY", "i:": "IY", "i@": "IY", "i@3": "IY", "I": "IH",
    "I#": "IH", "I2": "IH", "0": "AA", "O": "AO", "O:": "AO", "O@": "AO", "o@": "AO", "oU": "OW", "o": "OW",
    "OI": "OY", "u:": "UW", "u": "UW", "U": "UH", "U@": "UH", "V": "AH", "p": "P", "b": "B", "t": "T",
    "d": "D", "k": "K", "g": "G", "f": "F", "v": "V", "T": "TH", "D": "DH", "s": "S", "z": "Z", "S": "SH",
    "Z": "ZH", "h": "HH", "m": "M", "n": "N", "N": "NG", "l": "L", "r": "R", "r-": "R", "w": "W", "j": "Y",
    "tS": "CH", "dZ": "JH", "t#": "T", "d#": "D", "?": "T", "x": "HH", "n-": "N", "m-": "M", "l-": "L",
    "a2": "AH", "e#": "EH", "IR": "IH", "VR": "AH", "i2": "IY",
}


def to_arpabet(mnemonic: str) -> str:
    """Map one espeak phoneme mnemonic to an ARPAbet phone of ``PHONES`` ("SIL" for pauses)."""
    m = mnemonic.strip().lstrip("',%=")
    if not m or m.startswith("_"):
        return "SIL"
    if m in _ESPEAK_TO_ARPA:
        return _ESPEAK_TO_ARPA[m]
    for k in (m[:3], m[:2], m[:1]):
        if k in _ESPEAK_TO_ARPA:
            return _ESPEAK_TO_ARPA[k]
    return "SIL"


def _synth_raw(text: str, voice: str, wpm: int, pitch: int) -> tuple[np.ndarray, int, list]:
    """Run espeak-ng in *this* process: (int16 PCM, sample rate, [(ms, mnemonic)]). Call it in a fresh process:
    espeak carries synthesis state from one utterance to the next, so only a first call is reproducible."""
    import espeakng_loader

    lib = ctypes.CDLL(espeakng_loader.get_library_path())
    lib.espeak_Initialize.argtypes = [ctypes.c_int, ctypes.c_int, ctypes.c_char_p, ctypes.c_int]
    rate = lib.espeak_Initialize(2, 0, espeakng_loader.get_data_path().encode(), 1)  # SYNCHRONOUS, phoneme events
    if rate <= 0:
        raise RuntimeError("espeak-ng failed to initialise")
    lib.espeak_SetVoiceByName.argtypes = [ctypes.c_char_p]
    lib.espeak_SetParameter.argtypes = [ctypes.c_int, ctypes.c_int, ctypes.c_int]
    lib.espeak_SetSynthCallback.argtypes = [_CALLBACK]
    lib.espeak_Synth.argtypes = [ctypes.c_void_p, ctypes.c_size_t, ctypes.c_uint, ctypes.c_int, ctypes.c_uint,
                                 ctypes.c_uint, ctypes.c_void_p, ctypes.c_void_p]
    pcm: list[np.ndarray] = []
    events: list[tuple[int, str]] = []

    def cb(wav, n, ev):
        if n > 0:
            pcm.append(np.ctypeslib.as_array(wav, shape=(n,)).copy())
        i = 0
        while ev[i].type != _EVENT_END:
            if ev[i].type == _EVENT_PHONEME:
                events.append((ev[i].audio_position, ev[i].id.decode("ascii", "replace")))
            i += 1
        return 0

    cfunc = _CALLBACK(cb)
    # some voice variants add noise (breath): seed both generators espeak may draw from
    ctypes.CDLL(None).srand(0)
    if hasattr(lib, "espeak_ng_SetRandSeed"):
        lib.espeak_ng_SetRandSeed(ctypes.c_long(0))
    if lib.espeak_SetVoiceByName(voice.encode()) != 0:
        raise ValueError(f"voice {voice!r}")
    lib.espeak_SetParameter(1, int(wpm), 0)     # espeakRATE
    lib.espeak_SetParameter(3, int(pitch), 0)   # espeakPITCH
    lib.espeak_SetSynthCallback(cfunc)
    buf = ctypes.create_string_buffer(text.encode("utf-8"))
    lib.espeak_Synth(buf, len(buf), 0, 0, 0, 1, None, None)   # POS_CHARACTER, espeakCHARS_UTF8
    return (np.concatenate(pcm) if pcm else np.zeros(0, np.int16)), rate, events


def _worker() -> None:
    """``python -m talklib.audio.tts``: read a JSON request on stdin, write one JSON line + PCM bytes."""
    import json
    import sys

    req = json.loads(sys.stdin.read())
    try:
        pcm, rate, events = _synth_raw(req["text"], req["voice"], req["wpm"], req["pitch"])
    except ValueError as e:
        sys.stdout.write(json.dumps({"error": str(e)}) + "\n")
        return
    sys.stdout.write(json.dumps({"rate": rate, "events": events, "n": int(pcm.size)}) + "\n")
    sys.stdout.flush()
    sys.stdout.buffer.write(pcm.astype("<i2").tobytes())


def synthesize(text: str, voice: str = "us_m", rate_wpm: int | None = None, pitch: int | None = None
               ) -> tuple[np.ndarray, list[tuple[str, float, float]]]:
    """Speak ``text`` with one of ``VOICES`` (or a raw espeak voice name). Deterministic.

    Returns audio (S,) float32 at 16 kHz and the phone timeline [(phone, start_s, end_s)] covering
    [0, S/16000] (pauses as "SIL"). Each call runs espeak in a fresh subprocess (~0.1 s) so that the
    same arguments always give the same samples.
    """
    import json
    import subprocess
    import sys

    from scipy.signal import resample_poly

    if not isinstance(text, str) or not text.strip():
        raise UserError("the text to speak is empty: pass some words with --text \"...\"")
    name, wpm, base_pitch = VOICES.get(voice, (voice, 160, 50))
    req = {"text": text, "voice": name, "wpm": int(rate_wpm or wpm), "pitch": int(base_pitch if pitch is None else pitch)}
    proc = subprocess.run([sys.executable, "-m", "talklib.audio.tts"], input=json.dumps(req).encode(),
                          capture_output=True, check=False)
    if proc.returncode != 0:
        raise UserError(f"espeak-ng failed ({proc.stderr.decode(errors='replace').strip().splitlines()[-1:]}): "
                        f"check that espeakng-loader is installed")
    head, _, body = proc.stdout.partition(b"\n")
    meta = json.loads(head)
    if "error" in meta:
        raise UserError(f"espeak voice {name!r} is not available: choose one of {', '.join(VOICES)}")
    pcm = np.frombuffer(body[:2 * meta["n"]], "<i2")
    audio = pcm.astype(np.float32) / 32768.0
    if audio.size == 0:
        raise UserError(f"espeak produced no audio for {text[:40]!r}: pass words it can pronounce")
    rate = int(meta["rate"])
    audio = resample_poly(audio, 320, 441).astype(np.float32) if rate == 22050 else _resample(audio, rate)
    dur = len(audio) / 16000.0
    timeline: list[tuple[str, float, float]] = []
    starts = [(t / 1000.0, to_arpabet(m)) for t, m in meta["events"]]
    for k, (t0, ph) in enumerate(starts):
        t1 = starts[k + 1][0] if k + 1 < len(starts) else dur
        t0, t1 = min(t0, dur), min(t1, dur)
        if t1 <= t0:
            continue
        if timeline and timeline[-1][0] == ph == "SIL":
            timeline[-1] = (ph, timeline[-1][1], t1)
        else:
            timeline.append((ph, t0, t1))
    if not timeline or timeline[0][1] > 0:
        timeline.insert(0, ("SIL", 0.0, timeline[0][1] if timeline else dur))
    if timeline[-1][2] < dur:
        timeline.append(("SIL", timeline[-1][2], dur))
    return audio, timeline


def _resample(audio: np.ndarray, rate: int) -> np.ndarray:
    from fractions import Fraction

    from scipy.signal import resample_poly

    fr = Fraction(16000, rate)
    return resample_poly(audio, fr.numerator, fr.denominator).astype(np.float32)


if __name__ == "__main__":
    _worker()
