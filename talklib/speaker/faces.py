"""A multi-identity corpus for single-shot talking heads (S3D-NeRF Sec. 3, "trained on many identities").

S3D-NeRF learns, from many speakers, to animate one photo of an unseen person. ``ensure_faces_corpus``
renders such a corpus with the synthetic speaker: ``identities`` training identities and
``test_identities`` held-out ones, each a different person (``identity_look``): face shape (f_id),
skin tone and albedo (f_alb, its first four global tones drawn from light to dark), hair and brow colour
(a palette recolouring the photo texture's hair and brows), fine skin detail (pores / freckles) and voice.

Layout of ``path``::

    faces.json               format, generator, fingerprint, params, identities [{name, split, voice, look}]
    clips/fidKK_train        every identity (a held-out one's is for per-speaker baselines only)
    clips/fidKK_test         held-out identities: unseen sentences (SENTENCES[N_TRAIN_SENTENCES:])

Each clip folder is a normal talklib clip (``talklib.data.dataset.load_clip``), front view only, plus
``gt/inner_mask.npy``: the inner face of S3D-NeRF's coarse-to-fine strategy (Sec. 3.4; the paper takes it
from Deep3DFaceRecon, ours is the polygon of the projected ``FACE_OVAL`` landmarks inside the head alpha).
The corpus is built in ``.NAME.building-PID`` and renamed into place (``talklib.outputs``), and reused
while its ``faces.json`` fingerprint matches the arguments.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np

from talklib.errors import UserError

FACES_FORMAT = 1
FACES_GENERATOR = "faces-1"
#: hair colours (linear RGB of a mid-lit strand) an identity draws from; brows take a darker shade
#: skin tone ramp, light -> dark: (tone, RGB albedo gain over the photo's skin) (about (0.97, 0.83, 0.74) ->
#: (0.36, 0.23, 0.16) in linear RGB); the gain is made by the first four albedo coefficients
SKIN_TONES = np.array([[0.0, 1.07, 1.09, 1.10], [0.35, 0.94, 0.84, 0.75], [0.7, 0.67, 0.53, 0.42],
                       [1.0, 0.40, 0.30, 0.24]])
#: RGB gain per unit of the first four albedo coefficients: brightness, redness, yellowness, tan
#: (``talklib.face3d.model._albedo_basis``; a test checks they agree)
TONE_BASIS = np.array([[0.12, 0.12, 0.12], [0.06, -0.02, -0.03], [0.03, 0.02, -0.05], [-0.02, -0.04, -0.06]])
HAIR_PALETTE = {"black": (0.07, 0.06, 0.055), "dark_brown": (0.2, 0.13, 0.08), "brown": (0.38, 0.25, 0.14),
                "auburn": (0.48, 0.22, 0.1), "blond": (0.8, 0.66, 0.42), "grey": (0.62, 0.61, 0.6)}


# --- looks ------------------------------------------------------------------------------------


def identity_look(k: int, seed: int) -> dict:
    """Identity ``k``'s appearance (JSON-able), drawn from ``[seed, 22, k]``.

    id_coeff: 100 shape coefficients N(0, 1), clipped to +-2.5; alb_coeff: 100 albedo coefficients, the
    first four (brightness, redness, yellowness, tan of ``_albedo_basis``) solved for the RGB gain of
    ``skin_tone`` in [0, 1] on the ``SKIN_TONES`` ramp (light -> dark) with a small jitter, the others
    N(0, 1); hair / hair_rgb / brow_rgb: a ``HAIR_PALETTE`` colour with a small tint; detail / detail_seed:
    strength (0..0.12) and seed of the fine-grain texture pattern; articulation: mouth strength of the speech.
    """
    from talklib.speaker.build import IDENTITY_VOICES

    rng = np.random.default_rng([seed, 22, k])
    id_c = np.clip(rng.normal(size=100), -2.5, 2.5)
    alb = rng.normal(size=100)
    tone = float(rng.uniform(0.0, 1.0))
    gain = np.array([np.interp(tone, SKIN_TONES[:, 0], SKIN_TONES[:, 1 + c]) for c in range(3)])
    gain *= np.exp(rng.normal(0.0, 0.04, 3))            # a little redder / yellower / paler per person
    alb[:4] = np.linalg.lstsq(TONE_BASIS.T, gain - 1.0, rcond=None)[0]   # min-norm: gain of the 4 global tones
    names = list(HAIR_PALETTE)
    hair = names[int(rng.integers(len(names)))]
    hair_rgb = np.clip(np.array(HAIR_PALETTE[hair]) * rng.uniform(0.85, 1.15) * rng.uniform(0.92, 1.08, 3), 0, 1)
    brow_rgb = hair_rgb * (0.55 if hair in ("blond", "grey") else 0.8)
    return {"k": int(k), "voice": IDENTITY_VOICES[k % len(IDENTITY_VOICES)],
            "id_coeff": _floats(id_c), "alb_coeff": _floats(alb), "skin_tone": round(tone, 6),
            "hair": hair, "hair_rgb": _floats(hair_rgb), "brow_rgb": _floats(brow_rgb),
            "detail": round(float(rng.uniform(0.0, 0.12)), 6), "detail_seed": int(rng.integers(2**31)),
            "articulation": round(float(rng.uniform(0.85, 1.15)), 6)}


def _floats(a) -> list[float]:
    return [round(float(x), 6) for x in np.asarray(a).ravel()]


def identity_model(base, look: dict):
    """``base`` (a ``MorphableModel``) with ``look``'s texture: hair and brows recoloured, fine grain added.

    Hair, brow and eye pixels are divided by the global albedo gain of ``look``'s first four albedo
    coefficients, so that skin tone darkens the skin only, not the hair colour or the whites of the eyes
    (those texels may then exceed 1, up to 2; ``render`` clamps the shaded colour).
    """
    tex = base.texture.astype(np.float64)
    hair, brow, eyes = texture_regions(base)
    alb = np.asarray(look["alb_coeff"], np.float64)
    gain = np.clip(1.0 + np.einsum("k,kc->c", alb[:4], base.alb_basis[:4, 0].astype(np.float64)), 0.2, 2.0)
    lum = tex @ np.array([0.3, 0.59, 0.11])
    ref = float(np.median(lum[hair > 0.5])) if (hair > 0.5).any() else 0.3
    shade = np.clip(lum / ref, 0.0, 2.0)[..., None]
    hair_col = np.asarray(look["hair_rgb"]) * shade / gain
    brow_col = np.asarray(look["brow_rgb"]) * np.minimum(shade, 1.3) / gain
    out = tex * (1 - hair[..., None]) + hair_col * hair[..., None]
    out = out * (1 - brow[..., None]) + brow_col * brow[..., None]
    out = out * (1 - eyes[..., None]) + (tex / gain) * eyes[..., None]
    grain = _grain(look["detail_seed"], tex.shape[:2])
    skin = (1 - np.maximum(hair, eyes))[..., None]
    out = out * (1.0 + look["detail"] * skin * grain[..., None] * np.array([1.0, 1.1, 1.2]))
    return dataclasses.replace(base, texture=np.clip(out, 0.0, 2.0).astype(np.float32))


def _grain(seed: int, shape: tuple[int, int]) -> np.ndarray:
    """(H, W) fine-grain pattern, negative = darker: pores (white noise low-passed at ~1 texel, std 0.3)
    plus freckles (sparse ~2-texel spots, 1 % of texels, depth 1 at their centre)."""
    rng = np.random.default_rng([seed, 1])
    fy, fx = np.fft.fftfreq(shape[0])[:, None], np.fft.fftfreq(shape[1])[None]

    def blur(a, sigma):
        return np.real(np.fft.ifft2(np.fft.fft2(a) * np.exp(-2 * (np.pi * sigma) ** 2 * (fx ** 2 + fy ** 2))))

    pores = blur(rng.normal(size=shape), 0.8)
    spots = blur((rng.uniform(size=shape) < 0.01).astype(np.float64), 1.0)
    return np.clip(0.3 * pores / pores.std() - spots / max(spots.max(), 1e-9), -1.0, 1.0)


def texture_regions(model) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Soft masks (Ht, Wt) in [0, 1] of the texture's hair, brows and eyes.

    Hair: outside the face oval's uv polygon or above the brows, above the ears, and yellower-browner
    ((G - B) / R) or much darker than the cheeks. Brows: within a few texels of the brow landmarks and
    darker than the cheeks. Eyes: inside the eye loops' uv polygons.
    """
    from talklib.face3d import topology as topo

    tex = model.texture.astype(np.float64)
    H, W = tex.shape[:2]
    uv = model.uv.astype(np.float64) * np.array([W, H])
    ys, xs = np.mgrid[0:H, 0:W] + 0.5
    skin = np.median(np.stack([_sample(tex, uv[i]) for i in topo.RIGHT_CHEEK + topo.LEFT_CHEEK]), 0)
    lum = tex @ np.array([0.3, 0.59, 0.11])
    lum_s = float(skin @ np.array([0.3, 0.59, 0.11]))
    yellow = (tex[..., 1] - tex[..., 2]) / np.maximum(tex[..., 0], 1e-3)      # (G - B) / R: hair > skin > grey
    yellow_s = float((skin[1] - skin[2]) / skin[0])
    browner = np.clip((yellow - yellow_s - 0.03) / 0.06, 0, 1)
    darker = np.clip((0.5 * lum_s - lum) / (0.15 * lum_s), 0, 1)
    colour = np.maximum(browner, darker)
    brows = list(topo.RIGHT_BROW_INNER + topo.RIGHT_BROW_OUTER + topo.RIGHT_BROW_MID
                 + topo.LEFT_BROW_INNER + topo.LEFT_BROW_OUTER + topo.LEFT_BROW_MID)
    outside = ~fill_polygons(uv[list(topo.FACE_OVAL)], H, W) | (ys < uv[brows, 1].min() - 2.0)
    ear_row = uv[[topo.FACE_OVAL[10], topo.FACE_OVAL[26]], 1].mean()     # landmarks 132, 361: below the ears
    above_ears = np.clip((ear_row - ys) / 6.0, 0, 1)
    hair = _soften(outside.astype(np.float64) * above_ears * colour)
    d = np.sqrt((xs[..., None] - uv[brows, 0]) ** 2 + (ys[..., None] - uv[brows, 1]) ** 2).min(-1)
    brow = np.clip((5.0 - d) / 2.5, 0, 1) * np.clip((0.92 * lum_s - lum) / (0.15 * lum_s), 0, 1)
    eyes = (fill_polygons(uv[list(topo.RIGHT_EYE_LOOP)], H, W) | fill_polygons(uv[list(topo.LEFT_EYE_LOOP)], H, W))
    return hair, _soften(brow), _soften(eyes.astype(np.float64))


