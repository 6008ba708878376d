"""Write one clip folder (layout: ``talklib.data.dataset``): render every view, save frames and truth."""

from __future__ import annotations

import collections
import json
import os
import threading
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np

from talklib.data.dataset import AU_NAMES, AU_ON_THRESHOLD, EXP_NAMES, FPS, FORMAT_VERSION, SAMPLE_RATE, png_bytes

VIEW_ANGLES = {"front": (0.0, 0.0), "yaw_m30": (-30.0, 0.0), "yaw_p30": (30.0, 0.0), "yaw_m20": (-20.0, 0.0),
               "yaw_p20": (20.0, 0.0), "yaw_m15": (-15.0, 0.0), "yaw_p15": (15.0, 0.0), "pitch_p15": (0.0, 15.0),
               "pitch_m15": (0.0, -15.0)}
CAMERA_DISTANCE_M = 0.6
FOV_DEG = 22.0


def parse_views(text: str) -> list[str]:
    """``"yaw_m30,yaw_p30"`` -> ["front", "yaw_m30", "yaw_p30"] (front always first)."""
    from talklib.errors import UserError

    out = ["front"]
    for v in (s.strip() for s in text.split(",") if s.strip()):
        if v not in VIEW_ANGLES:
            raise UserError(f"unknown view {v!r}: choose from {', '.join(VIEW_ANGLES)}")
        if v not in out:
            out.append(v)
    return out


def make_background(rng: np.random.Generator, size: int) -> np.ndarray:
    """(size, size, 3) uint8 static backdrop: a soft vertical gradient with a few blurred blobs."""
    y, x = np.mgrid[0:size, 0:size] / size
    top, bottom = rng.uniform(0.35, 0.7, 3), rng.uniform(0.15, 0.45, 3)
    img = top[None, None] * (1 - y[..., None]) + bottom[None, None] * y[..., None]
    for _ in range(4):
        c = rng.uniform(0, 1, 2)
        r = rng.uniform(0.1, 0.3)
        col = rng.uniform(-0.12, 0.12, 3)
        img += col * np.exp(-((x - c[0]) ** 2 + (y - c[1]) ** 2) / (2 * r * r))[..., None]
    return (np.clip(img, 0, 1) * 255 + 0.5).astype(np.uint8)


def _write_wav(path: Path, audio: np.ndarray) -> None:
    import soundfile as sf

    sf.write(str(path), np.clip(audio, -1, 1), SAMPLE_RATE, subtype="PCM_16", format="WAV")


def write_speech_folder(folder: Path, name: str, audio: np.ndarray, timeline, curves: dict, meta: dict) -> None:
    """A speech-only clip: aud.wav, gt/{exp, au_intensity, au_label}.npy, gt/phonemes.json, dataset.json."""
    from talklib.face3d.model import au_intensity
    from talklib.speaker.visemes import viseme

    folder.mkdir(parents=True, exist_ok=True)
    (folder / "gt").mkdir(exist_ok=True)
    _write_wav(folder / "aud.wav", audio)
    exp = curves["exp"]
    T = exp.shape[0]
    au = au_intensity(exp).astype(np.float32)
    lab = (au >= AU_ON_THRESHOLD).astype(np.uint8)
    np.save(folder / "gt" / "exp.npy", exp)
    np.save(folder / "gt" / "au_intensity.npy", au)
    np.save(folder / "gt" / "au_label.npy", lab)
    phon = [{"phone": p, "start": s, "end": e, "viseme": viseme(p)} for p, s, e in timeline]
    (folder / "gt" / "phonemes.json").write_text(json.dumps(phon, indent=0) + "\n")
    files = {
        "aud.wav": {"shape": [len(audio)], "dtype": "pcm16", "unit": "16 kHz mono",
                    "description": "speech; frame i covers samples [640 i, 640 (i+1))"},
        "gt/exp.npy": {"shape": [T, 79], "dtype": "float32", "unit": "coefficient (named ones in [0, 1])",
                       "description": f"expression f_exp; first columns {', '.join(EXP_NAMES)}"},
        "gt/au_intensity.npy": {"shape": [T, len(AU_NAMES)], "dtype": "float32", "unit": "FACS 0..5",
                                "description": f"AU intensities, columns {', '.join(AU_NAMES)}"},
        "gt/au_label.npy": {"shape": [T, len(AU_NAMES)], "dtype": "uint8", "unit": "0/1",
                            "description": f"AU present (intensity >= {AU_ON_THRESHOLD})"},
        "gt/phonemes.json": {"description": "phone timeline [{phone (ARPAbet or SIL), start, end (s), viseme}]"},
    }
    desc = {"kind": "speech", "format_version": FORMAT_VERSION, "name": name, "fps": FPS,
            "sample_rate": SAMPLE_RATE, "n_frames": T, "au_names": list(AU_NAMES), "exp_names": list(EXP_NAMES),
            **meta, "files": files}
    (folder / "dataset.json").write_text(json.dumps(desc, indent=1) + "\n")


def default_workers() -> int:
    """Threads for rendering and PNG encoding: the CPUs this process may use, at most 16."""
    cpus = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)
    return max(1, min(16, cpus))


