"""Lip-sync losses: NeRF-3DTalker Eq. (2), S3D-NeRF Eq. (7) (margin 0.5) and Eq. (8), known values."""

import math

import pytest
import torch

from talklib.sync.losses import cosine_sync_loss, generator_sync_loss, triplet_sync_loss
from talklib.sync.model import SyncConfig, SyncNet


def test_cosine_loss_known_values():
    e = torch.tensor([[1.0, 0.0], [0.0, 2.0]])
    assert cosine_sync_loss(e, e).item() == pytest.approx(0.0, abs=1e-6)  # cos = 1: -log 1 = 0
    half = torch.tensor([[1.0, 0.0]]), torch.tensor([[1.0, math.sqrt(3.0)]])  # cos = 0.5
    assert cosine_sync_loss(*half).item() == pytest.approx(math.log(2.0), rel=1e-5)
    # with labels: an off-sync pair at cos 0.5 also costs log 2; an orthogonal off-sync pair costs 0
    assert cosine_sync_loss(*half, label=torch.tensor([0.0])).item() == pytest.approx(math.log(2.0), rel=1e-5)
    ortho = torch.tensor([[1.0, 0.0]]), torch.tensor([[0.0, 1.0]])
    assert cosine_sync_loss(*ortho, label=torch.tensor([0.0])).item() == pytest.approx(0.0, abs=1e-5)


def test_triplet_loss_margin_half():
    l = torch.tensor([[1.0, 0.0]])
    pos, neg = torch.tensor([[1.0, 0.0]]), torch.tensor([[0.0, 1.0]])  # cos 1 and 0: margin met
    assert triplet_sync_loss(l, pos, neg).item() == 0.0
    near = torch.tensor([[1.0, math.sqrt(3.0)]])  # cos 0.5
    assert triplet_sync_loss(l, near, neg).item() == pytest.approx(0.0, abs=1e-6)  # 0.5 - 0.5 + 0
    assert triplet_sync_loss(l, neg, pos).item() == pytest.approx(1.5)  # swapped: 0.5 - 0 + 1
    both = triplet_sync_loss(l, neg, pos, e_l_pos=neg, e_l_neg=pos, e_a=l)  # audio anchor, also swapped
    assert both.item() == pytest.approx(3.0)


def test_generator_loss_trains_only_the_generator_side():
    model = SyncNet(SyncConfig()).eval().requires_grad_(False)
    crops = torch.rand(2, 5, 3, 24, 40, requires_grad=True)
    mel = torch.rand(2, 10, 80)
    e_l, e_a = model(crops, mel)
    loss = generator_sync_loss(e_l, e_a)
    assert 0.0 <= loss.item() <= 1.0  # ReLU embeddings: cos in [0, 1]
    loss.backward()
    assert crops.grad is not None and crops.grad.abs().sum() > 0
    assert all(p.grad is None for p in model.parameters())
    e = torch.tensor([[0.3, 0.4]])
    assert generator_sync_loss(e, 2 * e).item() == pytest.approx(0.0, abs=1e-6)