def _sample(tex: np.ndarray, xy: np.ndarray) -> np.ndarray:
    return tex[int(np.clip(xy[1], 0, tex.shape[0] - 1)), int(np.clip(xy[0], 0, tex.shape[1] - 1))]


def _soften(mask: np.ndarray) -> np.ndarray:
    """A 3x3 box blur: soft mask edges."""
    p = np.pad(mask, 1, mode="edge")
    return sum(p[i:i + mask.shape[0], j:j + mask.shape[1]] for i in range(3) for j in range(3)) / 9.0


# --- inner-face masks -------------------------------------------------------------------------


def fill_polygons(poly: np.ndarray, height: int, width: int) -> np.ndarray:
    """Even-odd fill of polygons: poly (..., N, 2) vertices in pixels (x, y) -> (..., H, W) bool, True
    where the pixel centre (j + 0.5, i + 0.5) is inside. Vectorised by scanline: each row's edge crossings
    are counted left of every pixel centre with one cumulative sum."""
    poly = np.asarray(poly, np.float64)
    lead = poly.shape[:-2]
    p = poly.reshape(-1, poly.shape[-2], 2)
    x0, y0 = p[:, None, :, 0], p[:, None, :, 1]                          # (P, 1, N)
    x1, y1 = np.roll(x0, -1, -1), np.roll(y0, -1, -1)
    yc = (np.arange(height) + 0.5)[None, :, None]                       # (1, H, 1)
    cross = (y0 <= yc) != (y1 <= yc)                                    # (P, H, N)
    with np.errstate(divide="ignore", invalid="ignore"):
        xc = x0 + (yc - y0) * (x1 - x0) / (y1 - y0)
    first = np.clip(np.ceil(np.where(cross, xc, np.inf) - 0.5), 0, width).astype(np.int64)  # first centre right of it
    P = p.shape[0]
    flat = (np.arange(P)[:, None, None] * height + np.arange(height)[None, :, None]) * (width + 1) + first
    counts = np.bincount(flat[cross], minlength=P * height * (width + 1)).reshape(P, height, width + 1)
    inside = (np.cumsum(counts, -1)[..., :width] % 2).astype(bool)
    return inside.reshape(*lead, height, width)


