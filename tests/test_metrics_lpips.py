"""LPIPS: architecture + local weights only; None when no weights; loader refuses wrong files."""

import numpy as np
import pytest
import torch

from talklib.errors import UserError
from talklib.metrics.lpips import LPIPS, load_lpips, lpips_distance


def _random_lpips(seed=0):
    torch.manual_seed(seed)
    m = LPIPS()
    with torch.no_grad():
        for k in range(5):
            w = getattr(m, f"lin{k}").model[1].weight
            w.copy_(w.abs())  # trained LPIPS lin weights are non-negative
    return m.eval()


def _frames(seed, n=2, size=64):
    return np.random.default_rng(seed).integers(0, 256, (n, size, size, 3)).astype(np.uint8)


def test_full_state_dict_round_trip(tmp_path):
    m = _random_lpips()
    torch.save(m.state_dict(), tmp_path / "lpips.pt")
    loaded = load_lpips(tmp_path / "lpips.pt")
    a, b = _frames(0), _frames(1)
    assert lpips_distance(loaded, a, a) == 0.0
    d = lpips_distance(loaded, a, b)
    assert d > 0 and d == pytest.approx(lpips_distance(m, a, b), rel=1e-6)
    # symmetric
    assert lpips_distance(loaded, b, a) == pytest.approx(d, rel=1e-5)


def test_lin_weights_plus_torchvision_backbone(tmp_path):
    m = _random_lpips(3)
    sd = m.state_dict()
    lin = {k: v for k, v in sd.items() if k.startswith("lin")}
    backbone = {}
    for k, v in sd.items():  # rename net.sliceK.IDX.param -> features.IDX.param (torchvision AlexNet)
        if k.startswith("net."):
            _, _, idx, param = k.split(".")
            backbone[f"features.{idx}.{param}"] = v
    torch.save(lin, tmp_path / "alex.pth")
    torch.save(backbone, tmp_path / "alexnet.pth")
    loaded = load_lpips(tmp_path / "alex.pth", tmp_path / "alexnet.pth")
    a, b = _frames(4), _frames(5)
    assert lpips_distance(loaded, a, b) == pytest.approx(lpips_distance(m, a, b), rel=1e-6)


def test_unavailable_without_weights_and_bad_files(tmp_path):
    a = _frames(0)
    assert lpips_distance(None, a, a) is None
    with pytest.raises(UserError, match="do not exist"):
        load_lpips(tmp_path / "missing.pth")
    (tmp_path / "junk.pth").write_bytes(b"junk")
    with pytest.raises(UserError, match="cannot be read"):
        load_lpips(tmp_path / "junk.pth")
    torch.save({"lin0.model.1.weight": torch.zeros(1, 64, 1, 1)}, tmp_path / "part.pth")
    with pytest.raises(UserError, match="lack"):
        load_lpips(tmp_path / "part.pth")
