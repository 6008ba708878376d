"""The whole evaluation suite for a predicted and a reference video (what ``python -m talklib eval`` runs).

``evaluate_videos(pred, ref, fps, audio, ...)`` returns a flat dict of numbers (None = unavailable):

| key | meaning | better |
| --- | --- | --- |
| psnr, ssim | per-frame PSNR (dB) / SSIM, mean over frames (pred vs ref) | higher |
| lpips | LPIPS-Alex (None without local weights) | lower |
| m_lmd, lmd_79, f_lmd | landmark distances in pixels (talklib.metrics.landmarks) | lower |
| cpbd, cpbd_ref | CPBD sharpness of pred / ref | higher |
| blinks_per_s, blinks_per_s_ref | blink rate of pred / ref (closer to ref is better) | — |
| au_acc | agreement of landmark-detected AU20/25/26/45 labels of pred with ref | higher |
| d_rot, d_pos | head-pose distance (degrees / pixels) of pred from ref | lower |
| av_offset, lse_d, lse_c | talklib's lip-sync expert on pred + audio (syncnet_python's definitions) | 0, lower, higher |
| dist_at_0, conf_at_0 | the expert's mean distance / confidence at offset 0 (the video as given) | lower, higher |
| v2_* | the same with the official syncnet_v2 weights, when given | |
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from talklib.errors import UserError


@dataclass
class VideoLandmarks:
    points: np.ndarray  # (T, 478, 3) pixels (x, y, z), NaN rows where no face was found

    @property
    def xy(self) -> np.ndarray:
        return self.points[..., :2]

    @property
    def found(self) -> np.ndarray:
        return np.isfinite(self.points).all(axis=(1, 2))


def check_pair(pred: np.ndarray, ref: np.ndarray, pred_name: str = "pred", ref_name: str = "ref") -> None:
    """One-line UserErrors for videos that cannot be compared frame by frame."""
    if len(pred) != len(ref):
        raise UserError(f"videos differ in length: {pred_name} has {len(pred)} frames, {ref_name} {len(ref)}: "
                        f"give videos with the same frames")
    if pred.shape[1:3] != ref.shape[1:3]:
        raise UserError(f"videos differ in size: {pred_name} is {pred.shape[2]}x{pred.shape[1]}, {ref_name} "
                        f"{ref.shape[2]}x{ref.shape[1]}: give videos of one size")


def video_landmarks(frames: np.ndarray, name: str, progress: bool = False) -> VideoLandmarks:
    from talklib.metrics.landmarks import detect_video_landmarks

    lm = VideoLandmarks(detect_video_landmarks(frames, with_z=True, progress=progress))
    if not lm.found.any():
        raise UserError(f"no face was found in any frame of {name}: give a video with a visible face")
    return lm


def face_crops_224(frames: np.ndarray, lm: VideoLandmarks, scale: float = 1.4) -> np.ndarray:
    """syncnet_python-style 224x224 face crops (BGR uint8) around the landmarks' bounding box."""
    from talklib.sync.crops import crop_boxes

    xy = lm.xy[:, :468]
    ok = lm.found
    lo, hi = np.full((len(xy), 2), np.nan), np.full((len(xy), 2), np.nan)
    lo[ok], hi[ok] = xy[ok].min(axis=1), xy[ok].max(axis=1)
    good = np.where(ok)[0]
    pos = np.clip(np.searchsorted(good, np.arange(len(xy))), 0, len(good) - 1)
    lo, hi = lo[good[pos]], hi[good[pos]]  # frames without a face take the next face's box
    c = 0.5 * (lo + hi)
    s = scale * (hi - lo).max(axis=1)
    boxes = np.stack([c[:, 0], c[:, 1], s, s], axis=1)
    return crop_boxes(frames, boxes, 224, 224)[..., ::-1].copy()