def inner_face_masks(lmk2d: np.ndarray, alpha: np.ndarray) -> np.ndarray:
    """S3D-NeRF's inner face (Sec. 3.4): (T, H, W) uint8, 255 inside the projected ``FACE_OVAL`` polygon
    of lmk2d (T, 478, 2) pixels and inside the head alpha (T, H, W) uint8 (> 127), else 0."""
    from talklib.face3d.topology import FACE_OVAL

    H, W = alpha.shape[1:]
    inside = fill_polygons(lmk2d[:, list(FACE_OVAL)], H, W) & (alpha > 127)
    return (inside * 255).astype(np.uint8)


def _add_inner_mask(folder: Path) -> None:
    from PIL import Image

    lmk = np.load(folder / "gt" / "lmk2d_front.npy")
    alpha = np.stack([np.asarray(Image.open(folder / "masks" / "front" / f"{i}.png")) for i in range(len(lmk))])
    mask = inner_face_masks(lmk, alpha)
    np.save(folder / "gt" / "inner_mask.npy", mask)
    desc = json.loads((folder / "dataset.json").read_text())
    desc["files"]["gt/inner_mask.npy"] = {
        "shape": list(mask.shape), "dtype": "uint8", "unit": "0/255",
        "description": "inner face (S3D-NeRF coarse-to-fine): FACE_OVAL polygon of lmk2d_front inside the head alpha"}
    (folder / "dataset.json").write_text(json.dumps(desc, indent=1) + "\n")


