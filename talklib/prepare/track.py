"""Find the face in every frame, bridge short losses, drop long ones, and choose the crop.

``track(batches)`` runs mediapipe's face mesh (478 landmarks, video mode) over the 25 fps frames of the
source video. Where it sees two or more faces it keeps the largest (and counts those frames). Frames where
the face is lost are handled by ``plan_gaps``: a gap of at most ``max_gap`` frames inside the video is
bridged by interpolating the landmarks linearly; a longer gap, and lost frames at the start or the end,
are dropped (with their 40 ms of sound each, so picture and sound stay aligned frame by frame) and
reported. ``crop_box`` picks one square crop for the whole video, framed as talklib's synthetic speaker
is (landmarks about 77% of the crop's height, the face slightly below the centre), so a prepared video
and the synthetic speaker fill their frames alike.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from talklib.errors import UserError

#: crop side over the landmarks' larger extent, and the crop centre's shift up (fraction of that extent):
#: measured on the synthetic speaker (landmark box 99 px high in its 128 px frame, centred 14 px low)
CROP_SCALE = 1.30
CROP_RAISE = 0.14


@dataclass
class Tracking:
    """What ``track`` found: ``landmarks`` (T, 478, 2) source pixels (NaN where lost), ``found`` (T,) bool,
    ``faces`` (T,) how many faces mediapipe saw."""
    landmarks: np.ndarray
    found: np.ndarray
    faces: np.ndarray
    size: tuple[int, int]          # (height, width) of the source frames
    notes: list[str] = field(default_factory=list)


def _extent(pts: np.ndarray) -> float:
    lo, hi = pts.min(0), pts.max(0)
    return float((hi - lo).prod())


#: frames are shrunk to at most this many pixels on their longer side before mediapipe sees them: its face
#: mesh reads a 192x192 crop of the face whatever the frame's size, so only the frame's conversion costs more
DETECT_SIDE = 640


def track(batches, total: int | None = None, progress: bool = True) -> Tracking:
    """Landmarks of the largest face in every frame of ``batches`` ((b, H, W, 3) uint8, in order), in the
    frames' pixels."""
    import cv2
    from tqdm.auto import tqdm

    from talklib.face3d.landmarks import LandmarkDetector

    lmk, found, faces = [], [], []
    size = None
    with LandmarkDetector(max_faces=2, video=True) as det, \
            tqdm(total=total, unit="frame", desc="landmarks", disable=not progress, leave=False) as bar:
        for batch in batches:
            size = batch.shape[1:3]
            shrink = min(1.0, DETECT_SIDE / max(size))
            dsize = (round(size[1] * shrink), round(size[0] * shrink))
            for frame in batch:
                if shrink < 1.0:
                    frame = cv2.resize(frame, dsize, interpolation=cv2.INTER_AREA)
                got = [g * np.array([size[1] / dsize[0], size[0] / dsize[1]]) for g in det.faces(frame)]
                faces.append(len(got))
                if got:
                    best = max(got, key=_extent)
                    lmk.append(best.astype(np.float32))
                    found.append(True)
                else:
                    lmk.append(np.full((478, 2), np.nan, np.float32))
                    found.append(False)
            bar.update(len(batch))
    if not lmk:
        raise UserError("the video has no frames: give a video with a talking face")
    return Tracking(np.stack(lmk), np.asarray(found), np.asarray(faces), tuple(size))


def runs(mask: np.ndarray) -> list[tuple[int, int]]:
    """[start, end) of every run of True in a 1-D bool array."""
    m = np.concatenate([[False], np.asarray(mask, bool), [False]])
    d = np.flatnonzero(np.diff(m.astype(np.int8)))
    return [(int(a), int(b)) for a, b in zip(d[::2], d[1::2])]


def plan_gaps(tr: Tracking, max_gap: int = 5) -> tuple[np.ndarray, list[dict]]:
    """Bridge short losses in place (linear interpolation of ``tr.landmarks``) and choose the frames to keep.

    Returns ``keep`` (T,) bool and the list of gaps, each ``{"start", "end", "frames", "action"}`` with
    ``action`` "interpolated" or "dropped" (frames [start, end) of the 25 fps timeline).
    """
    found = tr.found
    if not found.any():
        raise UserError("no face was found in any frame of the video: give a video where one face is clearly "
                        "visible, facing the camera")
    T = len(found)
    keep = found.copy()
    gaps = []
    for a, b in runs(~found):
        inside = a > 0 and b < T
        if inside and b - a <= max_gap:
            w = (np.arange(a, b) - (a - 1)) / (b - (a - 1))
            tr.landmarks[a:b] = (1 - w)[:, None, None] * tr.landmarks[a - 1] + w[:, None, None] * tr.landmarks[b]
            keep[a:b] = True
            gaps.append({"start": a, "end": b, "frames": b - a, "action": "interpolated"})
        else:
            gaps.append({"start": a, "end": b, "frames": b - a, "action": "dropped"})
    many = int((tr.faces > 1).sum())
    if many:
        tr.notes.append(f"two or more faces in {many} frame(s): the largest one is used")
    return keep, gaps


def crop_box(landmarks: np.ndarray, scale: float = CROP_SCALE, raise_: float = CROP_RAISE) -> tuple[float, float, float]:
    """One square crop for the whole video: (x0, y0, side) in source pixels, from the median landmark box."""
    lo, hi = np.nanmin(landmarks, 1), np.nanmax(landmarks, 1)          # (T, 2)
    ext = np.nanmedian((hi - lo).max(1))
    centre = np.nanmedian((lo + hi) / 2, 0)
    side = float(scale * ext)
    cx, cy = float(centre[0]), float(centre[1] - raise_ * ext)
    return cx - side / 2, cy - side / 2, side


def crop_frames(batch: np.ndarray, box: tuple[float, float, float], size: int) -> np.ndarray:
    """Crop ``box`` (x0, y0, side) out of (b, H, W, 3) frames and resize to ``size`` squared (area-averaged
    when shrinking, bilinear when growing; exact to the sub-pixel); parts of the box outside the frame repeat
    its edge pixels."""
    import cv2

    x0, y0, side = box
    k = size / side
    # source pixel i (centre i + 0.5) lands on output j with j + 0.5 = k (i + 0.5 - x0)
    M = np.array([[k, 0.0, k * (0.5 - x0) - 0.5], [0.0, k, k * (0.5 - y0) - 0.5]], np.float64)
    pre = max(1, int(np.floor(1.0 / k)))   # warpAffine has no area filter: shrink by an integer first
    out = np.empty((len(batch), size, size, 3), np.uint8)
    for n, f in enumerate(batch):
        P = M
        if pre > 1:
            g = cv2.resize(f, (f.shape[1] // pre, f.shape[0] // pre), interpolation=cv2.INTER_AREA)
            sx, sy = f.shape[1] / g.shape[1], f.shape[0] / g.shape[0]
            P = M @ np.array([[sx, 0, 0.5 * sx - 0.5], [0, sy, 0.5 * sy - 0.5], [0, 0, 1.0]])
            f = g
        cv2.warpAffine(f, P, (size, size), dst=out[n], flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)
    return out


def to_crop(points: np.ndarray, box: tuple[float, float, float], size: int) -> np.ndarray:
    """Source pixel coordinates -> coordinates in the cropped, resized frame."""
    x0, y0, side = box
    return ((points - np.array([x0, y0], np.float32)) * (size / side)).astype(np.float32)
