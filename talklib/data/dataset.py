"""Reading (and validating) the synthetic speaker's corpus and clip folders.

Everything the papers need from "a talking-head video plus its 3DMM tracking" is here, as NumPy
arrays, with the ground truth a real video never has. Layout of a **corpus** folder::

    corpus.json                 identities, clips (split train/testA/testB), speech-only clips
    clips/<clip>/               one rendered clip (layout below), e.g. clips/id00_train
    speech/<name>/              one speech-only clip: aud.wav, gt/ (exp, AUs, phonemes), dataset.json

Layout of a **clip** folder (AD-NeRF's names where they exist)::

    dataset.json                every file with its shape, dtype and unit; views; fps; size
    aud.wav                     16 kHz mono PCM16 speech, starts at frame 0
    transforms_train.json       AD-NeRF: focal_len, cx, cy, frames[{img_id, aud_id, transform_matrix, face_rect}]
    transforms_val.json         same for the held-out frames (AD-NeRF's 10/11 split)
    transforms_<view>.json      same schema, every frame, for each novel view (e.g. transforms_yaw_p30.json)
    ori_imgs/<i>.png            frontal (training camera) RGB frames, i = img_id = aud_id = frame index
    views/<view>/<i>.png        novel views of the *same* frames
    masks/<view>/<i>.png        alpha of the head (uint8, 255 = head) for every view, "front" included
    bc.png                      the background (RGB, no head)
    gt/*.npy, gt/phonemes.json  ground truth, listed in dataset.json (see ``Clip.gt``)
    aud_<kind>.npy              audio features written later by talklib.audio (``Clip.audio_features``)

Conventions:

- 25 frames per second; frame ``i`` covers audio ``[i/25, (i+1)/25)`` s.
- Cameras: ``transform_matrix`` is the 4x4 camera-to-world matrix in the **head's canonical frame**
  (as AD-NeRF: the head is still, the camera moves), OpenGL/NeRF axes (camera looks along -z, +y up).
  Rays: ``d = c2w[:3,:3] @ [(u - cx)/f, -(v - cy)/f, -1]``, origin ``c2w[:3, 3]`` (u column, v row,
  pixel centres at +0.5). Units are metres; the head is about 0.15 m wide, the camera about 0.6 m away.
  ``Clip.camera(view)`` also gives the world-frame cameras; ``gt/head_pose.npy`` maps head -> world.
- ``face_rect`` = ``[x, y, w, h]`` in pixels (x column, y row) of the head's bounding box.
- Expression ``exp`` (79) follows talklib.face3d.model: its first components are the named,
  FACS-mapped ones (``EXP_NAMES``), the rest are unnamed small deformations.

Use ``load_corpus(path)`` for a corpus, ``load_clip(path)`` for one clip folder, ``load_dataset(path)``
for either. Bad folders raise ``talklib.errors.UserError`` with a one-line message.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path
from typing import Any

import numpy as np

from talklib.errors import UserError

FPS = 25
SAMPLE_RATE = 16000
FORMAT_VERSION = 1

#: FACS action units with ground truth, in column order of ``au_intensity`` / ``au_label``.
AU_NAMES = ("AU01", "AU02", "AU10", "AU12", "AU14", "AU18", "AU20", "AU25", "AU26", "AU45")
#: Human-readable meaning of each AU (FACS names).
AU_MEANING = {
    "AU01": "inner brow raiser", "AU02": "outer brow raiser", "AU10": "upper lip raiser",
    "AU12": "lip corner puller (smile)", "AU14": "dimpler", "AU18": "lip pucker",
    "AU20": "lip stretcher", "AU25": "lips part", "AU26": "jaw drop", "AU45": "blink",
}
#: An AU is "on" when its intensity (FACS-like 0..5 scale, as OpenFace's AUxx_r) reaches this.
AU_ON_THRESHOLD = 1.0

#: Phone set of every phoneme timeline: CMU/ARPAbet without stress, plus "SIL" (silence/pause).
PHONES = ("SIL", "AA", "AE", "AH", "AO", "AW", "AY", "B", "CH", "D", "DH", "EH", "ER", "EY", "F", "G",
          "HH", "IH", "IY", "JH", "K", "L", "M", "N", "NG", "OW", "OY", "P", "R", "S", "SH", "T", "TH",
          "UH", "UW", "V", "W", "Y", "Z", "ZH")

#: Named expression components (first columns of ``exp``), see talklib.face3d.model.
EXP_NAMES = ("jaw_open", "lips_part", "lip_funnel", "lip_pucker", "lip_stretch", "smile",
             "upper_lip_raise", "dimpler", "blink_left", "blink_right", "brow_inner_raise",
             "brow_outer_raise")

DIMS = {"id": 100, "exp": 79, "alb": 100, "illu": 27}


@dataclass(frozen=True)
class Phoneme:
    """One phone of a timeline: ``phone`` in ``PHONES``, times in seconds, ``viseme`` name."""

    phone: str
    start: float
    end: float
    viseme: str = ""


@dataclass(frozen=True)
class Camera:
    """A pinhole camera for one view of a clip.

    focal (px), cx, cy (px), width, height (px);
    c2w: (T, 4, 4) camera-to-world in the head's canonical frame (AD-NeRF ``transform_matrix``);
    c2w_world: (T, 4, 4) camera-to-world in the world frame (static views: the same matrix T times).
    Axes: OpenGL/NeRF (camera looks along -z, +y up). Units: metres.
    """

    name: str
    focal: float
    cx: float
    cy: float
    width: int
    height: int
    c2w: np.ndarray
    c2w_world: np.ndarray

    @property
    def K(self) -> np.ndarray:
        """(3, 3) intrinsics in OpenCV form (for pixel = K @ [x/z, y/z, 1] with +y down, +z forward)."""
        return np.array([[self.focal, 0, self.cx], [0, self.focal, self.cy], [0, 0, 1]], np.float64)


# ----------------------------------------------------------------------------------------------
# helpers


def _read_json(path: Path, what: str) -> Any:
    if not path.is_file():
        raise UserError(f"{what} {path} is missing: rebuild the dataset with `python -m talklib synth "
                        f"--out {path.parent} --force`")
    try:
        return json.loads(path.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as e:
        raise UserError(f"{what} {path} is not valid JSON ({e.msg if hasattr(e, 'msg') else e}): "
                        f"rebuild the dataset with --force") from None


def _check_folder(path: str | Path, marker: str, what: str) -> Path:
    p = Path(path)
    if not p.exists():
        raise UserError(f"{what} folder {p} does not exist: make it with `python -m talklib synth --out {p}` "
                        f"(or talklib.speaker.build.ensure_corpus)")
    if not p.is_dir():
        raise UserError(f"{what} path {p} is not a folder: pass the folder that holds {marker}")
    if not (p / marker).is_file():
        raise UserError(f"{p} is not a {what} folder (no {marker}): pass a folder made by `python -m talklib synth`")
    return p


def _load_npy(path: Path, spec: dict | None = None) -> np.ndarray:
    if not path.is_file():
        raise UserError(f"dataset file {path} is missing: rebuild the dataset with --force")
    try:
        arr = np.load(path, allow_pickle=False)
    except (ValueError, OSError) as e:
        raise UserError(f"dataset file {path} cannot be read as .npy ({e}): rebuild the dataset with --force") from None
    if spec is not None and "shape" in spec:
        want = tuple(spec["shape"])
        if tuple(arr.shape) != want:
            raise UserError(f"dataset file {path} has shape {tuple(arr.shape)}, dataset.json says {want}: "
                            f"rebuild the dataset with --force")
    return arr


def png_bytes(arr: np.ndarray) -> bytes:
    """PNG bytes of an RGB (H, W, 3) or grey (H, W) uint8 image: the one encoder of the frames and masks
    talklib writes (the synthetic speaker's and ``prepare``'s).

    Lossless like any PNG; OpenCV's encoder (it releases the GIL, so writer threads run in parallel) with
    run-length deflate and one fixed row filter ("up" for pictures, none for masks) instead of libpng's
    per-row filter search: at 512² on 2 cores an RGB frame takes 7.8 ms instead of 12.7 (OpenCV's defaults)
    or 20 (Pillow, level 3) at the same size, a mask 0.4 ms instead of 2.3, and the pictures decode faster
    (4.1 ms instead of 6.4); measured 2026-12-08, see benchmarks/RESULTS.md.
    """
    import cv2

    arr = np.ascontiguousarray(arr)
    if arr.dtype != np.uint8 or arr.ndim not in (2, 3) or (arr.ndim == 3 and arr.shape[2] != 3):
        raise ValueError(f"png_bytes takes (H, W, 3) or (H, W) uint8, not {arr.shape} {arr.dtype}")
    img = cv2.cvtColor(arr, cv2.COLOR_RGB2BGR) if arr.ndim == 3 else arr
    row_filter = cv2.IMWRITE_PNG_FILTER_UP if arr.ndim == 3 else cv2.IMWRITE_PNG_FILTER_NONE
    ok, buf = cv2.imencode(".png", img, [cv2.IMWRITE_PNG_COMPRESSION, 1, cv2.IMWRITE_PNG_STRATEGY,
                                         cv2.IMWRITE_PNG_STRATEGY_RLE, cv2.IMWRITE_PNG_FILTER, row_filter])
    if not ok:
        raise RuntimeError("PNG encoding failed")
    return buf.tobytes()


def _read_png(path: Path) -> np.ndarray:
    from PIL import Image

    if not path.is_file():
        raise UserError(f"frame {path} is missing: rebuild the dataset with --force")
    with Image.open(path) as im:
        return np.asarray(im).copy()


def _read_wav(path: Path) -> np.ndarray:
    import soundfile as sf

    if not path.is_file():
        raise UserError(f"audio {path} is missing: rebuild the dataset with --force")
    try:
        data, sr = sf.read(str(path), dtype="float32", always_2d=False)
    except RuntimeError as e:
        raise UserError(f"audio {path} cannot be read ({e}): rebuild the dataset with --force") from None
    if sr != SAMPLE_RATE or data.ndim != 1:
        raise UserError(f"audio {path} is {sr} Hz with {data.ndim} dims, expected {SAMPLE_RATE} Hz mono: "
                        f"rebuild the dataset with --force")
    return data


def _phonemes(path: Path) -> list[Phoneme]:
    raw = _read_json(path, "phoneme timeline")
    try:
        out = [Phoneme(str(p["phone"]), float(p["start"]), float(p["end"]), str(p.get("viseme", ""))) for p in raw]
    except (TypeError, KeyError, ValueError):
        raise UserError(f"phoneme timeline {path} is malformed (need a list of {{phone, start, end}}): "
                        f"rebuild the dataset with --force") from None
    return out


def phoneme_frame_ids(phonemes: list[Phoneme], n_frames: int, fps: int = FPS) -> np.ndarray:
    """(n_frames,) int64 index into ``PHONES`` of the phone at each frame's centre (SIL where none)."""
    out = np.zeros(n_frames, np.int64)
    centres = (np.arange(n_frames) + 0.5) / fps
    index = {p: i for i, p in enumerate(PHONES)}
    for ph in phonemes:
        sel = (centres >= ph.start) & (centres < ph.end)
        out[sel] = index.get(ph.phone, 0)
    return out


# ----------------------------------------------------------------------------------------------
# speech-only clips (audio + phonemes + the expression they would drive; no frames)


class SpeechClip:
    """A speech-only clip of the corpus: ``aud.wav``, ``gt/phonemes.json`` and ground-truth curves.

    Cheap to make in bulk (no rendering); for training audio and sync models.
    """

    def __init__(self, path: str | Path):
        self.path = _check_folder(path, "dataset.json", "speech clip")
        self.meta: dict = _read_json(self.path / "dataset.json", "speech clip description")
        self._files: dict = self.meta.get("files", {})

    # metadata ---------------------------------------------------------------------------------
    @property
    def name(self) -> str:
        return self.meta.get("name", self.path.name)

    @property
    def voice(self) -> str:
        """TTS voice name (espeak) or ``"arctic"`` for the real human recording."""
        return self.meta.get("voice", "")

    @property
    def text(self) -> str:
        return self.meta.get("text", "")

    @property
    def source(self) -> str:
        """``"espeak"`` (synthetic) or ``"arctic"`` (real human speech, forced-aligned)."""
        return self.meta.get("source", "")

    @property
    def fps(self) -> int:
        return int(self.meta.get("fps", FPS))

    @property
    def sample_rate(self) -> int:
        return int(self.meta.get("sample_rate", SAMPLE_RATE))

    @property
    def n_frames(self) -> int:
        return int(self.meta["n_frames"])

    @property
    def au_names(self) -> tuple[str, ...]:
        return tuple(self.meta.get("au_names", AU_NAMES))

    # arrays -----------------------------------------------------------------------------------
    def audio(self) -> np.ndarray:
        """(S,) float32 in [-1, 1], 16 kHz mono; S ≈ n_frames * 640."""
        return _read_wav(self.path / "aud.wav")

    def phonemes(self) -> list[Phoneme]:
        """The phone timeline (seconds)."""
        return _phonemes(self.path / "gt" / "phonemes.json")

    def phoneme_ids(self) -> np.ndarray:
        """(T,) int64 index into ``PHONES`` per video frame."""
        return phoneme_frame_ids(self.phonemes(), self.n_frames, self.fps)

    def gt(self, name: str) -> np.ndarray:
        """A ground-truth array by name (see ``dataset.json`` "files"), e.g. ``exp`` (T, 79)."""
        key = f"gt/{name}.npy"
        if key not in self._files:
            known = sorted(k[3:-4] for k in self._files if k.startswith("gt/") and k.endswith(".npy"))
            raise UserError(f"no ground truth {name!r} in {self.path}: choose one of {', '.join(known)}")
        return _load_npy(self.path / key, self._files[key])

    def exp(self) -> np.ndarray:
        """(T, 79) float32 expression coefficients this speech drives (mouth + blinks)."""
        return self.gt("exp")

    def au_intensity(self) -> np.ndarray:
        """(T, 10) float32 AU intensities on a 0..5 scale, columns ``au_names``."""
        return self.gt("au_intensity")

    def au_labels(self) -> np.ndarray:
        """(T, 10) uint8 AU on/off (intensity >= AU_ON_THRESHOLD)."""
        return self.gt("au_label")

    def audio_features(self, kind: str) -> np.ndarray:
        """Features written by talklib.audio as ``aud_<kind>.npy`` (shape documented there)."""
        return _audio_features(self.path, kind)

    def __repr__(self) -> str:
        return f"SpeechClip({self.name!r}, source={self.source!r}, voice={self.voice!r}, frames={self.n_frames})"


def _audio_features(folder: Path, kind: str) -> np.ndarray:
    p = folder / f"aud_{kind}.npy"
    if not p.is_file():
        raise UserError(f"audio features {p.name} are missing in {folder}: compute them first with talklib.audio "
                        f"(notebook 02)")
    return _load_npy(p)


# ----------------------------------------------------------------------------------------------
# rendered clips


class Clip(SpeechClip):
    """A rendered clip folder (layout in the module docstring). Accessors return NumPy arrays.

    Frames are read lazily per call; nothing is cached except the JSON descriptions.
    """

    def __init__(self, path: str | Path):
        self.path = _check_folder(path, "dataset.json", "clip")
        self.meta = _read_json(self.path / "dataset.json", "clip description")
        self._files = self.meta.get("files", {})
        if self.meta.get("kind") != "clip":
            raise UserError(f"{self.path} holds a {self.meta.get('kind', 'unknown')!r} description, not a clip: "
                            f"pass a clip folder (clips/<name>) or use load_corpus for a corpus")
        for f in ("aud.wav", "bc.png", "transforms_train.json", "transforms_val.json"):
            if not (self.path / f).is_file():
                raise UserError(f"clip {self.path} lacks {f}: rebuild the dataset with --force")
        for v in self.views:
            d = self.path / self._view_dir(v)
            if not d.is_dir():
                raise UserError(f"clip {self.path} lacks the frames of view {v!r} ({d.name}/): rebuild with --force")

    # metadata ---------------------------------------------------------------------------------
    @property
    def identity(self) -> str:
        return self.meta.get("identity", "")

    @property
    def split(self) -> str:
        """``train``, ``testA`` or ``testB``."""
        return self.meta.get("split", "")

    @property
    def size(self) -> tuple[int, int]:
        """(height, width) of every frame, pixels."""
        return int(self.meta["height"]), int(self.meta["width"])

    @property
    def views(self) -> list[str]:
        """View names; ``"front"`` is the training camera, the others are held-out novel views."""
        return [v["name"] for v in self.meta["views"]]

    @property
    def novel_views(self) -> list[str]:
        return [v for v in self.views if v != "front"]

    def view_info(self, view: str) -> dict:
        """The view's description: name, yaw_deg, pitch_deg (camera orbit around the head), distance_m."""
        for v in self.meta["views"]:
            if v["name"] == view:
                return dict(v)
        raise UserError(f"clip {self.name} has no view {view!r}: choose one of {', '.join(self.views)}")

    def _view_dir(self, view: str) -> str:
        return "ori_imgs" if view == "front" else f"views/{view}"

    def transforms(self, which: str = "train") -> dict:
        """Parsed ``transforms_<which>.json`` (``train``, ``val`` or a view name)."""
        if which not in ("train", "val"):
            self.view_info(which)
        return _read_json(self.path / f"transforms_{which}.json", "transforms file")

    @cached_property
    def train_ids(self) -> np.ndarray:
        """(N_train,) int64 frame indices of the training split (AD-NeRF's first 10/11)."""
        return np.array([f["img_id"] for f in self.transforms("train")["frames"]], np.int64)

    @cached_property
    def val_ids(self) -> np.ndarray:
        """(N_val,) int64 frame indices of the held-out frames (AD-NeRF's last 1/11)."""
        return np.array([f["img_id"] for f in self.transforms("val")["frames"]], np.int64)

    # images -----------------------------------------------------------------------------------
    def _indices(self, indices) -> np.ndarray:
        if indices is None:
            return np.arange(self.n_frames)
        idx = np.atleast_1d(np.asarray(indices, np.int64))
        if idx.size and (idx.min() < 0 or idx.max() >= self.n_frames):
            raise UserError(f"frame index out of range 0..{self.n_frames - 1} for clip {self.name}")
        return idx

    def frames(self, view: str = "front", indices=None) -> np.ndarray:
        """(T, H, W, 3) uint8 RGB frames of ``view`` (all frames, or ``indices``)."""
        self.view_info(view)
        d = self.path / self._view_dir(view)
        return np.stack([_read_png(d / f"{i}.png")[..., :3] for i in self._indices(indices)])

    def frame(self, i: int, view: str = "front") -> np.ndarray:
        """(H, W, 3) uint8 RGB of frame ``i``."""
        return self.frames(view, [i])[0]

    def alpha(self, view: str = "front", indices=None) -> np.ndarray:
        """(T, H, W) float32 head alpha in [0, 1] (1 = head, 0 = background)."""
        self.view_info(view)
        d = self.path / "masks" / view
        return np.stack([_read_png(d / f"{i}.png") for i in self._indices(indices)]).astype(np.float32) / 255.0

    def background(self) -> np.ndarray:
        """(H, W, 3) uint8 RGB background (``bc.png``), the same for every view."""
        return _read_png(self.path / "bc.png")[..., :3]

    def camera(self, view: str = "front") -> Camera:
        """The camera of ``view`` for every frame (see ``Camera``)."""
        info = self.view_info(view)
        tf = self.transforms("train") if view == "front" else self.transforms(view)
        if view == "front":
            frames = tf["frames"] + self.transforms("val")["frames"]
        else:
            frames = tf["frames"]
        frames = sorted(frames, key=lambda f: f["img_id"])
        c2w = np.array([f["transform_matrix"] for f in frames], np.float64)
        c2w_world = np.repeat(np.asarray(info["c2w_world"], np.float64)[None], len(frames), axis=0)
        h, w = self.size
        return Camera(view, float(tf["focal_len"]), float(tf["cx"]), float(tf["cy"]), w, h, c2w, c2w_world)

    def face_rects(self, view: str = "front") -> np.ndarray:
        """(T, 4) int64 head bounding boxes ``[x, y, w, h]`` in pixels."""
        frames = (self.transforms("train")["frames"] + self.transforms("val")["frames"]) if view == "front" \
            else self.transforms(view)["frames"]
        frames = sorted(frames, key=lambda f: f["img_id"])
        return np.array([f["face_rect"] for f in frames], np.int64)

    # ground truth -----------------------------------------------------------------------------
    def id_coeffs(self) -> np.ndarray:
        """(100,) float32 identity coefficients (f_id; B_id F_id of DFA-NeRF Eq. 1)."""
        return self.gt("id")

    def alb_coeffs(self) -> np.ndarray:
        """(100,) float32 albedo coefficients (f_alb)."""
        return self.gt("alb")

    def illu(self) -> np.ndarray:
        """(T, 27) float32 illumination: 9 SH coefficients (bands 0..2) x RGB, laid out [c*9 + k]."""
        return self.gt("illu")

    def pose(self) -> np.ndarray:
        """(T, 6) float32 head pose: yaw, pitch, roll in degrees, then tx, ty, tz in metres (world frame)."""
        return self.gt("pose")

    def head_pose(self) -> np.ndarray:
        """(T, 4, 4) float32 head-to-world matrices (the same pose as ``pose()``)."""
        return self.gt("head_pose")

    def landmarks3d(self) -> np.ndarray:
        """(T, 478, 3) float32 mediapipe-numbered landmarks in the world frame, metres."""
        return self.gt("lmk3d")

    def landmarks2d(self, view: str = "front") -> np.ndarray:
        """(T, 478, 2) float32 projected landmarks of ``view`` in pixels (x column, y row)."""
        self.view_info(view)
        return self.gt(f"lmk2d_{view}")

    def audio_features(self, kind: str) -> np.ndarray:
        return _audio_features(self.path, kind)

    def __repr__(self) -> str:
        h, w = self.size
        return (f"Clip({self.name!r}, identity={self.identity!r}, split={self.split!r}, frames={self.n_frames}, "
                f"{w}x{h}, views={self.views})")


# ----------------------------------------------------------------------------------------------
# corpus


class Corpus:
    """A corpus folder: identities, rendered clips and speech-only clips (see ``corpus.json``)."""

    def __init__(self, path: str | Path):
        self.path = _check_folder(path, "corpus.json", "corpus")
        self.meta: dict = _read_json(self.path / "corpus.json", "corpus description")
        if self.meta.get("format_version") != FORMAT_VERSION:
            raise UserError(f"corpus {self.path} has format version {self.meta.get('format_version')}, "
                            f"this talklib reads {FORMAT_VERSION}: rebuild it with --force")
        for c in self.meta.get("clips", []) + self.meta.get("speech", []):
            if not (self.path / c["path"] / "dataset.json").is_file():
                raise UserError(f"corpus {self.path} lists {c['path']} but it is missing: rebuild with --force")

    @property
    def preset(self) -> str:
        return self.meta.get("preset", "")

    @property
    def seed(self) -> int:
        return int(self.meta.get("seed", 0))

    @property
    def fingerprint(self) -> str:
        """Hash of the generator's parameters (``ensure_corpus`` rebuilds when it changes)."""
        return self.meta.get("fingerprint", "")

    @property
    def fps(self) -> int:
        return int(self.meta.get("fps", FPS))

    @property
    def au_names(self) -> tuple[str, ...]:
        return tuple(self.meta.get("au_names", AU_NAMES))

    @property
    def identities(self) -> list[str]:
        """All identity names, e.g. ``["id00", "id01", ...]``."""
        return [i["name"] for i in self.meta["identities"]]

    def identity_split(self, split: str = "train") -> list[str]:
        """Identities with ``split`` (``train`` or ``test``: held out for single-shot experiments)."""
        return [i["name"] for i in self.meta["identities"] if i.get("split", "train") == split]

    def clips(self, split: str | None = None, identity: str | None = None) -> list[Clip]:
        """Rendered clips, filtered by split (``train``/``testA``/``testB``) and/or identity."""
        out = []
        for c in self.meta["clips"]:
            if split is not None and c["split"] != split:
                continue
            if identity is not None and c["identity"] != identity:
                continue
            out.append(Clip(self.path / c["path"]))
        if not out and (split is not None or identity is not None):
            have = sorted({(c["identity"], c["split"]) for c in self.meta["clips"]})
            raise UserError(f"no clip with split={split!r} identity={identity!r} in {self.path}: the corpus has "
                            + ", ".join(f"{i}/{s}" for i, s in have))
        return out

    def clip(self, name: str | None = None, *, split: str = "train", identity: str | None = None) -> Clip:
        """One clip by name, or the first clip of ``split`` (and ``identity``, default the first)."""
        if name is not None:
            for c in self.meta["clips"]:
                if c["name"] == name:
                    return Clip(self.path / c["path"])
            raise UserError(f"no clip {name!r} in {self.path}: choose one of "
                            + ", ".join(c["name"] for c in self.meta["clips"]))
        identity = identity or self.identities[0]
        return self.clips(split=split, identity=identity)[0]

    def speech(self, source: str | None = None) -> list[SpeechClip]:
        """Speech-only clips (``source`` ``espeak`` or ``arctic`` to filter)."""
        return [SpeechClip(self.path / s["path"]) for s in self.meta.get("speech", [])
                if source is None or s.get("source") == source]

    def __repr__(self) -> str:
        return (f"Corpus({str(self.path)!r}, preset={self.preset!r}, identities={len(self.identities)}, "
                f"clips={len(self.meta['clips'])}, speech={len(self.meta.get('speech', []))})")


def load_corpus(path: str | Path) -> Corpus:
    """Open a corpus folder (``corpus.json``); UserError if missing or invalid."""
    return Corpus(path)


def load_clip(path: str | Path) -> Clip:
    """Open one rendered clip folder (``dataset.json`` of kind ``clip``); UserError if missing or invalid."""
    return Clip(path)


def load_speech(path: str | Path) -> SpeechClip:
    """Open one speech-only clip folder."""
    return SpeechClip(path)


def load_dataset(path: str | Path) -> Corpus | Clip | SpeechClip:
    """Open a corpus, a rendered clip or a speech-only clip folder, whichever ``path`` is."""
    p = Path(path)
    if (p / "corpus.json").is_file():
        return Corpus(p)
    if (p / "dataset.json").is_file():
        kind = _read_json(p / "dataset.json", "dataset description").get("kind")
        return Clip(p) if kind == "clip" else SpeechClip(p)
    _check_folder(p, "corpus.json", "dataset")  # raises the right message
    raise AssertionError("unreachable")


def validate_clip(clip: Clip) -> None:
    """Full check of a clip: every file in dataset.json exists with its declared shape; frame counts match."""
    for rel, spec in clip._files.items():
        p = clip.path / rel
        if rel.endswith(".npy"):
            _load_npy(p, spec)
        elif "count" in spec:  # a folder of per-frame images
            n = len(list(p.glob("*.png"))) if p.is_dir() else 0
            if n != spec["count"]:
                raise UserError(f"{p} holds {n} frames, dataset.json says {spec['count']}: rebuild with --force")
        elif not p.exists():
            raise UserError(f"dataset file {p} is missing: rebuild the dataset with --force")
    n = clip.n_frames
    if len(clip.train_ids) + len(clip.val_ids) != n:
        raise UserError(f"clip {clip.path}: transforms list {len(clip.train_ids) + len(clip.val_ids)} frames, "
                        f"dataset.json says {n}: rebuild with --force")