# --- the corpus -------------------------------------------------------------------------------


@dataclasses.dataclass
class FacesCorpus:
    """An opened faces corpus: ``path``, ``params`` and ``identities`` ([{name, split, voice, look}])."""

    path: Path
    params: dict
    identities: list[dict]

    def train_names(self) -> list[str]:
        return [i["name"] for i in self.identities if i["split"] == "train"]

    def test_names(self) -> list[str]:
        return [i["name"] for i in self.identities if i["split"] == "test"]

    def clip(self, name: str, part: str = "train"):
        """Identity ``name``'s clip ``part`` ("train"; "test" for held-out identities), opened."""
        from talklib.data.dataset import load_clip

        folder = self.path / "clips" / f"{name}_{part}"
        if not folder.is_dir():
            raise UserError(f"{self.path} has no clip {name}_{part}: choose a name of train_names()/test_names() "
                            "and part train, or test for a held-out identity")
        return load_clip(folder)


def _fingerprint(params: dict) -> str:
    from talklib.data.dataset import FORMAT_VERSION
    from talklib.face3d.asset import ASSET_PATH
    from talklib.speaker.build import GENERATOR_VERSION

    body = json.dumps({"faces": FACES_FORMAT, "generator": FACES_GENERATOR, "speaker": GENERATOR_VERSION,
                       "format": FORMAT_VERSION, "params": params,
                       "asset": hashlib.sha256(ASSET_PATH.read_bytes()).hexdigest()[:16]}, sort_keys=True)
    return hashlib.sha256(body.encode()).hexdigest()[:20]


