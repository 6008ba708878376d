"""One photo + a wav -> talking-head frames, with no fitting (S3D-NeRF's single shot; ``render --source-image``).

Taught in notebook 09, section 9.9.

``frame_photo`` prepares a user's photo the way the training faces were framed: mediapipe finds the face,
a square around it is cut so the eyes sit where (and as far apart as) they sat in the training frames
(``framing``, saved in the checkpoint), and talklib's morphable model is fitted to the landmarks
(``talklib.face3d.fit.fit_photo``) for the source pose P_src of Eq. (2). The inner-face mask is the
landmarks' face oval, as for the training faces. ``talk`` then encodes the photo once and renders one
frame per 40 ms of audio, from the photo's own camera or turned by yaw / pitch around the head.
"""

from __future__ import annotations

import numpy as np
import torch

from talklib.errors import UserError

#: the largest head turn of a source photo S3D-NeRF accepts (the training faces are near frontal)
MAX_YAW_DEG, MAX_PITCH_DEG = 30.0, 25.0
DETECT_SIZE = 256          # mediapipe needs a face of about 100 px or more


def framing_of(landmarks: np.ndarray, size: int) -> dict:
    """Where the training faces sit in their frames: landmarks (T, 478, 2) pixels at ``size`` -> the mean
    eye midpoint (x, y) and inter-ocular distance, as fractions of the frame size."""
    L = np.asarray(landmarks, np.float64).reshape(-1, 478, 2)
    mid = (L[:, 33] + L[:, 263]) / 2
    iod = np.linalg.norm(L[:, 263] - L[:, 33], axis=-1)
    return {"eye_x": float(mid[:, 0].mean() / size), "eye_y": float(mid[:, 1].mean() / size),
            "iod": float(iod.mean() / size)}


def _resize(img: np.ndarray, size: int) -> np.ndarray:
    import cv2

    interp = cv2.INTER_AREA if img.shape[0] > size else cv2.INTER_LINEAR
    return cv2.resize(img, (size, size), interpolation=interp)


def crop_square(img: np.ndarray, x0: float, y0: float, side: float) -> np.ndarray:
    """The square [x0, x0 + side) x [y0, y0 + side) of img (H, W, 3), edges repeated where it leaves the photo."""
    import cv2

    side_px = max(1, int(round(side)))
    M = np.array([[1.0, 0.0, -x0], [0.0, 1.0, -y0]])
    return cv2.warpAffine(np.ascontiguousarray(img), M, (side_px, side_px), flags=cv2.INTER_LINEAR,
                          borderMode=cv2.BORDER_REPLICATE)


