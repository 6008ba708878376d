"""Build the synthetic speaker's corpus: identities x clips (train/testA/testB) + speech-only clips.

``ensure_corpus(data_dir, preset, seed, **overrides)`` makes the corpus if it is missing, reuses it
otherwise, and rebuilds it when explicit overrides change its fingerprint. It builds in a temporary
folder next to ``data_dir`` and renames it into place, so a half-built corpus never looks complete.
Sizes come from the ``synth_*`` parameters of ``talklib.config`` (section 01); overrides use the
names without the prefix (``size=256``) or with it (``synth_size=256``).

``build_training_clip(out, preset, seed, identity)`` writes just one identity's training clip, byte for
byte the corpus's ``clips/idKK_train`` (the two builders share ``_clip_plan``, ``_clip_speech`` and
``_render_clip``), e.g. to benchmark a NeRF at full size on a GPU machine without the rest of the corpus.
``speech_clip_job`` + ``build_speech_clip`` render one clip driven by given speech (``synth --text/--audio``).

Every builder writes ``.NAME.building-PID`` next to its output, holds ``.NAME.lock`` meanwhile (a second
build of the same output is refused) and removes what killed builds left (``talklib.outputs.remove_stale``).
``check_output`` is the one rule for what may be replaced: only a corpus or clip folder that talklib made.
"""

from __future__ import annotations

import hashlib
import json
import shutil
from pathlib import Path

import numpy as np

from talklib.data.dataset import (AU_NAMES, EXP_NAMES, FORMAT_VERSION, FPS, SAMPLE_RATE, Clip, Corpus, load_clip,
                                  load_corpus)
from talklib.errors import UserError
from talklib.outputs import output_lock, remove_stale, replace_dir, temp_name
from talklib.runtime import torch_threads

GENERATOR_VERSION = "speaker-1"
IDENTITY_VOICES = ("us_f", "gb_m", "us_m", "gb_f", "us_m2", "sc_m")
N_TRAIN_SENTENCES = 28   # sentences 0..27 drive training clips; 28.. drive testA (unseen text)


def corpus_params(preset: str = "small", overrides: dict | None = None) -> dict:
    """The generator's parameters: the preset's ``synth_*`` values with ``overrides`` applied (checked)."""
    from talklib import config

    base = {k[len("synth_"):]: v for k, v in config.preset(preset).items() if k.startswith("synth_")}
    for k, v in (overrides or {}).items():
        key = k[len("synth_"):] if k.startswith("synth_") else k
        if key not in base:
            raise UserError(f"unknown corpus parameter {k!r}: choose from {', '.join(sorted(base))}")
        config.validate({f"synth_{key}": v})     # each value in its range (config.RULES)
        base[key] = type(base[key])(v)
    return base


def check_seed(seed: int) -> int:
    """The seed, checked: a non-negative integer (NumPy's generators refuse negative ones)."""
    if int(seed) != seed or seed < 0:
        raise UserError(f"seed {seed} is negative or not an integer: pass 0, 1, 2 ...")
    return int(seed)


def talklib_dataset(path: str | Path) -> str | None:
    """The kind of dataset talklib wrote at the folder ``path`` ("corpus", "clip" or "speech"), else None.

    A corpus holds ``corpus.json`` (with ``clips``), a clip ``dataset.json`` (with ``kind``); a damaged
    description still counts when the folder has talklib's layout around it (``clips/``; ``aud.wav``, ``gt/``).
    """
    path = Path(path)
    if not path.is_dir():
        return None
    for marker, keys, layout, kind in (("corpus.json", ("clips", "format_version"), ("clips",), "corpus"),
                                       ("dataset.json", ("kind", "format_version"), ("aud.wav", "gt"), None)):
        f = path / marker
        if not f.is_file():
            continue
        try:
            body = json.loads(f.read_text())
        except (OSError, UnicodeDecodeError, json.JSONDecodeError):
            body = None
        if isinstance(body, dict):
            if all(k in body for k in keys):
                return kind or str(body["kind"])
        elif all((path / x).exists() for x in layout):
            return kind or "clip"
    return None


