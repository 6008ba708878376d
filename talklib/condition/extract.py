"""Learned audio features from a wav alone, with the networks that made the training features.

Notebook 02 trains SpeechSplit (``aud_ssplit``: a_c | a_r | a_p), the DeepSpeech-like recogniser
(``aud_phon_win``) and the contrastive audio encoder (``aud_sync``: DFA-NeRF's f_a), writes their
features into every clip folder and, next to them, the networks themselves as ``aud_extractors.pt``
(``save_bundle``). A NeRF trained on those features carries the bundle in its checkpoint, so
``python -m talklib render`` recomputes exactly the same kind of features from any driving audio
(``features_from_audio``). Mel and MFCC need no network (``talklib.audio.features``). Notebook 06 adds
NeRF-3DTalker's disentanglement module to the same file (key ``"prior"``,
``talklib.condition.disentangle``): it makes the prior parts ``f_exp_aud`` / ``f_exp_style`` from a wav.
DFA-NeRF's eye-blink embedding ``f_e`` is not made here: a wav alone does not determine it (a motion generator
samples it, ``talklib.motion``).
"""

from __future__ import annotations

import dataclasses
from pathlib import Path

import numpy as np
import torch

from talklib import checkpoint
from talklib.audio import features as F
from talklib.condition.audionet import WINDOW
from talklib.condition.spec import Part
from talklib.errors import UserError

FORMAT = "talklib-audio-features-1"
BUNDLE_NAME = "aud_extractors.pt"
#: the shortest driving audio an audio-conditioned field takes: one 16-step window, 320 ms
MIN_FRAMES = WINDOW // 2


def _state(m) -> dict:
    return {k: v.detach().cpu() for k, v in m.state_dict().items()}


def make_bundle(speechsplit=None, recognizer=None, audio_encoder=None, f0_stats=None,
                f0_range=F.DEFAULT_F0_RANGE) -> dict:
    """The feature networks as a dict of configs and weights (``torch.load(weights_only=True)``-safe).

    f0_stats: (mean, std) of the speaker's log-F0, SpeechSplit's per-speaker normalisation."""
    b = {"format": FORMAT, "f0_range": [float(f0_range[0]), float(f0_range[1])],
         "f0_stats": None if f0_stats is None else [float(f0_stats[0]), float(f0_stats[1])]}
    if speechsplit is not None:
        b["speechsplit"] = {"config": dataclasses.asdict(speechsplit.cfg), "state": _state(speechsplit)}
    if recognizer is not None:
        b["recognizer"] = {"config": {"hidden": int(recognizer.rnn.hidden_size * 2)}, "state": _state(recognizer)}
    if audio_encoder is not None:
        b["audio_encoder"] = audio_encoder.to_blob()
    return b


def save_bundle(path: str | Path, bundle: dict) -> Path:
    """Write the bundle atomically (``talklib.checkpoint``)."""
    return checkpoint.save(path, bundle)


def load_bundle(path: str | Path) -> dict:
    """Read a bundle written by ``save_bundle``, checked (``talklib.checkpoint``: a missing, damaged or
    foreign file is a one-line error)."""
    b = checkpoint.load(path, "feature-network file", required_keys=("format",),
                        fix="run notebook 02 again to rewrite it (python -m talklib reproduce --only 02)")
    if b.get("format") != FORMAT:
        raise UserError(f"{path} is not a talklib feature-network file (format {b.get('format')!r}): run notebook 02 "
                        "again to rewrite it")
    return b


NETWORK_OF = {"ssplit": "speechsplit", "phon_win": "recognizer", "sync": "audio_encoder",
              "expaud": "prior", "expstyle": "prior"}
#: what writes each network into the bundle (for the error when one is missing)
WRITER = {"speechsplit": "notebook 02", "recognizer": "notebook 02", "audio_encoder": "notebook 02",
          "prior": "notebook 06"}


def needed(parts: list[Part]) -> list[str]:
    """The networks (bundle keys) the audio and prior parts need."""
    return sorted({NETWORK_OF[p.cond.feature] for p in parts if p.from_audio and p.cond.feature in NETWORK_OF})


