"""Losses of the lip-sync expert and of a generator it supervises.

All take embeddings (B, D) of a mouth window ``e_l`` and an audio window ``e_a``.
"""

from __future__ import annotations

import torch
from torch import Tensor

from talklib.sync.model import SyncNet


def cosine_sync_loss(e_l: Tensor, e_a: Tensor, label: Tensor | None = None, eps: float = 1e-7) -> Tensor:
    """NeRF-3DTalker Eq. (2): L = 1/B sum_i -log( f_lip_i . f_a_i / max(|f_lip_i| |f_a_i|, eps) ).

    Eq. (2) is written for in-sync pairs (label 1). To *train* the expert on off-sync pairs too, pass
    ``label`` (B,) in {0, 1}: off-sync pairs then add -log(1 - cos), the binary cross-entropy on the
    cosine that Wav2Lip's expert (the paper's ref. [19]) uses. Without ``label`` every pair is in sync.
    """
    cos = SyncNet.similarity(e_l, e_a).clamp(eps, 1.0 - eps)
    if label is None:
        return (-torch.log(cos)).mean()
    y = label.to(cos.dtype)
    return -(y * torch.log(cos) + (1.0 - y) * torch.log(1.0 - cos)).mean()


def triplet_sync_loss(e_l: Tensor, e_a_pos: Tensor, e_a_neg: Tensor,
                      e_l_pos: Tensor | None = None, e_l_neg: Tensor | None = None, e_a: Tensor | None = None,
                      margin: float = 0.5) -> Tensor:
    """S3D-NeRF Eq. (7), the contrastive triplet loss with margin eta = 0.5:

        max(0, eta - cos(e_l, e_a+) + cos(e_l, e_a-)) + max(0, eta - cos(e_l+, e_a) + cos(e_l-, e_a)).

    (The paper prints the cosines with the opposite signs, which would push in-sync pairs *apart*; we
    use the sign that makes it a triplet loss.) The second term — an audio anchor with a positive and a
    negative mouth window — is added when ``e_l_pos``, ``e_l_neg`` and ``e_a`` are given. Mean over B.
    """
    cos = SyncNet.similarity
    loss = torch.relu(margin - cos(e_l, e_a_pos) + cos(e_l, e_a_neg))
    if e_l_pos is not None and e_l_neg is not None and e_a is not None:
        loss = loss + torch.relu(margin - cos(e_l_pos, e_a) + cos(e_l_neg, e_a))
    return loss.mean()


def generator_sync_loss(e_l_gen: Tensor, e_a_gt: Tensor) -> Tensor:
    """S3D-NeRF Eq. (8) for the generator, with the expert frozen: L = 1 - cos(e_l^gen, e_gt), mean over B.

    (The paper prints ``cos(e_l^gen, e_gt)``; minimising that would *desynchronise*, so we minimise
    ``1 - cos``, which has the same gradient up to sign.) Use it with ``SyncNet`` in eval mode and
    ``requires_grad_(False)``; gradients flow into ``e_l_gen`` only.
    """
    return (1.0 - SyncNet.similarity(e_l_gen, e_a_gt)).mean()