def _open(path: Path, fp: str | None = None) -> FacesCorpus | None:
    """The corpus at ``path`` when its faces.json is complete (and has fingerprint ``fp``), else None."""
    try:
        body = json.loads((path / "faces.json").read_text())
        if body["format_version"] != FACES_FORMAT or (fp is not None and body["fingerprint"] != fp):
            return None
        ids = body["identities"]
        parts = [f"{i['name']}_train" for i in ids] + [f"{i['name']}_test" for i in ids if i["split"] == "test"]
    except (OSError, UnicodeDecodeError, ValueError, KeyError, TypeError):
        return None
    if not all((path / "clips" / c / "dataset.json").is_file() for c in parts):
        return None
    return FacesCorpus(path, body["params"], ids)


def _is_faces_corpus(path: Path) -> bool:
    """True when ``path`` is a faces corpus talklib made (a damaged faces.json counts next to ``clips/``)."""
    f = path / "faces.json"
    if not f.is_file():
        return False
    try:
        return json.loads(f.read_text()).get("kind") == "faces"
    except (OSError, UnicodeDecodeError, ValueError, AttributeError):
        return (path / "clips").is_dir()


def ensure_faces_corpus(path, identities: int = 20, test_identities: int = 4, train_seconds: float = 4.0,
                        test_seconds: float = 3.0, size: int = 64, seed: int = 0, progress: bool = True,
                        device=None) -> FacesCorpus:
    """Make (or reuse) the faces corpus at ``path`` and return it opened (module docstring: the layout).

    Reused when its faces.json has the fingerprint of these arguments; an older faces corpus is rebuilt
    in place; any other non-empty folder or a file is never replaced (UserError). Deterministic: same
    arguments, same bytes (on the CPU). ``device``: where to render ("cuda" on a GPU machine).
    """
    from talklib.outputs import output_lock
    from talklib.speaker.build import _build_atomically, check_seed

    seed = check_seed(seed)
    for name, v, lo in (("identities", identities, 1), ("test_identities", test_identities, 0), ("size", size, 16)):
        if int(v) != v or v < lo:
            raise UserError(f"{name}={v} is not an integer >= {lo}: pass e.g. {name}={max(lo, 4)}")
    for name, v in (("train_seconds", train_seconds), ("test_seconds", test_seconds)):
        if not v >= 0.5:
            raise UserError(f"{name}={v} is too short: pass at least 0.5 seconds")
    params = {"identities": int(identities), "test_identities": int(test_identities),
              "train_seconds": float(train_seconds), "test_seconds": float(test_seconds), "size": int(size),
              "seed": seed}
    fp = _fingerprint(params)
    path = Path(path)
    found = _open(path, fp)
    if found is not None:
        return found
    if path.is_symlink() or (path.exists() and not (path.is_dir() and not any(path.iterdir()))
                             and not _is_faces_corpus(path)):
        what = "a folder" if path.is_dir() else "a file"
        raise UserError(f"{path} is {what} that is not a talklib faces corpus (no faces.json): "
                        "it is never replaced, choose another path")
    with output_lock(path):
        found = _open(path, fp)       # another process may have built it while we looked
        if found is not None:
            return found
        _build_atomically(path, lambda tmp: _build_into(tmp, params, fp, progress, device))
    return _open(path, fp)


def _plan(params: dict) -> list[tuple[str, int, str]]:
    """The clips in build order: (folder name, identity k, part); part "train" or "test"."""
    n = params["identities"] + params["test_identities"]
    plan = [(f"fid{k:02d}_train", k, "train") for k in range(n)]
    return plan + [(f"fid{k:02d}_test", k, "test") for k in range(params["identities"], n)]


