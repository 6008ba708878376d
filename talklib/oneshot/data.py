"""Training material for S3D-NeRF: (source, target, audio) triples from many identities' clips.

Taught in notebook 09, section 9.1. Each identity's clip (``talklib.speaker.faces``) is held in memory
as tensors (``FaceSet``); ``sample_batch`` draws, for each item, an identity, a *source* frame (the
single shot) and a *target* frame of the same identity at another moment (other expression and head
pose, the same person), with the target's camera and the mel window around it. Every ``sync_every``-th
batch is instead T consecutive targets of one identity and one source, so that the lip-sync expert can
judge them (Eq. 8).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor

from talklib.errors import UserError
from talklib.sync.crops import audio_windows, clip_mel, mouth_boxes


@dataclass
class FaceSet:
    """One clip as tensors. frames (T, 3, H, W) uint8, inner (T, 1, H, W) uint8 (the inner-face mask),
    c2w (T, 4, 4) float32 (camera in the head frame), mel (2 T, 80) float32 in [0, 1] (50 Hz),
    landmarks (T, 478, 2) pixels, focal (pixels), audio (16 kHz float32)."""
    name: str
    frames: Tensor
    inner: Tensor
    c2w: Tensor
    mel: np.ndarray
    landmarks: np.ndarray
    focal: float
    audio: np.ndarray

    @property
    def n_frames(self) -> int:
        return int(self.frames.shape[0])

    @property
    def size(self) -> int:
        return int(self.frames.shape[-1])


def load_faceset(clip) -> FaceSet:
    """A talklib clip (with ``gt/inner_mask.npy``, as ``talklib.speaker.faces`` writes) -> ``FaceSet``."""
    cam = clip.camera("front")
    frames = torch.from_numpy(clip.frames()).permute(0, 3, 1, 2).contiguous()
    try:
        inner = clip.gt("inner_mask")
    except UserError:
        raise UserError(f"clip {clip.name} has no gt/inner_mask.npy: S3D-NeRF trains on the multi-identity corpus "
                        "of talklib.speaker.faces (ensure_faces_corpus)") from None
    return FaceSet(clip.name, frames, torch.from_numpy(np.asarray(inner))[:, None].contiguous(),
                   torch.as_tensor(cam.c2w, dtype=torch.float32), clip_mel(clip.audio(), clip.n_frames),
                   clip.landmarks2d("front"), float(cam.focal), clip.audio())


def mel_windows(mel: np.ndarray, frames, steps: int) -> np.ndarray:
    """The S3D audio windows: for each video frame t, ``steps`` mel steps centred on it (edges repeated).
    mel (2 T, 80) at 50 Hz -> (len(frames), steps, 80)."""
    t = np.asarray(frames, np.int64)
    idx = 2 * t[:, None] + np.arange(steps)[None, :] - steps // 2 + 1
    return np.asarray(mel, np.float32)[np.clip(idx, 0, len(mel) - 1)]


def as_images(x: Tensor) -> Tensor:
    """uint8 (B, C, H, W) -> float in [0, 1]."""
    return x.float() / 255.0


def sample_batch(sets: list[FaceSet], batch: int, rng: np.random.Generator, mel_steps: int,
                 sync_frames: int = 0) -> dict:
    """Draw a batch (see the module docstring). ``sync_frames`` > 0: one identity, one source and
    ``sync_frames`` consecutive targets (``batch`` is then ignored), with ``start`` and ``set`` recorded."""
    if sync_frames:
        i = int(rng.integers(len(sets)))
        fs = sets[i]
        start = int(rng.integers(fs.n_frames - sync_frames + 1))
        tar = np.arange(start, start + sync_frames)
        src = np.full(sync_frames, int(rng.integers(fs.n_frames)))
        who = [i] * sync_frames
    else:
        who = rng.integers(len(sets), size=batch).tolist()
        src, tar = [], []
        for i in who:
            n = sets[i].n_frames
            s = int(rng.integers(n))
            t = int((s + rng.integers(1, n)) % n)           # another moment of the same person
            src.append(s)
            tar.append(t)
        src, tar = np.array(src), np.array(tar)
    pick = lambda attr, idx: torch.stack([getattr(sets[i], attr)[j] for i, j in zip(who, idx)])  # noqa: E731
    out = {"source": as_images(pick("frames", src)), "source_mask": as_images(pick("inner", src)),
           "source_c2w": pick("c2w", src), "target": as_images(pick("frames", tar)),
           "target_mask": as_images(pick("inner", tar)), "target_c2w": pick("c2w", tar),
           "mel": torch.from_numpy(np.stack([mel_windows(sets[i].mel, [j], mel_steps)[0] for i, j in zip(who, tar)])
                                   ).to(sets[0].frames.device),
           "focal": sets[who[0]].focal}
    if sync_frames:
        out["set"], out["start"] = who[0], int(tar[0])
    return out


def coarse_target(target: Tensor, mask: Tensor, sr_factor: int) -> Tensor:
    """I^masked at the coarse resolution: the inner face (B, 3, h, h), black elsewhere (what the NeRF draws)."""
    return F.avg_pool2d(target * mask, sr_factor) if sr_factor > 1 else target * mask


def expert_inputs(fs: FaceSet, start: int, cfg) -> tuple[Tensor, Tensor]:
    """For the lip-sync expert of config ``cfg`` (``talklib.sync.model.SyncConfig``): the mouth boxes
    (T, 4) [cx, cy, w, h] of frames start..start+T-1 from the ground truth's landmarks (the paper crops
    "through the pre-extracted bounding boxes of the ground-truth") and the matching mel window (1, 2T, 80)."""
    boxes = mouth_boxes(fs.landmarks, cfg.crop_h / cfg.crop_w)[start:start + cfg.frames]
    mel = audio_windows(fs.mel, fs.n_frames, cfg.frames, cfg.steps_per_frame)[start]
    return torch.as_tensor(boxes, dtype=torch.float32), torch.from_numpy(mel)[None]


def crop_mouths(frames: Tensor, boxes: Tensor, crop_h: int, crop_w: int) -> Tensor:
    """Differentiable mouth crops (as ``talklib.sync.crops.crop_boxes``, bilinear): frames (T, 3, H, W),
    boxes (T, 4) [cx, cy, w, h] pixels -> (T, 3, crop_h, crop_w)."""
    t, _, H, W = frames.shape
    boxes = boxes.to(frames)
    j = torch.arange(crop_w, dtype=frames.dtype, device=frames.device) + 0.5
    i = torch.arange(crop_h, dtype=frames.dtype, device=frames.device) + 0.5
    x = boxes[:, 0, None] + (j[None] - crop_w / 2) * boxes[:, 2, None] / crop_w      # (T, cw) pixel coords
    y = boxes[:, 1, None] + (i[None] - crop_h / 2) * boxes[:, 3, None] / crop_h      # (T, ch)
    gx = (2 * x / W - 1)[:, None, :].expand(t, crop_h, crop_w)
    gy = (2 * y / H - 1)[:, :, None].expand(t, crop_h, crop_w)
    return F.grid_sample(frames, torch.stack([gx, gy], -1), mode="bilinear", padding_mode="border",
                         align_corners=False)


def shot(fs: FaceSet, i: int) -> dict:
    """Frame ``i`` of a clip as a single shot, in ``talklib.oneshot.drive.frame_photo``'s form (image, mask,
    c2w, focal): the corpus knows the source pose, so no landmark fitting is needed."""
    return {"image": fs.frames[i].permute(1, 2, 0).numpy(), "mask": fs.inner[i, 0].numpy(),
            "c2w": fs.c2w[i].numpy(), "focal": fs.focal}
