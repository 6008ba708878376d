"""``prepare_video``: a talking-face video -> a clip folder in talklib's AD-NeRF layout.

The steps (each module says more):

1. ``video``: probe the file, decode it at 25 fps; the sound at 16 kHz mono (or ``audio=`` a file).
2. ``track``: mediapipe landmarks per frame; short losses bridged, long ones dropped with their sound;
   one square crop for the whole video, resized to ``size``.
3. ``fit``: identity, pose (smoothed over time) and expression of talklib's morphable model from the
   landmarks; albedo and illumination from the colours.
4. here: a second decoding pass writes the cropped frames, the head / face / mouth masks of the fitted
   mesh, and gathers the background (the per-pixel median of what the head never covers, inpainted
   where it always does); then the estimates (``gt/`` holds them, in the synthetic speaker's names),
   the audio features, AD-NeRF's transforms and ``prepare_report.html``.

Everything is built in ``.OUT.building-PID`` next to the output and renamed at the end: a prepare
stopped half-way leaves no folder that looks complete.
"""

from __future__ import annotations

import json
import shutil
import time
from pathlib import Path

import numpy as np

from talklib.data.dataset import AU_NAMES, AU_ON_THRESHOLD, EXP_NAMES, FORMAT_VERSION, SAMPLE_RATE, png_bytes
from talklib.errors import UserError

FPS = 25
HOP = SAMPLE_RATE // FPS
#: the shortest video ``prepare`` accepts, seconds with a visible face (the NeRF holds out 1/11 of the frames;
#: the synthetic speaker's small preset trains on 10 s; 1 to 5 minutes is what the papers use)
MIN_SECONDS = 5.0
#: the fitted mesh is rasterized (for the colour samples of albedo and light) at most this large, on every
#: APPEARANCE_EVERY-th frame; the masks are its silhouette filled at full size on every frame
RASTER_SIZE = 128
APPEARANCE_EVERY = 4


def segments_of(keep: np.ndarray) -> list[tuple[int, int]]:
    """[start, end) of each kept stretch, in the numbering of the kept frames (cuts split stretches)."""
    from talklib.prepare.track import runs

    out, n = [], 0
    for a, b in runs(keep):
        out.append((n, n + b - a))
        n += b - a
    return out


def kept_audio(audio: np.ndarray, keep: np.ndarray) -> np.ndarray:
    """The sound of the kept frames, 640 samples (40 ms) each, in order."""
    T = len(keep)
    x = np.zeros(T * HOP, np.float32)
    n = min(len(audio), T * HOP)
    x[:n] = audio[:n]
    return x.reshape(T, HOP)[keep].reshape(-1)


