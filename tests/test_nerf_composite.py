"""Eq. (5) compositing: the reference against closed forms on CPU, the Triton path against the reference on GPU."""

import math

import pytest
import torch

from talklib.nerf.composite import composite, composite_reference, composite_weights


def test_single_opaque_sample_returns_its_feature():
    S, k = 16, 5
    sigma = torch.zeros(1, S)
    sigma[0, k] = 1e4
    feat = torch.rand(1, S, 4)
    out, acc = composite_reference(sigma, feat, torch.full((1, S), 0.1))
    assert torch.allclose(out[0], feat[0, k], atol=1e-6)
    assert acc.item() == pytest.approx(1.0, abs=1e-6)


def test_uniform_density_matches_closed_form():
    s, d, S = 2.0, 0.05, 32
    sigma, deltas = torch.full((3, S), s), torch.full((3, S), d)
    feat = torch.tensor([0.2, 0.5, 0.9]).expand(3, S, 3)
    w = composite_weights(sigma, deltas)
    i = torch.arange(S, dtype=torch.float32)
    assert torch.allclose(w[0], torch.exp(-s * d * i) * (1 - math.exp(-s * d)), atol=1e-7)
    out, acc = composite_reference(sigma, feat, deltas)
    a = 1 - math.exp(-s * d * S)
    assert torch.allclose(acc, torch.full((3,), a), atol=1e-6)
    assert torch.allclose(out[0], torch.tensor([0.2, 0.5, 0.9]) * a, atol=1e-6)


def test_empty_ray_is_transparent_and_gradients_flow():
    sigma = torch.zeros(2, 8, requires_grad=True)
    feat = torch.rand(2, 8, 3, requires_grad=True)
    out, acc = composite(sigma, feat, torch.full((2, 8), 0.1))
    assert torch.all(out == 0) and torch.all(acc == 0)
    (out.sum() + acc.sum()).backward()
    assert torch.isfinite(sigma.grad).all() and sigma.grad.abs().sum() > 0


def test_cpu_dispatch_uses_reference():
    sigma, feat, deltas = torch.rand(5, 7) * 3, torch.rand(5, 7, 2), torch.rand(5, 7) * 0.1
    a = composite(sigma, feat, deltas)
    b = composite_reference(sigma, feat, deltas)
    assert torch.equal(a[0], b[0]) and torch.equal(a[1], b[1])
    with pytest.raises(ValueError):
        composite(sigma, feat, deltas, backend="nope")


def _gpu_reason():
    if not torch.cuda.is_available():
        return "no CUDA GPU here: the Triton compositor is checked on the GPU machine"
    try:
        import triton  # noqa: F401
    except ImportError:
        return "Triton is not installed"
    return None


@pytest.mark.parametrize("R,S,C", [(1, 1, 1), (1000, 64, 3), (4097, 48, 16), (333, 128, 8), (70, 200, 32)])
def test_triton_matches_reference_on_gpu(R, S, C):
    reason = _gpu_reason()
    if reason:
        print(f"SKIP: {reason}")
        pytest.skip(reason)
    from talklib.nerf.composite_triton import composite_triton

    g = torch.Generator(device="cuda").manual_seed(R * 7 + S)
    sigma = torch.rand(R, S, device="cuda", generator=g) * 50 * (torch.rand(R, S, device="cuda", generator=g) > 0.5)
    deltas = torch.rand(R, S, device="cuda", generator=g) * 0.05
    feat = torch.randn(R, S, C, device="cuda", generator=g)
    ref = composite_reference(sigma.double(), feat.double(), deltas.double())
    out, acc = composite_triton(sigma, feat, deltas)
    assert (out.double() - ref[0]).abs().max().item() <= 1e-4
    assert (acc.double() - ref[1]).abs().max().item() <= 1e-4
    ref32 = composite_reference(sigma, feat, deltas)
    assert (out - ref32[0]).abs().max().item() <= 1e-4
    # auto dispatch picks Triton on CUDA without gradients
    a, _ = composite(sigma, feat, deltas)
    assert torch.equal(a, out)
