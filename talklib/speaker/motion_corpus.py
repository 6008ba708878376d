"""The motion-only corpus: many identities' head pose, blinks and 3DMM landmarks with their speech, no frames.

DFA-NeRF pre-trains its attribute autoencoder, its audio-lip sync and its Transformer GP-VAE on LRS2 + HDTF
(thousands of people, Sec. 4.1); talklib's stand-in is this generator. Each identity ``mNNN`` gets

- its own face shape (identity coefficients, drawn as the rendered corpus draws them) and articulation;
- its own **motion style** (``talklib.speaker.motion.MotionStyle``: each pose axis's amplitude, the frequency
  content, how strongly nods follow speech energy, blink rate and duration), written to ``motion.json`` as
  ground truth, so "personalised" generation can be checked against the style that made the motion;
- ``seconds`` of speech joined from a pool of TTS utterances (one voice per identity), its phone timeline,
  and the curves the rendered corpus would draw from them (``speaker.speech.expression_from_speech``).

Per identity, ``ids/mNNN.npz`` holds: ``pose`` (T, 6) yaw, pitch, roll (degrees), x, y, z (metres);
``blink`` (T,) eyelid closure in [0, 1]; ``exp`` (T, 79); ``landmarks`` (T, 68, 3) the 68 3DMM landmarks of
Eq. (1) in the head frame (front view, as DFA-NeRF fixes its 3DMM fits to the front view), metres;
``mel`` (2T, 80) the 50 Hz SpeechSplit-mel stream (``audio.features.mel_stream``; per-frame windows are
``audio.features.windows(mel)``), float16. No image is rendered, so it is cheap: tens of identities on two
CPU cores, hundreds on a GPU machine (``benchmarks/RESULTS.md``).

``ensure_motion_corpus(path, identities, seconds, seed, ...)`` builds it (in a temporary folder, renamed into
place) or reuses the one there when its parameters match; ``MotionCorpus`` reads it.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from talklib.data.dataset import EXP_NAMES, FPS, SAMPLE_RATE
from talklib.errors import UserError

MOTION_GENERATOR_VERSION = "motion-1"
VOICES = ("us_f", "gb_m", "us_m", "gb_f", "us_m2", "sc_m")
BLINK_LEFT = EXP_NAMES.index("blink_left")


def landmarks_68(model_tensors: dict, id_coeff: np.ndarray, exp: np.ndarray) -> np.ndarray:
    """DFA-NeRF Eq. (1) at the 68 landmarks: S = S̄ + B_id F_id + B_exp F_exp -> (T, 68, 3) float32, metres.

    model_tensors: ``MorphableModel.tensors()``; id_coeff (100,); exp (T, 79)."""
    import torch

    from talklib.face3d.topology import LANDMARKS_68

    idx = list(LANDMARKS_68)
    mean = model_tensors["mean"][idx].double()
    idb, exb = model_tensors["id_basis"][:, idx].double(), model_tensors["exp_basis"][:, idx].double()
    base = mean + torch.einsum("k,kvc->vc", torch.as_tensor(id_coeff, dtype=torch.float64), idb)
    out = base[None] + torch.einsum("tk,kvc->tvc", torch.as_tensor(exp, dtype=torch.float64), exb)
    return out.float().numpy()


@dataclass
class MotionCorpus:
    """A motion-only corpus on disk: ``identities`` (name, voice, articulation, style dict), ``sequence(name)``."""

    path: Path
    meta: dict

    @property
    def identities(self) -> list[dict]:
        return self.meta["identities"]

    @property
    def names(self) -> list[str]:
        return [i["name"] for i in self.identities]

    def identity(self, name: str) -> dict:
        for i in self.identities:
            if i["name"] == name:
                return i
        raise UserError(f"unknown identity {name!r} in the motion corpus {self.path}: choose from "
                        f"{self.names[0]} .. {self.names[-1]}")

    def sequence(self, name: str) -> dict[str, np.ndarray]:
        """The arrays of one identity (module docstring); ``mel`` as float32."""
        self.identity(name)
        with np.load(self.path / "ids" / f"{name}.npz") as z:
            out = {k: z[k] for k in z.files}
        out["mel"] = out["mel"].astype(np.float32)
        return out


def load_motion_corpus(path: str | Path) -> MotionCorpus:
    path = Path(path)
    try:
        meta = json.loads((path / "motion.json").read_text())
    except (OSError, json.JSONDecodeError) as e:
        raise UserError(f"{path} is not a motion corpus ({e.__class__.__name__}: no readable motion.json): "
                        "build it with talklib.speaker.motion_corpus.ensure_motion_corpus") from None
    return MotionCorpus(path, meta)


def _fingerprint(params: dict) -> str:
    body = json.dumps({"generator": MOTION_GENERATOR_VERSION, **params}, sort_keys=True)
    return hashlib.sha256(body.encode()).hexdigest()[:20]


def ensure_motion_corpus(path: str | Path, identities: int = 24, seconds: float = 40.0, seed: int = 0,
                         pool_sentences: int = 12, voices: int = 3, progress: bool = True) -> MotionCorpus:
    """Make (or reuse, when its parameters match) the motion-only corpus at ``path`` and return it opened."""
    from talklib.outputs import output_lock
    from talklib.speaker.build import _build_atomically, check_seed
    from talklib.speaker.texts import SENTENCES

    seed = check_seed(seed)
    if identities < 2 or seconds < 4.0:
        raise UserError(f"a motion corpus of {identities} identities x {seconds} s: give at least 2 identities "
                        "and 4 seconds each")
    if not 1 <= pool_sentences <= len(SENTENCES) or not 1 <= voices <= len(VOICES):
        raise UserError(f"pool of {pool_sentences} sentences and {voices} voices: choose 1..{len(SENTENCES)} "
                        f"sentences and 1..{len(VOICES)} voices")
    params = {"identities": int(identities), "seconds": float(seconds), "seed": seed,
              "pool_sentences": int(pool_sentences), "voices": int(voices)}
    fp = _fingerprint(params)
    path = Path(path)

    def reusable():
        if not (path / "motion.json").is_file():
            return None
        try:
            c = load_motion_corpus(path)
        except UserError:
            return None
        return c if c.meta.get("fingerprint") == fp else None

    c = reusable()
    if c is not None:
        return c
    if path.exists() and not (path / "motion.json").is_file() and (not path.is_dir() or any(path.iterdir())):
        raise UserError(f"{path} exists and is not a motion corpus: choose another folder for it")
    with output_lock(path):
        c = reusable()
        if c is None:
            _build_atomically(path, lambda tmp: _build(tmp, params, fp, progress))
    return load_motion_corpus(path)


def _build(root: Path, params: dict, fp: str, progress: bool) -> None:
    from tqdm.auto import tqdm

    from talklib.audio.features import mel_stream
    from talklib.audio.tts import synthesize
    from talklib.face3d.model import MorphableModel
    from talklib.runtime import torch_threads
    from talklib.speaker.build import _identity_coeffs
    from talklib.speaker.motion import draw_motion_style
    from talklib.speaker.speech import expression_from_speech, join_utterances
    from talklib.speaker.texts import SENTENCES

    seed = params["seed"]
    (root / "ids").mkdir(parents=True)
    voices = VOICES[:params["voices"]]
    pool = {v: [synthesize(SENTENCES[j], v) for j in range(params["pool_sentences"])]
            for v in tqdm(voices, desc="motion corpus: speech pool", disable=not progress)}
    tensors = MorphableModel.from_asset().tensors()
    ids = []
    with torch_threads(1):
        for k in tqdm(range(params["identities"]), desc="motion corpus: identities", disable=not progress):
            rng = np.random.default_rng([seed, 11, k])
            name, voice = f"m{k:03d}", voices[k % len(voices)]
            style = draw_motion_style(rng)
            strength = float(rng.uniform(0.85, 1.15))
            parts, total = [], 0.0
            while total < params["seconds"]:
                a, tl = pool[voice][int(rng.integers(len(pool[voice])))]
                parts.append((a, tl))
                total += len(a) / SAMPLE_RATE + 0.3
            audio, tl = join_utterances(parts, rng, pause_s=(0.2, 0.9))
            n = len(audio) // (SAMPLE_RATE // FPS)
            curves = expression_from_speech(rng, tl, n, strength, lighting_drift=False, motion=style)
            id_c, _ = _identity_coeffs(k + 1, seed + 1000)   # never the photo's own face (k = 0 there)
            arrays = {"pose": curves["pose"].astype(np.float32), "blink": curves["exp"][:, BLINK_LEFT].copy(),
                      "exp": curves["exp"], "landmarks": landmarks_68(tensors, id_c, curves["exp"]),
                      "mel": mel_stream(audio, n).astype(np.float16)}
            np.savez(root / "ids" / f"{name}.npz", **arrays)
            ids.append({"name": name, "voice": voice, "articulation": strength, "n_frames": int(n),
                        "blink_rate_hz": float(style.blink_rate), "style": style.to_dict()})
    meta = {"generator": MOTION_GENERATOR_VERSION, "fingerprint": fp, "params": params, "fps": FPS,
            "identities": ids}
    (root / "motion.json").write_text(json.dumps(meta, indent=1) + "\n")