def background_from(frames: list[np.ndarray], covered: list[np.ndarray]) -> tuple[np.ndarray, float]:
    """The per-pixel median of ``frames`` where the (dilated) head does not cover them; pixels the head
    always covers are inpainted (OpenCV Telea). Returns the background and the inpainted fraction.

    The median is NumPy's ``nanmedian`` with the covered samples as NaN (the mean of the two middle values
    for an even count, truncated to uint8), computed by one sort of the uint8 samples with the covered ones
    moved to the end: 0.5-0.8 s instead of 1.4-2.1 s for 20-27 frames at 512² (identical results).
    """
    import cv2

    cov = np.stack(covered)                                          # (N, H, W)
    vals = np.stack(frames).astype(np.uint16)                        # (N, H, W, 3)
    vals[cov] = 256                                                  # above any sample: sorted last
    vals = np.sort(np.moveaxis(vals, 0, -1), axis=-1)                # (H, W, 3, N)
    n = (~cov).sum(0)                                                # uncovered samples per pixel
    lo = np.take_along_axis(vals, np.maximum(n - 1, 0)[..., None, None] // 2, -1)
    hi = np.take_along_axis(vals, np.maximum(n, 0)[..., None, None] // 2, -1)
    hole = n == 0
    bg = ((lo + hi) // 2)[..., 0].astype(np.uint8)
    bg[hole] = 0
    if hole.any():
        bg = cv2.inpaint(bg, hole.astype(np.uint8) * 255, 5, cv2.INPAINT_TELEA)
    return bg, float(hole.mean())


def check_out(out: Path, force: bool) -> None:
    if out.exists() and not out.is_dir():
        raise UserError(f"--out {out} is a file: give a folder for the dataset")
    if out.is_dir() and any(out.iterdir()) and not force:
        raise UserError(f"--out {out} exists already: choose a new folder, or --force to replace it")


def prepare_video(video: str | Path, out: str | Path, size: int = 128, audio: str | Path | None = None,
                  force: bool = False, max_gap: int = 5, smooth: float = 1.5, fov_deg: float = 22.0,
                  min_seconds: float = MIN_SECONDS, extractors: str | Path | None = None,
                  name: str | None = None, progress: bool = True) -> Path:
    """Prepare ``video`` into the clip folder ``out`` (see the module docstring); returns ``out``."""
    import importlib
    from concurrent.futures import ThreadPoolExecutor

    from talklib.audio.io import load_audio
    from talklib.outputs import output_lock, remove_stale, replace_dir, temp_name
    from talklib.prepare import track as TR
    from talklib.data.video import read_video_audio
    from talklib.prepare.video import frames_25, open_video

    out = Path(out)
    check_out(out, force)
    if size < 64 or size % 2:
        raise UserError(f"--size {size}: give an even frame size of at least 64 pixels (128 small, 512 full)")
    if extractors is not None and not Path(extractors).is_file():
        raise UserError(f"--extractors {extractors} does not exist: give the aud_extractors.pt that notebook 02 "
                        "wrote into a clip folder, or leave it out")
    started = time.time()
    src = open_video(video)
    no_sound = UserError(f"{src.path.name} has no sound track: give the speech with --audio FILE (wav, flac, mp3), "
                         "recorded with this video")
    if audio is not None:
        sound, sound_from = load_audio(audio), str(audio)
    elif not src.has_audio:
        raise no_sound
    total = int(round(src.seconds * FPS)) or None

    with ThreadPoolExecutor(1, thread_name_prefix="prepare_side") as side:
        # on the core that tracking leaves idle: the sound track and the fit's libraries (torch, SciPy: ~3 s)
        sound_job = side.submit(read_video_audio, src.path) if audio is None else None
        fit_libs = side.submit(importlib.import_module, "talklib.prepare.fit")
        tr = TR.track(frames_25(src), total, progress)
        if sound_job is not None:
            sound, sound_from = sound_job.result(), "the video's sound track"
            if sound is None:
                raise no_sound
        F = fit_libs.result()
    from talklib.face3d.model import MorphableModel

    keep, gaps = TR.plan_gaps(tr, max_gap)
    n_keep = int(keep.sum())
    if n_keep < min_seconds * FPS:
        raise UserError(f"{src.path.name} gives {n_keep / FPS:.1f} s of video with a visible face; training needs at "
                        f"least {min_seconds:.0f} s (1 to 5 minutes is best): record a longer video")
    segs = segments_of(keep)
    box = TR.crop_box(tr.landmarks[keep])
    lmk = TR.to_crop(tr.landmarks[keep], box, size)
    cam = F.camera_for(size, fov_deg)
    model = MorphableModel.from_asset()
    t = model.tensors()
    geo = F.fit_geometry(t, lmk, cam, segs, smooth=smooth, progress=progress)
    sampled = (n_keep - 1) // APPEARANCE_EVERY + 1       # frames with colour samples: 0, 4, 8, ...
    key = APPEARANCE_EVERY * np.unique(np.linspace(0, sampled - 1, min(32, sampled)).round().astype(int))

    remove_stale(out)
    with output_lock(out):
        tmp = temp_name(out, "building")
        if tmp.exists():
            shutil.rmtree(tmp)
        try:
            made = _write(tmp, src, keep, box, lmk, geo, cam, t, key, size, progress)
            _finish(tmp, src, sound, sound_from, keep, gaps, tr, box, lmk, geo, made, t, cam, size, extractors,
                    name or src.path.stem, started)
            replace_dir(tmp, out)
        except BaseException:
            shutil.rmtree(tmp, ignore_errors=True)
            raise
    return out


def _write(tmp: Path, src, keep, box, lmk, geo, cam, t, key, size, progress) -> dict:
    """Second pass: cropped frames and masks written; returns albedo, illumination, the fitted mesh's
    landmarks, head boxes and the background."""
    import cv2
    from concurrent.futures import ThreadPoolExecutor

    from tqdm.auto import tqdm

    from talklib.prepare import fit as F
    from talklib.prepare import track as TR
    from talklib.prepare.video import frames_25
    from talklib.face3d.topology import FACE_OVAL
    from talklib.speaker.clip import face_rects
    from talklib.sync.crops import MOUTH_40

    for d in ("ori_imgs", "masks/front", "masks_face", "masks_mouth", "gt"):
        (tmp / d).mkdir(parents=True, exist_ok=True)
    n_keep = len(lmk)
    lo = min(size, RASTER_SIZE)       # the mesh is rasterized at most this large for the colour samples
    faces = t["faces"].numpy()
    cam_lo = F.Camera(cam.focal * lo / size, cam.cx * lo / size, cam.cy * lo / size, lo, cam.c2w_world)
    app = F.Appearance(t)
    bg_every = max(1, n_keep // 24)
    bg_frames, bg_cover = [], []
    lmk2d_fit = np.zeros((n_keep, 478, 2), np.float32)
    lmk3d = np.zeros((n_keep, 478, 3), np.float32)
    rects = np.zeros((n_keep, 4), np.int64)     # head boxes, per batch: all masks of a 5-minute video at 512² are 2 GB
    kernel = np.ones((9, 9), np.uint8)
    outer_lips = list(MOUTH_40[:20])
    j = 0     # kept frames written so far
    i0 = 0    # source frames seen so far
    with ThreadPoolExecutor(2) as pool, \
            tqdm(total=n_keep, unit="frame", desc="frames + masks", disable=not progress, leave=False) as bar:
        pending = []
        for batch in frames_25(src):
            sel = keep[i0:i0 + len(batch)]
            i0 += len(batch)
            if not sel.any():
                continue
            crops = TR.crop_frames(batch if sel.all() else batch[sel], box, size)
            b = len(crops)
            proj = F.project_fit(t, geo["id"], geo["exp"][j:j + b], geo["pose"][j:j + b], cam)
            alpha = F.silhouettes(proj["pix"], faces, size)
            alpha8 = alpha.astype(np.uint8) * 255               # the head mask as written, and its boxes
            lmk2d_fit[j:j + b], lmk3d[j:j + b] = proj["lmk2d"], proj["lmk3d"]
            rects[j:j + b] = face_rects(alpha8)
            pick = [k for k in range(b) if (j + k) % APPEARANCE_EVERY == 0]    # colour samples, at <= 128 px
            if pick:
                small = crops[pick] if lo == size else np.stack([cv2.resize(crops[k], (lo, lo),
                                                                            interpolation=cv2.INTER_AREA) for k in pick])
                sel_k = [j + k for k in pick]
                app.add(small, F.rasterize_fit(t, geo["id"], geo["exp"][sel_k], geo["pose"][sel_k], cam_lo), sel_k)
            face = np.stack([_fill(lmk[j + k][list(FACE_OVAL)], size) for k in range(b)]) & alpha
            mouth = np.stack([_fill(lmk[j + k][outer_lips], size) for k in range(b)])
            for k in range(b):
                if (j + k) % bg_every == 0:
                    bg_frames.append(crops[k])
                    bg_cover.append(cv2.dilate(alpha8[k], kernel) > 0)

            def save(j0=j, crops=crops, alpha8=alpha8, face=face, mouth=mouth):
                for k in range(len(crops)):
                    (tmp / "ori_imgs" / f"{j0 + k}.png").write_bytes(png_bytes(crops[k]))
                    (tmp / "masks/front" / f"{j0 + k}.png").write_bytes(png_bytes(alpha8[k]))
                    (tmp / "masks_face" / f"{j0 + k}.png").write_bytes(png_bytes(face[k].astype(np.uint8) * 255))
                    (tmp / "masks_mouth" / f"{j0 + k}.png").write_bytes(png_bytes(mouth[k].astype(np.uint8) * 255))

            pending.append(pool.submit(save))
            if len(pending) > 4:
                pending.pop(0).result()
            j += b
            bar.update(b)
        for f in pending:
            f.result()
    if i0 != len(keep) or j != n_keep:
        raise UserError(f"{src.path.name} decoded to {i0} frames the second time but {len(keep)} the first: the "
                        "file changed while it was read, or it is damaged; copy it again and retry")
    alb, illu = app.solve(key, n_keep)
    bg, hole = background_from(bg_frames, bg_cover)
    (tmp / "bc.png").write_bytes(png_bytes(bg))
    return {"alb": alb, "illu": illu, "lmk2d_fit": lmk2d_fit, "lmk3d": lmk3d, "rects": rects,
            "hole": hole}


def _fill(poly: np.ndarray, size: int) -> np.ndarray:
    """(size, size) bool: inside the polygon (N, 2) pixels (OpenCV, 1/16 pixel precision)."""
    import cv2

    m = np.zeros((size, size), np.uint8)
    cv2.fillPoly(m, [np.round((poly - 0.5) * 16).astype(np.int32)], 1, lineType=cv2.LINE_8, shift=4)
    return m.astype(bool)


def _finish(tmp: Path, src, sound, sound_from, keep, gaps, tr, box, lmk, geo, made, t, cam, size, extractors, name,
            started) -> None:
    """Estimates, sound, features, transforms, dataset.json and the report."""
    import soundfile as sf

    from talklib.audio.features import compute_features, write_features
    from talklib.face3d.camera import head_canonical_c2w, pose_matrix
    from talklib.face3d.model import au_intensity
    from talklib.prepare.report import write_report
    from talklib.sync.crops import mouth_boxes

    import torch

    T = len(lmk)
    audio = kept_audio(sound, keep)
    sf.write(str(tmp / "aud.wav"), np.clip(audio, -1, 1), SAMPLE_RATE, subtype="PCM_16", format="WAV")
    alb, illu, lmk2d_fit, rects, hole = (made[k] for k in ("alb", "illu", "lmk2d_fit", "rects", "hole"))
    pose = geo["pose"]
    head_pose = pose_matrix(torch.as_tensor(pose, dtype=torch.float64)).numpy().astype(np.float32)
    au = au_intensity(geo["exp"]).astype(np.float32)
    arrays = {
        "id": (geo["id"], "coefficient", "identity f_id, fitted to the landmarks (estimate, not ground truth)"),
        "exp": (geo["exp"], "coefficient (named ones in [0, 1])",
                f"expression f_exp fitted per frame under the smoothed pose; first columns {', '.join(EXP_NAMES)}"),
        "alb": (alb, "coefficient", "albedo f_alb (gain fields over the model's texture), closed-form fit"),
        "illu": (illu, "SH coefficient", "illumination f_illu per frame: 9 SH (bands 0..2) x RGB, [c*9+k]"),
        "pose": (pose, "deg, deg, deg, m, m, m", "head pose yaw, pitch, roll, tx, ty, tz (world), smoothed over time"),
        "pose_raw": (geo["pose_raw"], "deg, deg, deg, m, m, m", "head pose before the temporal smoothing"),
        "head_pose": (head_pose, "4x4 rigid, metres", "head-to-world matrix per frame (of the smoothed pose)"),
        "lmk3d": (made["lmk3d"], "metres, world frame", "3D landmarks of the fitted mesh"),
        "lmk2d_front": (lmk, "pixels (x, y)", "mediapipe landmarks detected in the cropped frames (bridged gaps "
                                              "interpolated)"),
        "lmk2d_fit": (lmk2d_fit, "pixels (x, y)", "the fitted mesh's 478 landmarks projected"),
        "fit_err_px": (geo["err_px"], "pixels", "mean distance between detected and fitted landmarks per frame"),
        "au_intensity": (au, "FACS 0..5", f"AU estimates from the fitted expression, columns {', '.join(AU_NAMES)}"),
        "au_label": ((au >= AU_ON_THRESHOLD).astype(np.uint8), "0/1", f"AU present (estimate >= {AU_ON_THRESHOLD})"),
        "mouth_box": (mouth_boxes(lmk, 0.5).astype(np.float32), "pixels [cx, cy, w, h]",
                      "mouth box per frame for the lip-sync expert (talklib.sync.crops.mouth_boxes, aspect 0.5)"),
    }
    files = {"aud.wav": {"shape": [len(audio)], "dtype": "pcm16", "unit": "16 kHz mono",
                         "description": f"speech ({sound_from}); frame i covers samples [640 i, 640 (i+1))"}}
    for k, (arr, unit, descr) in arrays.items():
        arr = np.ascontiguousarray(arr)
        np.save(tmp / "gt" / f"{k}.npy", arr)
        files[f"gt/{k}.npy"] = {"shape": list(arr.shape), "dtype": str(arr.dtype), "unit": unit, "description": descr}
    files.update({
        "ori_imgs": {"count": T, "format": "png RGB", "shape": [size, size, 3], "description": "cropped 25 fps frames"},
        "masks/front": {"count": T, "format": "png L", "shape": [size, size], "description": "head alpha: the fitted mesh"},
        "masks_face": {"count": T, "format": "png L", "shape": [size, size],
                       "description": "face: inside the detected face oval and the fitted mesh"},
        "masks_mouth": {"count": T, "format": "png L", "shape": [size, size],
                        "description": "mouth: inside the detected outer lip line"},
        "bc.png": {"shape": [size, size, 3], "description": f"background: per-pixel median where the head is not "
                                                            f"({100 * hole:.1f}% inpainted)"},
        "transforms_train.json": {"description": "AD-NeRF: focal_len, cx, cy, frames (first 10/11)"},
        "transforms_val.json": {"description": "AD-NeRF: the last 1/11 of the frames"},
    })
    frames = [{"img_id": i, "aud_id": i, "transform_matrix": head_canonical_c2w(cam.c2w_world, head_pose[i]).tolist(),
               "face_rect": rects[i].tolist()} for i in range(T)]
    fov = float(2 * np.arctan(size / 2 / cam.focal))
    tf = {"focal_len": cam.focal, "cx": cam.cx, "cy": cam.cy, "width": size, "height": size,
          "camera_angle_x": fov, "view": "front"}
    n_train = int(np.ceil(T * 10 / 11))
    (tmp / "transforms_train.json").write_text(json.dumps({**tf, "frames": frames[:n_train]}) + "\n")
    (tmp / "transforms_val.json").write_text(json.dumps({**tf, "frames": frames[n_train:]}) + "\n")
    info = {"video": str(src.path), "source_size": [src.width, src.height], "source_fps": src.fps,
            "source_seconds": src.seconds, "source_frames_25fps": len(keep), "kept_frames": T,
            "crop": {"x0": box[0], "y0": box[1], "side": box[2]}, "gaps": gaps, "notes": tr.notes,
            "fit_err_px_median": float(np.median(geo["err_px"])), "seconds_taken": None}
    desc = {"kind": "clip", "format_version": FORMAT_VERSION, "name": name, "fps": FPS, "sample_rate": SAMPLE_RATE,
            "n_frames": T, "au_names": list(AU_NAMES), "exp_names": list(EXP_NAMES), "identity": name,
            "split": "train", "voice": "", "text": "", "source": "prepared", "width": size, "height": size,
            "views": [{"name": "front", "yaw_deg": 0.0, "pitch_deg": 0.0, "distance_m": float(cam.c2w_world[2, 3]),
                       "c2w_world": cam.c2w_world.tolist()}],
            "camera": {"focal_len": cam.focal, "cx": cam.cx, "cy": cam.cy,
                       "fov_deg": float(np.degrees(fov)),
                       "axes": "OpenGL: camera looks along -z, +y up; transform_matrix = c2w in the head frame"},
            "prepare": info, "files": files}
    (tmp / "dataset.json").write_text(json.dumps(desc, indent=1) + "\n")
    feats = compute_features(audio, T)
    if extractors is not None:
        _learned_features(tmp, audio, T, Path(extractors), feats)
    write_features(tmp, feats)
    info["seconds_taken"] = round(time.time() - started, 1)
    desc = json.loads((tmp / "dataset.json").read_text())
    desc["prepare"]["seconds_taken"] = info["seconds_taken"]
    (tmp / "dataset.json").write_text(json.dumps(desc, indent=1) + "\n")
    write_report(tmp, tr, box, lmk, lmk2d_fit, geo, t, cam)


def _learned_features(tmp: Path, audio: np.ndarray, T: int, bundle_path: Path, feats: dict) -> None:
    """SpeechSplit codes, recogniser posteriors and f_a with notebook 02's networks (and the bundle beside)."""
    from talklib.condition.extract import BUNDLE_NAME, features_from_audio, load_bundle
    from talklib.condition.spec import parse

    bundle = load_bundle(bundle_path)
    want = [n for n, key in (("a_content", "speechsplit"), ("deepspeech", "recognizer"), ("f_a", "audio_encoder"))
            if bundle.get(key) is not None]
    if want:
        feats.update(features_from_audio(audio, parse(",".join(want)), bundle, T))
    shutil.copyfile(bundle_path, tmp / BUNDLE_NAME)