def check_output(path: str | Path, force: bool) -> None:
    """The one rule for ``synth``'s outputs: a new path or an empty folder is written; a folder talklib
    made (``talklib_dataset``) is replaced only with ``force``; anything else is never replaced."""
    path = Path(path)
    if not path.exists() and not path.is_symlink():
        return
    if path.is_dir() and not any(path.iterdir()):
        return
    if talklib_dataset(path) is None:
        what = "a folder" if path.is_dir() else "a file"
        raise UserError(f"{path} is {what} that talklib did not make (no corpus.json or clip dataset.json): "
                        "synth replaces only its own datasets, even with --force: choose another --out")
    if not force:
        raise UserError(f"output folder {path} already exists: pass --force to replace it or choose another --out")


def _build_atomically(out: Path, build) -> Path:
    """``build(tmp)`` into ``.NAME.building-PID``, then rename it to ``out``; under ``out``'s lock, after
    removing the temporaries of builds that were killed."""
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    with output_lock(out):
        remove_stale(out)
        tmp = temp_name(out, "building")
        shutil.rmtree(tmp, ignore_errors=True)
        try:
            build(tmp)
            replace_dir(tmp, out)
        except BaseException:
            shutil.rmtree(tmp, ignore_errors=True)
            raise
    return out


def fingerprint(preset: str, seed: int, params: dict) -> str:
    """Hash of everything that determines the corpus bytes."""
    from talklib.face3d.asset import ASSET_PATH

    body = json.dumps({"format": FORMAT_VERSION, "generator": GENERATOR_VERSION, "seed": int(seed),
                       "params": params, "asset": hashlib.sha256(ASSET_PATH.read_bytes()).hexdigest()[:16]},
                      sort_keys=True)
    return hashlib.sha256(body.encode()).hexdigest()[:20]


def ensure_corpus(data_dir: str | Path, preset: str = "small", seed: int = 0, force: bool = False,
                  progress: bool = True, device=None, **overrides) -> Corpus:
    """Make (or reuse) the corpus at ``data_dir`` and return it opened.

    Reuse when a valid corpus of the same preset and seed exists and either no overrides are given or
    its fingerprint matches; otherwise build it (deterministic: same arguments -> byte-identical files).
    A corpus is rebuilt in place; any other folder talklib made is replaced only with ``force``, and a
    folder or file talklib did not make never (``check_output``).
    """
    seed = check_seed(seed)
    params = corpus_params(preset, overrides)
    fp = fingerprint(preset, seed, params)
    path = Path(data_dir)

    def reusable():
        if force or not (path / "corpus.json").is_file():
            return None
        try:
            c = load_corpus(path)
        except UserError:
            return None
        if (c.preset == preset and c.seed == seed and c.meta.get("generator") == GENERATOR_VERSION
                and (c.fingerprint == fp or not overrides)):
            return c
        return None

    c = reusable()
    if c is not None:
        return c
    if talklib_dataset(path) != "corpus":
        check_output(path, force)
    with output_lock(path):
        c = reusable()        # another process may have built it while we looked
        if c is not None:
            return c
        build_corpus(path, preset, seed, params, fp, progress=progress, device=device)
    return load_corpus(path)


def build_corpus(path: Path, preset: str, seed: int, params: dict, fp: str, progress: bool = True,
                 device=None) -> Path:
    """Build into ``.NAME.building-PID`` next to ``path``, then rename into place (atomic)."""
    def build(tmp):
        with torch_threads(1):  # one thread: faster small ops here, and byte-identical files
            _build_into(tmp, preset, seed, params, fp, progress, device)

    return _build_atomically(Path(path), build)


