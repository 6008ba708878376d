"""The audio side of a corpus: utterances, their features, and the train / held-out split.

Notebook 02 (and any later notebook that needs audio features) goes through here:

- :func:`utterances_from_corpus` lists the corpus's speech-only clips and rendered clips as
  :class:`Utterance` records (audio, phone timeline, ground-truth expression, voice, split);
- :func:`analyse` computes everything the audio models need once per utterance: the frame-aligned
  features of :mod:`talklib.audio.features` (with per-voice F0 statistics, SpeechSplit's speaker
  normalisation), SpeechSplit's mel-rate inputs, the 50 Hz mel stream and phone labels;
- :func:`write_clip_features` writes ``aud_<kind>.npy`` into each clip folder (shapes in its dataset.json).

The held-out split is by utterance: every ``test_every``-th speech clip, plus the
rendered clips' ``testA``/``testB`` splits; the real ARCTIC clip always trains.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from talklib.audio import features as F
from talklib.audio import speechsplit as SS
from talklib.audio.recognizer import stream_labels
from talklib.data.dataset import phoneme_frame_ids


@dataclass
class Utterance:
    """One clip's audio and ground truth. audio (T,) 16 kHz; exp (N, 79) or None; split train/test."""

    name: str
    voice: str
    audio: np.ndarray
    phonemes: list
    n_frames: int
    split: str = "train"
    exp: np.ndarray | None = None
    text: str = ""
    path: Path | None = None
    data: dict = field(default_factory=dict)  # filled by analyse()


def utterances_from_corpus(corpus, test_every: int = 4, include_rendered: bool = True) -> list[Utterance]:
    """Speech-only clips (every ``test_every``-th held out; the ARCTIC recording always trains) and the
    rendered clips (their own split: train, or testA/testB -> test)."""
    out = []
    for k, s in enumerate(corpus.speech()):
        split = "test" if (s.source != "arctic" and test_every > 0 and k % test_every == test_every - 1) else "train"
        out.append(Utterance(s.name, s.voice, s.audio(), s.phonemes(), s.n_frames, split, s.exp(), s.text, s.path))
    if include_rendered:
        for c in corpus.clips():
            split = "train" if c.split == "train" else "test"
            voice = "arctic" if c.source == "arctic" else (c.voice or c.identity)  # testB speaks the ARCTIC recording
            out.append(Utterance(c.name, voice, c.audio(), c.phonemes(), c.n_frames, split,
                                 c.exp(), c.text, c.path))
    return out


