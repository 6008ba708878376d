"""One clip driven by given speech (text through espeak, or a speech file), written atomically."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import numpy as np

from talklib.data.dataset import FPS, SAMPLE_RATE, Clip, load_clip
from talklib.errors import UserError
from talklib.outputs import replace_dir
from talklib.runtime import torch_threads


def synth_clip(out: str | Path, preset: str = "small", seed: int = 0, text: str | None = None,
               audio: str | Path | None = None, identity: int = 0, voice: str | None = None,
               overrides: dict | None = None, device=None) -> Clip:
    """Render one clip folder at ``out`` (replacing it) and return it opened."""
    from talklib.speaker.build import IDENTITY_VOICES, _identity_coeffs, corpus_params
    from talklib.speaker.clip import make_background, parse_views, write_clip
    from talklib.speaker.speech import expression_from_speech, join_utterances

    params = corpus_params(preset, overrides)
    rng = np.random.default_rng([seed, 11, identity])
    if text is not None:
        from talklib.audio.tts import synthesize

        if not text.strip():
            raise UserError("the text to speak is empty: pass some words with --text \"...\"")
        voice = voice or IDENTITY_VOICES[identity % len(IDENTITY_VOICES)]
        a, tl = synthesize(text, voice)
        wav, timeline = join_utterances([(a, tl)], rng)
        meta = {"voice": voice, "text": text, "source": "espeak"}
    elif audio is not None:
        from talklib.audio.arctic import recognize_phones
        from talklib.audio.io import load_audio

        a = load_audio(audio)
        if a.size < SAMPLE_RATE // 10:
            raise UserError(f"{audio} holds less than 0.1 s of audio: pass a longer speech recording")
        wav, timeline = join_utterances([(a, recognize_phones(a))], rng)
        meta = {"voice": "", "text": "", "source": f"audio:{Path(audio).name}"}
    else:
        raise UserError("synth_clip needs text or audio: pass --text \"...\" or --audio WAV")
    n = len(wav) // (SAMPLE_RATE // FPS)
    curves = expression_from_speech(rng, timeline, n, 1.0, lighting_drift=params["lighting_drift"])
    id_c, alb_c = _identity_coeffs(identity, seed)
    size = params["size"]
    bg = make_background(np.random.default_rng([seed, 5, identity]), size)
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.parent / f".{out.name}.building-{os.getpid()}"
    shutil.rmtree(tmp, ignore_errors=True)
    meta.update({"identity": f"id{identity:02d}", "split": "custom", "articulation": 1.0,
                 "blink_rate_hz": float(curves["blink_rate"])})
    try:
        with torch_threads(1):
            write_clip(tmp, out.name, wav, timeline, curves, id_c, alb_c, bg, parse_views(params["views"]), size,
                       meta, device=device)
        replace_dir(tmp, out)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return load_clip(out)