def frame_photo(photo: np.ndarray, framing: dict, size: int, detector=None) -> dict:
    """A photo (H, W, 3) uint8 -> the single shot: image (size, size, 3) uint8, mask (size, size) uint8,
    c2w (4, 4) the source camera in the head frame, focal (pixels at ``size``), yaw / pitch (degrees), box
    (x0, y0, side): the square of the photo the shot was cut from (``crop_square``).
    One-line UserError for no face, or a face turned too far from frontal."""
    from talklib.face3d.camera import focal_for, head_canonical_c2w, pose_matrix
    from talklib.face3d.fit import fit_photo
    from talklib.face3d.landmarks import LandmarkDetector
    from talklib.face3d.model import MorphableModel
    from talklib.face3d.topology import FACE_OVAL
    from talklib.speaker.clip import FOV_DEG
    from talklib.speaker.faces import fill_polygons

    img = np.asarray(photo)
    if img.ndim != 3 or img.shape[2] not in (3, 4) or img.dtype != np.uint8:
        raise UserError(f"the photo has shape {img.shape} and type {img.dtype}, not (H, W, 3) uint8: pass an RGB image")
    img = img[..., :3]
    det = detector or LandmarkDetector()
    try:
        lmk = det(img)
        if lmk is None:
            raise UserError("no face found in the photo: pass a photo with one clearly visible, roughly frontal face")
        mid = (lmk[33] + lmk[263]) / 2
        side = np.linalg.norm(lmk[263] - lmk[33]) / framing["iod"]
        x0, y0 = mid[0] - framing["eye_x"] * side, mid[1] - framing["eye_y"] * side
        crop = crop_square(img, x0, y0, side)
        big = _resize(crop, DETECT_SIZE)
        fit = fit_photo(MorphableModel.from_asset().tensors(), big, FOV_DEG, detector=det)
    finally:
        if detector is None:
            det.close()
    yaw, pitch = float(fit["pose"][0, 0]), float(fit["pose"][0, 1])
    if abs(yaw) > MAX_YAW_DEG or abs(pitch) > MAX_PITCH_DEG:
        raise UserError(f"the face in the photo is turned {yaw:+.0f} deg (yaw), {pitch:+.0f} deg (pitch), far from "
                        f"frontal: S3D-NeRF learned near-frontal faces; pass a photo turned less than "
                        f"{MAX_YAW_DEG:.0f} / {MAX_PITCH_DEG:.0f} deg")
    head = pose_matrix(torch.as_tensor(fit["pose"], dtype=torch.float64)).numpy()[0]
    c2w = head_canonical_c2w(np.asarray(fit["c2w"], np.float64), head)
    lmk_small = fit["lmk2d"] * (size / DETECT_SIZE)
    mask = fill_polygons(lmk_small[list(FACE_OVAL)], size, size)
    return {"image": _resize(crop, size), "mask": (mask * 255).astype(np.uint8), "c2w": c2w.astype(np.float32),
            "focal": float(focal_for(size, FOV_DEG)), "yaw": yaw, "pitch": pitch, "landmarks": lmk_small,
            "box": (float(x0), float(y0), float(side))}


def encode_shot(model, shot: dict, device="cpu") -> dict:
    """Encode a ``frame_photo`` result (or a corpus frame in the same form) once: the identity of Eq. (1)."""
    to = lambda a: torch.as_tensor(a, device=device)  # noqa: E731
    img = to(shot["image"]).permute(2, 0, 1)[None].float() / 255.0
    mask = to(shot["mask"])[None, None].float() / 255.0
    with torch.no_grad():
        return model.encode(img, mask, to(shot["c2w"]).float()[None], shot["focal"])


def talk(model, ident: dict, audio: np.ndarray, c2w: torch.Tensor, batch: int = 8, progress: bool = False):
    """Frames driven by 16 kHz ``audio``: yields (b, size, size, 3) uint8 batches, one frame per 40 ms.
    ``c2w``: (4, 4) one camera for every frame, or (n, 4, 4) one per frame (head frame)."""
    from talklib.oneshot.data import mel_windows
    from talklib.oneshot.model import expand_identity
    from talklib.sync.crops import clip_mel

    n = len(audio) // 640
    if n < 1:
        raise UserError("the audio is shorter than one video frame (40 ms): give a longer recording")
    mel = clip_mel(audio, n)
    dev = ident["f_agg"].device
    cams = c2w.to(dev).float()
    if cams.dim() == 2:
        cams = cams[None].expand(n, 4, 4)
    rng = range(0, n, batch)
    if progress:
        from tqdm.auto import tqdm
        rng = tqdm(rng, desc="S3D-NeRF frames", unit="batch")
    with torch.no_grad():
        for b0 in rng:
            b1 = min(n, b0 + batch)
            one = expand_identity(ident, b1 - b0)
            m = torch.from_numpy(mel_windows(mel, np.arange(b0, b1), model.cfg.mel_steps)).to(dev)
            out = model.render(one, model.drive(one, m), cams[b0:b1])
            yield (out["fine"].clamp(0, 1) * 255 + 0.5).to(torch.uint8).permute(0, 2, 3, 1).cpu().numpy()