def sync_metrics(frames: np.ndarray, lm: VideoLandmarks, audio: np.ndarray, sync_model=None,
                 syncnet_v2=None) -> dict:
    """AV offset / LSE-D / LSE-C of one video + 16 kHz audio, with talklib's expert and/or syncnet_v2."""
    out: dict = {}
    if sync_model is not None:
        from talklib.sync.train import prepare_clip, score_clip

        clip = prepare_clip(frames, lm.xy, audio, sync_model.cfg)
        out.update(score_clip(sync_model, clip).as_dict())
    if syncnet_v2 is not None:
        from talklib.sync.offset import sync_score
        from talklib.sync.syncnet_v2 import syncnet_v2_embeddings

        pcm = np.clip(np.asarray(audio) * 32768.0, -32768, 32767).astype(np.int16)
        v, a = syncnet_v2_embeddings(syncnet_v2, face_crops_224(frames, lm), pcm)
        out.update({f"v2_{k}": val for k, val in sync_score(v, a).as_dict().items()})
    return out


def evaluate_videos(pred: np.ndarray, ref: np.ndarray, fps: float = 25.0, audio: np.ndarray | None = None,
                    sync_model=None, syncnet_v2=None, lpips_model=None, cpbd_every: int = 1,
                    pred_name: str = "pred", ref_name: str = "ref", progress: bool = False,
                    ref_landmarks: VideoLandmarks | None = None) -> dict:
    """The suite (see the module table) for frames (T, H, W, 3) uint8 of a prediction and a reference.

    ``audio``: 16 kHz mono samples driving ``pred``; needed when a sync model is given.
    ``ref_landmarks``: reuse a reference's landmarks across several predictions.
    """
    from talklib.metrics.action_units import au_accuracy, lip_aus_from_landmarks
    from talklib.metrics.blinks import blinks_per_second, eye_aspect_ratio
    from talklib.metrics.image import psnr, ssim_map_mean
    from talklib.metrics.landmarks import f_lmd, lmd_79, m_lmd
    from talklib.metrics.lpips import lpips_distance
    from talklib.metrics.pose import d_pos, d_rot, pose_from_landmarks
    from talklib.metrics.sharpness import cpbd_video

    pred, ref = np.asarray(pred), np.asarray(ref)
    check_pair(pred, ref, pred_name, ref_name)
    if (sync_model is not None or syncnet_v2 is not None) and audio is None:
        raise UserError(f"no audio for {pred_name}: give --audio WAV (or a video with a sound track) for the "
                        f"lip-sync metrics")
    out: dict = {"frames": int(len(pred)), "fps": float(fps)}
    out["psnr"] = psnr(pred, ref)                     # per-frame mean (talklib.metrics.image.psnr)
    out["ssim"] = float(np.mean(ssim_map_mean(pred, ref)))
    out["lpips"] = lpips_distance(lpips_model, pred, ref)

    lm_ref = ref_landmarks or video_landmarks(ref, ref_name, progress)
    lm_pred = video_landmarks(pred, pred_name, progress)
    out["face_found"] = float(lm_pred.found.mean())
    out["m_lmd"] = m_lmd(lm_pred.xy, lm_ref.xy)
    out["lmd_79"] = lmd_79(lm_pred.xy, lm_ref.xy)
    out["f_lmd"] = f_lmd(lm_pred.xy, lm_ref.xy)

    out["cpbd"] = cpbd_video(pred, cpbd_every)
    out["cpbd_ref"] = cpbd_video(ref, cpbd_every)
    out["blinks_per_s"] = blinks_per_second(eye_aspect_ratio(lm_pred.xy), fps)
    out["blinks_per_s_ref"] = blinks_per_second(eye_aspect_ratio(lm_ref.xy), fps)

    both = lm_pred.found & lm_ref.found
    au_p = lip_aus_from_landmarks(lm_pred.xy[both], neutral_from=lm_ref.xy[lm_ref.found])
    au_r = lip_aus_from_landmarks(lm_ref.xy[both], neutral_from=lm_ref.xy[lm_ref.found])
    out["au_acc"] = au_accuracy(au_p, au_r)

    tmpl = lm_ref.points[np.where(lm_ref.found)[0][0]]
    rot_p, pos_p = pose_from_landmarks(lm_pred.points, tmpl)
    rot_r, pos_r = pose_from_landmarks(lm_ref.points, tmpl)
    out["d_rot"] = d_rot(rot_p[both], rot_r[both])
    out["d_pos"] = d_pos(pos_p[both], pos_r[both])

    out.update({"av_offset": None, "lse_d": None, "lse_c": None, "dist_at_0": None, "conf_at_0": None})
    if audio is not None:
        out.update(sync_metrics(pred, lm_pred, audio, sync_model, syncnet_v2))
    return out