def utterances_from_toy(n: int, seconds: float = 3.0, seed: int = 0, n_voices: int = 3,
                        test_every: int = 4) -> list[Utterance]:
    """Toy formant-synthesis utterances (talklib.audio.toy) in ``n_voices`` pitch registers."""
    from talklib.audio.toy import toy_utterance

    f0s = [100.0, 150.0, 220.0, 130.0, 180.0][:n_voices]
    out = []
    for i in range(n):
        v = i % n_voices
        u = toy_utterance(seconds, seed * 1000 + i, f0_mean=f0s[v], rate=1.0 + 0.15 * ((i // n_voices) % 3 - 1))
        split = "test" if test_every > 0 and (i // n_voices) % test_every == test_every - 1 else "train"
        out.append(Utterance(f"toy{i:03d}", f"toy_voice{v}", u["audio"], u["phonemes"], u["n_frames"], split, u["exp"]))
    return out


def analyse(utts: list[Utterance], f0_range: tuple[float, float] = F.DEFAULT_F0_RANGE, progress: bool = True) -> dict:
    """Fill ``u.data`` for every utterance; returns per-voice log-F0 stats and the voice list.

    u.data: ``feats`` (compute_features dict), ``ss`` (SpeechSplit inputs at 62.5 Hz + ``speaker``
    one-hot), ``stream`` (2N, 80) mel at 50 Hz, ``labels50`` (2N,), ``labels`` (N,) phone ids,
    ``f0_norm`` (N,) speaker-normalised F0 per video frame in [0, 1] (-1 unvoiced).
    """
    from tqdm.auto import tqdm

    voices = sorted({u.voice for u in utts})
    # per-voice F0 statistics from the training utterances (SpeechSplit normalises per speaker)
    f0_by_voice: dict[str, list] = {v: [] for v in voices}
    raw_f0 = {}
    for u in tqdm(utts, desc="F0", disable=not progress):
        f0, _ = F.f0_rapt(F.fit_length(u.audio, u.n_frames), f0_range=f0_range)
        raw_f0[u.name] = f0
        if u.split == "train" or not any(w.voice == u.voice and w.split == "train" for w in utts):
            f0_by_voice[u.voice].append(f0)
    stats = {v: F.f0_stats(np.concatenate(f) if f else np.zeros(1)) for v, f in f0_by_voice.items()}
    for u in tqdm(utts, desc="features", disable=not progress):
        x = F.fit_length(u.audio, u.n_frames)
        feats = F.compute_features(x, u.n_frames, f0_range=f0_range, speaker_f0_stats=stats[u.voice])
        ss = SS.speechsplit_inputs(x, stats[u.voice], f0_range)
        onehot = np.zeros(len(voices), np.float32)
        onehot[voices.index(u.voice)] = 1.0
        ss["speaker"] = onehot
        u.data = {
            "feats": feats, "ss": ss, "stream": F.mel_stream(x, u.n_frames),
            "labels50": stream_labels(u.phonemes, u.n_frames), "labels": phoneme_frame_ids(u.phonemes, u.n_frames),
            "f0_norm": F.normalise_f0(feats["f0"], stats[u.voice]),
        }
    return {"f0_stats": stats, "voices": voices}


def write_clip_features(u: Utterance, extra: dict[str, np.ndarray] | None = None) -> list[Path]:
    """Write u's features (and ``extra`` kinds, e.g. ``phon_win``, ``ssplit``, ``sync``) into its clip folder."""
    if u.path is None:
        return []
    return F.write_features(u.path, {**u.data["feats"], **(extra or {})})


def split(utts: list[Utterance]) -> tuple[list[Utterance], list[Utterance]]:
    """(training utterances, held-out utterances)."""
    return [u for u in utts if u.split == "train"], [u for u in utts if u.split != "train"]


def probe_tables(train: list[Utterance], test: list[Utterance], reps: dict) -> dict:
    """Linear-probe tables on held-out utterances, one row per video frame.

    reps: name -> function(Utterance) -> (N, D) representation. Returns ``phone_acc`` (name -> held-out
    phone accuracy), ``f0_r2`` (name -> held-out R² of the speaker-normalised F0 over voiced frames),
    and ``majority`` (always the most frequent training phone). F0 is scored on *stable* voiced frames
    (the frame and both neighbours voiced), where the tracker is reliable."""
    from talklib.audio.probes import majority_accuracy, phoneme_probe, regression_probe

    cat = lambda us, f: np.concatenate([f(u) for u in us])  # noqa: E731
    y_tr, y_te = cat(train, lambda u: u.data["labels"]), cat(test, lambda u: u.data["labels"])
    voiced = lambda f: (lambda u: f(u)[stable_voiced(u.data["f0_norm"])])  # noqa: E731
    f0 = lambda u: u.data["f0_norm"]  # noqa: E731
    out = {"phone_acc": {}, "f0_r2": {}, "majority": majority_accuracy(y_tr, y_te)}
    for name, rep in reps.items():
        x_tr, x_te = cat(train, rep), cat(test, rep)
        out["phone_acc"][name] = phoneme_probe(x_tr, y_tr, x_te, y_te)
        out["f0_r2"][name] = regression_probe(cat(train, voiced(rep)), cat(train, voiced(f0)),
                                              cat(test, voiced(rep)), cat(test, voiced(f0)))
    return out


def stable_voiced(f0_norm: np.ndarray) -> np.ndarray:
    """(N,) bool: frames voiced together with both neighbours (voicing edges are where F0 trackers err)."""
    v = np.asarray(f0_norm) >= 0
    out = v.copy()
    out[1:] &= v[:-1]
    out[:-1] &= v[1:]
    return out