def subset(bundle: dict | None, parts: list[Part], where: str = "") -> dict:
    """Only the networks ``parts`` need (what a checkpoint carries); a missing one is a one-line error."""
    want = needed(parts)
    if not want:
        return {"format": FORMAT, "f0_range": list(F.DEFAULT_F0_RANGE), "f0_stats": None}
    if bundle is None:
        raise UserError(f"conditions {', '.join(p.name for p in parts if p.from_audio)} need the feature networks "
                        f"{BUNDLE_NAME}{' in ' + where if where else ''}: "
                        f"{' and '.join(sorted({WRITER[k] for k in want}))} write them next to the features")
    miss = [k for k in want if k not in bundle]
    if miss:
        raise UserError(f"{BUNDLE_NAME}{' in ' + where if where else ''} lacks {', '.join(miss)}: run "
                        f"{' and '.join(sorted({WRITER[k] for k in miss}))} again")
    return {k: v for k, v in bundle.items() if k in ("format", "f0_range", "f0_stats", *want)}


def clip_networks(clip, parts: list[Part]) -> dict:
    """The feature networks ``parts`` need, from the clip folder's ``aud_extractors.pt`` (``subset``)."""
    path = Path(clip.path) / BUNDLE_NAME
    return subset(load_bundle(path) if path.is_file() else None, parts, str(clip.path))


def features_from_audio(audio: np.ndarray, parts: list[Part], bundle: dict, n_frames: int | None = None
                        ) -> dict[str, np.ndarray]:
    """The ``aud_<kind>`` arrays of 16 kHz mono audio that the audio and prior parts need, one row per 40 ms
    frame."""
    from talklib.audio import speechsplit as SS
    from talklib.audio.contrastive import AudioEncoder
    from talklib.audio.recognizer import PhonemeRecognizer, posterior_windows

    n = F.n_video_frames(len(audio)) if n_frames is None else int(n_frames)
    if n < MIN_FRAMES:
        raise UserError(f"audio is {len(audio) / F.SAMPLE_RATE:.2f} s long: an audio-conditioned field needs at "
                        f"least {MIN_FRAMES / F.FPS:.2f} s (one {WINDOW}-step window)")
    x = F.fit_length(np.asarray(audio, np.float32), n)
    kinds = {p.cond.feature for p in parts if p.from_audio}
    f0_range = tuple(bundle.get("f0_range") or F.DEFAULT_F0_RANGE)
    stats = tuple(bundle["f0_stats"]) if bundle.get("f0_stats") else None
    out = {}
    if kinds & {"mfcc_win", "mel_win", "sync"}:
        base = F.compute_features(x, n, f0_range=f0_range, speaker_f0_stats=stats)
        out.update({k: base[k] for k in ("mfcc_win", "mel_win") if k in kinds})
    with torch.no_grad():
        if "phon_win" in kinds:
            rec = PhonemeRecognizer(**bundle["recognizer"]["config"])
            rec.load_state_dict(bundle["recognizer"]["state"])
            out["phon_win"] = posterior_windows(rec.eval(), F.mel_stream(x, n))
        if "ssplit" in kinds:
            ss = SS.SpeechSplit(SS.SpeechSplitConfig(**bundle["speechsplit"]["config"]))
            ss.load_state_dict(bundle["speechsplit"]["state"])
            inp = SS.speechsplit_inputs(x, stats, f0_range)
            codes = SS.codes_per_frame(SS.codes_of(ss.eval(), inp["mel"], inp["f0_onehot"]), n)
            out["ssplit"] = np.concatenate([codes["content"], codes["rhythm"], codes["pitch"]], 1)
        if "sync" in kinds:
            enc = AudioEncoder.from_blob(bundle["audio_encoder"])
            out["sync"] = enc(torch.from_numpy(base["mel_win"])).numpy()
    if kinds & {"expaud", "expstyle"}:
        from talklib.condition.disentangle import prior_from_audio

        out.update(prior_from_audio(bundle["prior"], x, n))
    return out