def _identity_coeffs(k: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """id00 is the photo's own face (zeros); others draw N(0, 0.8^2) identity and albedo coefficients."""
    if k == 0:
        return np.zeros(100, np.float32), np.zeros(100, np.float32)
    rng = np.random.default_rng([seed, 7, k])
    return (0.8 * rng.normal(size=100)).astype(np.float32), (0.8 * rng.normal(size=100)).astype(np.float32)


def _clip_plan(params: dict) -> tuple[list[dict], list[tuple[str, int, str, str]]]:
    """The corpus's identities and its rendered clips in build order: [(clip name, identity k, split, voice)].

    A clip's place in this list seeds its speech (``[seed, 1, index]``), so every builder takes it from here.
    """
    identities, plan = [], []
    for k in range(params["identities"] + params["test_identities"]):
        split = "train" if k < params["identities"] else "test"
        name = f"id{k:02d}"
        voice = IDENTITY_VOICES[k % len(IDENTITY_VOICES)]
        identities.append({"name": name, "split": split, "voice": voice})
        for s in (["train"] if split == "train" else []) + ["testA", "testB"]:
            plan.append((f"{name}_{s}", k, s, voice))
    return identities, plan


def _clip_speech(index: int, entry: tuple[str, int, str, str], params: dict, seed: int, arctic=None) -> dict:
    """Speech, text and ground-truth curves of the ``index``-th clip of ``_clip_plan`` (cheap: no rendering).

    ``arctic``: ``load_arctic()``'s (audio, timeline, text), needed by testB clips only (it needs pocketsphinx).
    """
    from talklib.audio.tts import synthesize
    from talklib.speaker.speech import expression_from_speech, join_utterances, tts_utterances
    from talklib.speaker.texts import SENTENCES

    cname, k, s, voice = entry
    train_sent, test_sent = SENTENCES[:N_TRAIN_SENTENCES], SENTENCES[N_TRAIN_SENTENCES:]
    rng = np.random.default_rng([seed, 1, index])
    if s == "train":
        audio, tl, text = tts_utterances(rng, voice, params["train_seconds"], train_sent)
        src = "espeak"
    elif s == "testA":
        audio, tl, text = tts_utterances(rng, voice, params["test_seconds"], test_sent)
        src = "espeak"
    else:   # testB: real human speech (ARCTIC), topped up with another voice to test_seconds
        arctic_audio, arctic_tl, arctic_text = arctic
        parts = [(arctic_audio, arctic_tl)]
        text = arctic_text
        other = IDENTITY_VOICES[(k + 3) % len(IDENTITY_VOICES)]
        total = len(arctic_audio) / SAMPLE_RATE
        order = list(rng.permutation(len(test_sent)))
        while total < params["test_seconds"] - 0.5 and order:
            sent = test_sent[order.pop(0)]
            a, t = synthesize(sent, other)
            parts.append((a, t))
            text += " | " + sent
            total += len(a) / SAMPLE_RATE + 0.3
        audio, tl = join_utterances(parts, rng)
        src = "arctic" if len(parts) == 1 else "arctic+espeak"
    n = len(audio) // (SAMPLE_RATE // FPS)
    strength = 1.0 if k == 0 else float(np.random.default_rng([seed, 3, k]).uniform(0.85, 1.15))
    curves = expression_from_speech(rng, tl, n, strength, lighting_drift=params["lighting_drift"])
    return {"name": cname, "identity": k, "split": s, "voice": voice, "audio": audio, "timeline": tl, "text": text,
            "source": src, "curves": curves, "strength": strength}


def _render_clip(folder: Path, job: dict, params: dict, seed: int, model, device, progress=None) -> dict:
    """Render ``_clip_speech``'s ``job`` into the clip folder ``folder``; returns its corpus.json entry."""
    from talklib.speaker.clip import make_background, parse_views, write_clip

    k, curves = job["identity"], job["curves"]
    id_c, alb_c = _identity_coeffs(k, seed)
    bg = make_background(np.random.default_rng([seed, 5, k]), params["size"])
    meta = {"identity": f"id{k:02d}", "split": job["split"], "voice": job["voice"], "text": job["text"],
            "source": job["source"], "articulation": job["strength"], "blink_rate_hz": float(curves["blink_rate"])}
    write_clip(folder, job["name"], job["audio"], job["timeline"], curves, id_c, alb_c, bg,
               parse_views(params["views"]), params["size"], meta, model=model, device=device, progress=progress)
    return {"name": job["name"], "identity": f"id{k:02d}", "split": job["split"], "path": f"clips/{job['name']}",
            "n_frames": int(curves["exp"].shape[0])}


def _progress_bar(total: int, progress: bool):
    """A tqdm bar over ``total`` frames, or None (no progress wanted, or tqdm not installed)."""
    if not progress:
        return None
    try:
        from tqdm.auto import tqdm
    except ImportError:
        return None
    return tqdm(total=total, desc="rendering the synthetic speaker", unit="frame")


def build_training_clip(out: str | Path, preset: str = "small", seed: int = 0, identity: int = 0, device=None,
                        progress: bool = True, **overrides) -> Clip:
    """Write only identity ``identity``'s training clip, byte for byte the ``clips/idKK_train`` folder that
    ``ensure_corpus(..., preset, seed, **overrides)`` writes (same speech, curves, identity, background,
    views), without the rest of the corpus (no testA/testB, ARCTIC or speech-only clips, so neither
    pocketsphinx nor pysptk is needed). Replaces ``out`` atomically; returns the clip opened.
    ``device``: where to render ("cuda" for a GPU; the bytes then differ slightly from a CPU build).
    """
    from talklib.face3d.model import MorphableModel
    from talklib.speaker.clip import parse_views

    seed = check_seed(seed)
    params = corpus_params(preset, overrides)
    _, plan = _clip_plan(params)
    name = f"id{int(identity):02d}_train"
    index = next((i for i, e in enumerate(plan) if e[0] == name), None)
    if index is None:
        raise UserError(f"identity {identity} has no training clip in preset {preset!r}: "
                        f"choose 0..{params['identities'] - 1} (synth_identities={params['identities']})")
    def build(tmp):
        with torch_threads(1):  # as build_corpus: the same bytes
            job = _clip_speech(index, plan[index], params, seed)
            bar = _progress_bar(job["curves"]["exp"].shape[0] * len(parse_views(params["views"])), progress)
            try:
                _render_clip(tmp, job, params, seed, MorphableModel.from_asset(), device,
                             bar.update if bar else None)
            finally:
                if bar:
                    bar.close()

    return load_clip(_build_atomically(Path(out), build))


def speech_clip_job(preset: str = "small", seed: int = 0, text: str | None = None, audio: str | Path | None = None,
                    identity: int = 0, voice: str | None = None, overrides: dict | None = None) -> dict:
    """The speech, phone timeline and ground-truth curves of one clip driven by ``text`` (espeak, voice
    ``voice`` or the identity's) or by the speech file ``audio`` (phones by pocketsphinx); cheap (no
    rendering), so that its length is known before ``build_speech_clip`` renders it.
    Returns a dict with "audio", "timeline", "curves", "meta", "params", "seconds", "n_frames"."""
    from talklib.speaker.speech import expression_from_speech, join_utterances

    seed = check_seed(seed)
    if int(identity) < 0:
        raise UserError(f"identity {identity} is negative: pass 0, 1, 2 ...")
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
        raise UserError("a speech clip needs text or audio: pass --text \"...\" or --audio WAV")
    n = len(wav) // (SAMPLE_RATE // FPS)
    curves = expression_from_speech(rng, timeline, n, 1.0, lighting_drift=params["lighting_drift"])
    meta.update({"identity": f"id{identity:02d}", "split": "custom", "articulation": 1.0,
                 "blink_rate_hz": float(curves["blink_rate"])})
    return {"audio": wav, "timeline": timeline, "curves": curves, "meta": meta, "params": params, "seed": seed,
            "identity": int(identity), "seconds": len(wav) / SAMPLE_RATE, "n_frames": n}


def build_speech_clip(out: str | Path, job: dict, device=None, progress: bool = True) -> Clip:
    """Render ``speech_clip_job``'s ``job`` into the clip folder ``out`` (replacing it atomically, with a
    tqdm bar over its frames x views) and return it opened."""
    from talklib.speaker.clip import make_background, parse_views, write_clip

    params, seed, k = job["params"], job["seed"], job["identity"]
    id_c, alb_c = _identity_coeffs(k, seed)
    size = params["size"]
    bg = make_background(np.random.default_rng([seed, 5, k]), size)
    views = parse_views(params["views"])
    out = Path(out)

    def build(tmp):
        bar = _progress_bar(job["n_frames"] * len(views), progress)
        try:
            with torch_threads(1):
                write_clip(tmp, out.name, job["audio"], job["timeline"], job["curves"], id_c, alb_c, bg, views,
                           size, job["meta"], device=device, progress=bar.update if bar else None)
        finally:
            if bar:
                bar.close()

    return load_clip(_build_atomically(out, build))


def _build_into(root: Path, preset: str, seed: int, params: dict, fp: str, progress: bool, device) -> None:
    from talklib.audio.arctic import load_arctic
    from talklib.audio.tts import synthesize
    from talklib.face3d.model import MorphableModel
    from talklib.speaker.clip import parse_views, write_speech_folder
    from talklib.speaker.speech import expression_from_speech, join_utterances
    from talklib.speaker.texts import SENTENCES

    root.mkdir(parents=True)
    views = parse_views(params["views"])
    size = params["size"]
    arctic = load_arctic()
    arctic_audio, arctic_tl, arctic_text = arctic
    model = MorphableModel.from_asset()
    identities, plan = _clip_plan(params)
    # speech first (cheap), so the progress bar can count frames
    jobs = [_clip_speech(ci, entry, params, seed, arctic) for ci, entry in enumerate(plan)]
    bar = _progress_bar(sum(j["curves"]["exp"].shape[0] for j in jobs) * len(views), progress)
    clips, speech = [], []
    for job in jobs:
        clips.append(_render_clip(root / "clips" / job["name"], job, params, seed, model, device,
                                  bar.update if bar else None))
    if bar:
        bar.close()
    # speech-only clips: several voices and texts, plus the ARCTIC recording
    for i in range(params["speech_clips"]):
        rng = np.random.default_rng([seed, 2, i])
        voice = IDENTITY_VOICES[i % len(IDENTITY_VOICES)]
        n_sent = int(rng.integers(1, 4))
        idx = rng.choice(len(SENTENCES), n_sent, replace=False)
        parts = [synthesize(SENTENCES[j], voice) for j in idx]
        audio, tl = join_utterances(parts, rng)
        n = len(audio) // (SAMPLE_RATE // FPS)
        strength = float(rng.uniform(0.85, 1.15))
        curves = expression_from_speech(rng, tl, n, strength, lighting_drift=False)
        name = f"tts{i:03d}_{voice}"
        write_speech_folder(root / "speech" / name, name, audio, tl, curves,
                            {"voice": voice, "text": " ".join(SENTENCES[j] for j in idx), "source": "espeak",
                             "articulation": strength})
        speech.append({"name": name, "path": f"speech/{name}", "source": "espeak", "voice": voice})
    rng = np.random.default_rng([seed, 4])
    audio, tl = join_utterances([(arctic_audio, arctic_tl)], rng)
    curves = expression_from_speech(rng, tl, len(audio) // (SAMPLE_RATE // FPS), 1.0, lighting_drift=False)
    write_speech_folder(root / "speech" / "arctic_a0007", "arctic_a0007", audio, tl, curves,
                        {"voice": "arctic", "text": arctic_text, "source": "arctic", "articulation": 1.0})
    speech.append({"name": "arctic_a0007", "path": "speech/arctic_a0007", "source": "arctic", "voice": "arctic"})
    corpus = {"format_version": FORMAT_VERSION, "generator": GENERATOR_VERSION, "preset": preset, "seed": int(seed),
              "fingerprint": fp, "params": params, "fps": FPS, "sample_rate": SAMPLE_RATE, "size": size,
              "views": views, "au_names": list(AU_NAMES), "exp_names": list(EXP_NAMES),
              "identities": identities, "clips": clips, "speech": speech}
    (root / "corpus.json").write_text(json.dumps(corpus, indent=1) + "\n")
