"""AV offset, LSE-D and LSE-C exactly as syncnet_python computes them (Wav2Lip's evaluation: ±15 frames).

Given per-window embeddings of the video ``v`` (N, D) and of the audio ``a`` (N, D) — window i covers
video frames i..i+4 and the audio of the same 0.2 s — syncnet_python (``calc_pdist`` / ``evaluate``):

1. pads ``a`` with ``vshift`` zero rows on both ends;
2. for each video window i, the distances to the audio windows i - vshift .. i + vshift:
   ``dists[i][k] = || v_i - a_{i+k-vshift} + 1e-6 ||`` (``torch.nn.functional.pairwise_distance``);
3. ``mdist[k]`` = mean over i; LSE-D = min_k mdist; LSE-C = median_k mdist - min_k mdist;
   AV offset = vshift - argmin_k mdist (frames; a negative offset means the audio lags the video:
   audio delayed by d frames gives offset -d).

The per-frame confidence (median of mdist minus the distance at the best shift, median-filtered over
9 windows) is returned as well, as syncnet_python logs it.

LSE-D and LSE-C take the *best* shift, so they barely change when the audio is merely shifted (the
offset reports that). ``dist_at_0`` (mean distance at offset 0, the sync of the video *as given*) and
``conf_at_0`` (median - dist_at_0) complement them: a shifted copy has a larger ``dist_at_0``.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F

VSHIFT = 15


@dataclass(frozen=True)
class SyncScore:
    offset: int              # AV offset in frames (0 = in sync)
    lse_d: float             # minimum mean distance (LSE-D, lower = better synced)
    lse_c: float             # median - minimum mean distance (LSE-C, higher = more confident sync)
    mean_dists: np.ndarray   # (2 * vshift + 1,) mean distance per shift k (offset = vshift - k)
    framewise_conf: np.ndarray  # (N,) per-window confidence at the best shift, median-filtered

    @property
    def dist_at_0(self) -> float:
        """Mean distance at offset 0 (no shift)."""
        return float(self.mean_dists[len(self.mean_dists) // 2])

    @property
    def conf_at_0(self) -> float:
        """median - distance at offset 0 (LSE-C's formula, evaluated at the video's own alignment)."""
        return float(np.median(self.mean_dists) - self.dist_at_0)

    def as_dict(self) -> dict:
        return {"av_offset": self.offset, "lse_d": self.lse_d, "lse_c": self.lse_c,
                "dist_at_0": self.dist_at_0, "conf_at_0": self.conf_at_0}


def calc_pdist(feat1: torch.Tensor, feat2: torch.Tensor, vshift: int = VSHIFT) -> torch.Tensor:
    """syncnet_python's ``calc_pdist``: (N, D), (N, D) -> distances (N, 2 vshift + 1)."""
    win = 2 * vshift + 1
    feat2p = F.pad(feat2, (0, 0, vshift, vshift))
    idx = torch.arange(len(feat1))[:, None] + torch.arange(win)[None, :]  # (N, win) rows of feat2p
    return F.pairwise_distance(feat1[:, None, :].expand(-1, win, -1).reshape(-1, feat1.shape[1]),
                               feat2p[idx.reshape(-1)]).reshape(len(feat1), win)


def sync_score(video_emb, audio_emb, vshift: int = VSHIFT) -> SyncScore:
    """AV offset / LSE-D / LSE-C of per-window embeddings (N, D) of video and audio."""
    from scipy.signal import medfilt

    v = torch.as_tensor(np.asarray(video_emb), dtype=torch.float32)
    a = torch.as_tensor(np.asarray(audio_emb), dtype=torch.float32)
    n = min(len(v), len(a))
    v, a = v[:n], a[:n]
    dists = calc_pdist(v, a, vshift)  # (N, win)
    mdist = dists.mean(dim=0)
    minval, minidx = torch.min(mdist, 0)
    median = torch.median(mdist)
    fconf = (median - dists[:, minidx]).numpy()
    framewise = medfilt(fconf, kernel_size=9) if len(fconf) >= 9 else fconf
    return SyncScore(offset=int(vshift - int(minidx)), lse_d=float(minval), lse_c=float(median - minval),
                     mean_dists=mdist.numpy().astype(np.float64), framewise_conf=np.asarray(framewise, np.float64))