def _speech(entry: tuple[str, int, str], look: dict, params: dict) -> dict:
    """Speech, text and curves of one clip (espeak; seeded by ``[seed, 21, k, part]``)."""
    from talklib.data.dataset import FPS, SAMPLE_RATE
    from talklib.speaker.build import N_TRAIN_SENTENCES
    from talklib.speaker.speech import expression_from_speech, tts_utterances
    from talklib.speaker.texts import SENTENCES

    name, k, part = entry
    rng = np.random.default_rng([params["seed"], 21, k, 0 if part == "train" else 1])
    sentences = SENTENCES[:N_TRAIN_SENTENCES] if part == "train" else SENTENCES[N_TRAIN_SENTENCES:]
    seconds = params["train_seconds"] if part == "train" else params["test_seconds"]
    audio, tl, text = tts_utterances(rng, look["voice"], seconds, sentences)
    curves = expression_from_speech(rng, tl, len(audio) // (SAMPLE_RATE // FPS), look["articulation"],
                                    lighting_drift=False)
    return {"name": name, "k": k, "part": part, "audio": audio, "timeline": tl, "text": text, "curves": curves}


def _build_into(root: Path, params: dict, fp: str, progress: bool, device) -> None:
    from talklib.data.dataset import FPS
    from talklib.face3d.model import MorphableModel
    from talklib.runtime import torch_threads
    from talklib.speaker.build import _progress_bar
    from talklib.speaker.clip import make_background, parse_views, write_clip

    root.mkdir(parents=True)
    seed, size = params["seed"], params["size"]
    n = params["identities"] + params["test_identities"]
    looks = [identity_look(k, seed) for k in range(n)]
    plan = _plan(params)
    base = MorphableModel.from_asset()
    models = {}
    # speech (espeak subprocesses) is made ahead in two threads while clips render; the bar's total starts
    # as an estimate from the planned seconds and is corrected as each clip's speech arrives
    est = [int(FPS * (params["train_seconds" if part == "train" else "test_seconds"] + 1.0)) for _, _, part in plan]
    bar = _progress_bar(sum(est), progress)
    if bar:
        bar.set_description("rendering the faces corpus")
    pool = ThreadPoolExecutor(2, thread_name_prefix="faces_speech")
    try:
        futures = [pool.submit(_speech, e, looks[e[1]], params) for e in plan]
        with torch_threads(1):
            for fut, guess in zip(futures, est):
                job = fut.result()
                k, look = job["k"], looks[job["k"]]
                if bar:
                    bar.total += job["curves"]["exp"].shape[0] - guess
                    bar.refresh()
                if k not in models:
                    models[k] = identity_model(base, look)
                name = f"fid{k:02d}"
                bg = make_background(np.random.default_rng([seed, 25, k]), size)
                meta = {"identity": name, "split": "train" if k < params["identities"] else "test",
                        "part": job["part"], "voice": look["voice"], "text": job["text"], "source": "espeak",
                        "articulation": look["articulation"], "blink_rate_hz": float(job["curves"]["blink_rate"]),
                        "hair": look["hair"], "skin_tone": look["skin_tone"]}
                folder = root / "clips" / job["name"]
                write_clip(folder, job["name"], job["audio"], job["timeline"], job["curves"],
                           np.asarray(look["id_coeff"], np.float32), np.asarray(look["alb_coeff"], np.float32),
                           bg, parse_views(""), size, meta, model=models[k], device=device,
                           progress=bar.update if bar else None)
                _add_inner_mask(folder)
    finally:
        pool.shutdown(wait=True, cancel_futures=True)
        if bar:
            bar.close()
    ids = [{"name": f"fid{k:02d}", "split": "train" if k < params["identities"] else "test",
            "voice": looks[k]["voice"], "look": looks[k]} for k in range(n)]
    body = {"kind": "faces", "format_version": FACES_FORMAT, "generator": FACES_GENERATOR, "fingerprint": fp,
            "params": params, "clips": [e[0] for e in plan], "identities": ids}
    (root / "faces.json").write_text(json.dumps(body, indent=1) + "\n")