def render_slots(device_type: str, workers: int, batch: int, size: int) -> int:
    """How many batches may render at once: 2 on a GPU (it runs one at a time anyway); on the CPU one per
    worker while their peak memory (~300 bytes per pixel of a batch) fits in half of the physical memory."""
    if device_type != "cpu":
        return 2
    try:
        ram = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    except (ValueError, OSError, AttributeError):
        ram = 16 * 2**30
    return max(1, min(workers, int(ram // 2 // (300 * batch * size * size))))


def face_rects(alpha: np.ndarray) -> np.ndarray:
    """Bounding boxes (n, 4) int64 [x, y, w, h] of the pixels > 127 of masks alpha (n, H, W) uint8 (0s if none)."""
    m = alpha > 127
    cols, rows = m.any(1), m.any(2)                          # (n, W), (n, H)
    x0, y0 = cols.argmax(1), rows.argmax(1)
    x1 = m.shape[2] - 1 - cols[:, ::-1].argmax(1)
    y1 = m.shape[1] - 1 - rows[:, ::-1].argmax(1)
    rect = np.stack([x0, y0, x1 - x0 + 1, y1 - y0 + 1], 1).astype(np.int64)
    rect[~cols.any(1)] = 0
    return rect


def write_clip(folder: Path, name: str, audio: np.ndarray, timeline, curves: dict, id_coeff: np.ndarray,
               alb_coeff: np.ndarray, background: np.ndarray, views: list[str], size: int, meta: dict,
               model=None, device=None, batch: int = 32, progress=None, workers: int | None = None) -> None:
    """Render ``views`` of every frame and write the full clip folder.

    Batches of ``batch`` frames are rendered and PNG-encoded by ``workers`` threads (default
    ``default_workers()``; torch and zlib release the GIL). ``render_slots`` batches render at once (2 on a
    GPU, while the other threads encode; on the CPU each thread renders its own batch with the caller's
    torch thread count). At most 2 x workers batches are queued, so memory stays bounded whatever the
    clip's length. The files do not depend on ``workers``: same inputs, same bytes.
    ``progress(n)`` (optional) is called from this thread with the frames finished.
    """
    import torch

    from talklib.face3d.camera import focal_for, head_canonical_c2w, orbit_camera, pose_matrix
    from talklib.face3d.model import MorphableModel
    from talklib.face3d.render import render

    write_speech_folder(folder, name, audio, timeline, curves, meta)
    model = model or MorphableModel.from_asset()
    t = model.tensors(device)
    exp, pose, illu = curves["exp"], curves["pose"], curves["illu"]
    T = exp.shape[0]
    focal = focal_for(size, FOV_DEG)
    cx = cy = size / 2.0
    bg = torch.as_tensor(background.astype(np.float32) / 255.0, device=device)
    exp_t, illu_t, pose_t = (torch.as_tensor(a, device=device) for a in (exp, illu, pose))
    head_pose = pose_matrix(torch.as_tensor(pose, dtype=torch.float64)).numpy()
    workers = int(workers or default_workers())
    gate = threading.BoundedSemaphore(render_slots(t["mean"].device.type, workers, batch, size))
    lmk3d = np.zeros((T, 478, 3), np.float32)
    cams, dirs, lmk2d, rects, view_desc = {}, {}, {}, {}, []
    for view in views:
        yaw, pitch = VIEW_ANGLES[view]
        c2w_world = orbit_camera(yaw, pitch, CAMERA_DISTANCE_M)
        view_desc.append({"name": view, "yaw_deg": yaw, "pitch_deg": pitch, "distance_m": CAMERA_DISTANCE_M,
                          "c2w_world": c2w_world.tolist()})
        cams[view] = (c2w_world, torch.as_tensor(c2w_world, dtype=torch.float32, device=device))
        dirs[view] = (folder / ("ori_imgs" if view == "front" else f"views/{view}"), folder / "masks" / view)
        for d in dirs[view]:
            d.mkdir(parents=True, exist_ok=True)
        lmk2d[view] = np.zeros((T, 478, 2), np.float32)
        rects[view] = np.zeros((T, 4), np.int64)

    def render_batch(view: str, b0: int, b1: int):
        n = b1 - b0
        with gate, torch.no_grad():
            out = render(t, torch.as_tensor(np.repeat(id_coeff[None], n, 0), device=device), exp_t[b0:b1],
                         torch.as_tensor(np.repeat(alb_coeff[None], n, 0), device=device), illu_t[b0:b1],
                         pose_t[b0:b1], cams[view][1].expand(n, -1, -1), focal, cx, cy, size, size, bg)
            # quantise where the pixels are (a GPU sends 4x fewer bytes); same float32 ops as NumPy's
            rgb = (out["rgb"] * 255.0 + 0.5).to(torch.uint8).cpu().numpy()
            alpha = (out["alpha"] * 255.0 + 0.5).to(torch.uint8).cpu().numpy()
            l2d = out["lmk2d"].cpu().numpy()
            l3d = out["lmk3d"].cpu().numpy() if view == "front" else None
        img_dir, mask_dir = dirs[view]
        for k in range(n):
            (img_dir / f"{b0 + k}.png").write_bytes(png_bytes(rgb[k]))
            (mask_dir / f"{b0 + k}.png").write_bytes(png_bytes(alpha[k]))
        return view, b0, b1, l2d, l3d, face_rects(alpha)

    def collect(result) -> None:
        view, b0, b1, l2d, l3d, rect = result
        lmk2d[view][b0:b1] = l2d
        rects[view][b0:b1] = rect
        if l3d is not None:
            lmk3d[b0:b1] = l3d
        if progress is not None:
            progress(b1 - b0)

    with ThreadPoolExecutor(workers, thread_name_prefix="write_clip") as pool:
        pending = collections.deque()
        try:
            for view in views:
                for b0 in range(0, T, batch):
                    pending.append(pool.submit(render_batch, view, b0, min(T, b0 + batch)))
                    if len(pending) >= 2 * workers:
                        collect(pending.popleft().result())
            while pending:
                collect(pending.popleft().result())
        except BaseException:
            for f in pending:
                f.cancel()
            raise

    gt_files = {}
    for view in views:
        c2w_world = cams[view][0]
        img_dir = dirs[view][0]
        rect = rects[view]
        np.save(folder / "gt" / f"lmk2d_{view}.npy", lmk2d[view])
        gt_files[f"gt/lmk2d_{view}.npy"] = {"shape": [T, 478, 2], "dtype": "float32", "unit": "pixels (x, y)",
                                           "description": f"projected mediapipe-numbered landmarks, view {view}"}
        gt_files[img_dir.relative_to(folder).as_posix()] = {"count": T, "format": "png RGB",
                                                            "shape": [size, size, 3],
                                                            "description": f"frames of view {view}, <i>.png"}
        gt_files[f"masks/{view}"] = {"count": T, "format": "png L", "shape": [size, size],
                                     "description": f"head alpha of view {view} (255 = head)"}
        frames = [{"img_id": i, "aud_id": i, "transform_matrix": head_canonical_c2w(c2w_world, head_pose[i]).tolist(),
                   "face_rect": rect[i].tolist()} for i in range(T)]
        tf = {"focal_len": focal, "cx": cx, "cy": cy, "width": size, "height": size,
              "camera_angle_x": np.deg2rad(FOV_DEG), "view": view}
        if view == "front":
            n_train = int(np.ceil(T * 10 / 11))
            (folder / "transforms_train.json").write_text(json.dumps({**tf, "frames": frames[:n_train]}) + "\n")
            (folder / "transforms_val.json").write_text(json.dumps({**tf, "frames": frames[n_train:]}) + "\n")
        else:
            (folder / f"transforms_{view}.json").write_text(json.dumps({**tf, "frames": frames}) + "\n")
    (folder / "bc.png").write_bytes(png_bytes(background))
    arrays = {
        "id": (id_coeff.astype(np.float32), "coefficient ~ N(0, 1)", "identity f_id (B_id F_id of DFA-NeRF Eq. 1)"),
        "alb": (alb_coeff.astype(np.float32), "coefficient ~ N(0, 1)", "albedo f_alb (RGB gain fields)"),
        "illu": (illu.astype(np.float32), "SH coefficient", "illumination f_illu: 9 SH (bands 0..2) x RGB, [c*9+k]"),
        "pose": (pose.astype(np.float32), "deg, deg, deg, m, m, m", "head pose yaw, pitch, roll, tx, ty, tz (world)"),
        "head_pose": (head_pose.astype(np.float32), "4x4 rigid, metres", "head-to-world matrix per frame"),
        "lmk3d": (lmk3d, "metres, world frame", "3D landmarks (mediapipe numbering, 478)"),
    }
    for key, (arr, unit, descr) in arrays.items():
        np.save(folder / "gt" / f"{key}.npy", arr)
        gt_files[f"gt/{key}.npy"] = {"shape": list(arr.shape), "dtype": str(arr.dtype), "unit": unit,
                                     "description": descr}
    desc = json.loads((folder / "dataset.json").read_text())
    desc.update({"kind": "clip", "width": size, "height": size, "views": view_desc,
                 "camera": {"focal_len": focal, "cx": cx, "cy": cy, "fov_deg": FOV_DEG,
                            "axes": "OpenGL: camera looks along -z, +y up; transform_matrix = c2w in the head frame"}})
    desc["files"].update(gt_files)
    desc["files"].update({
        "bc.png": {"shape": [size, size, 3], "description": "background RGB, identical for all views"},
        "transforms_train.json": {"description": "AD-NeRF: focal_len, cx, cy, frames (first 10/11) with "
                                                 "img_id, aud_id, transform_matrix (4x4 c2w in head frame), face_rect [x, y, w, h]"},
        "transforms_val.json": {"description": "AD-NeRF: the last 1/11 of the frames"},
    })
    for v in views[1:]:
        desc["files"][f"transforms_{v}.json"] = {"description": f"novel view {v}: every frame, same schema"}
    (folder / "dataset.json").write_text(json.dumps(desc, indent=1) + "\n")
