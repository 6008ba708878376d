"""The fused Triton renderer (talklib.nerf.march_triton) against the reference renderer, on the GPU;
on a CPU, that render never picks it."""

import dataclasses

import pytest
import torch

from talklib.face3d.model import default_illumination
from talklib.nerf.scene import toy_scene
from talklib.metrics.image import psnr
from talklib.nerf.train import fit, model_for_scene

FIELD = dict(plane_res=[16, 32, 64], hidden=32, cond_code=8, feat_dim=8, view_dir=False)


def _lit_toy(device):
    """The toy head with SH lighting as a last condition part (varied per frame), to cover the shading."""
    s = toy_scene(n_frames=12, size=32, seed=0, device=device)
    g = torch.Generator().manual_seed(0)
    light = torch.as_tensor(default_illumination())[None] * (1 + 0.2 * torch.rand(12, 1, generator=g))
    return dataclasses.replace(s, cond=torch.cat([s.cond, light.to(device)], 1),
                               cond_parts={"f_exp": 2, "f_illu": 27})


def test_cpu_render_does_not_fuse():
    s = toy_scene(n_frames=6, size=8, seed=0)
    m = model_for_scene(s, n_samples=8, occ_res=8, field=dict(FIELD, plane_res=[8], deform=False))
    with torch.no_grad():
        assert not m.can_fuse(torch.device("cpu"))
        out = m.render(s.cond[:2], s.c2w[:2], s.focal, s.cx, s.cy, s.H, s.W, s.bg, mode="fast")
    assert out["rgb"].shape == (2, 8, 8, 3)


def _gpu_reason():
    if not torch.cuda.is_available():
        return "no CUDA GPU here: the fused renderer is checked on the GPU machine"
    try:
        import triton  # noqa: F401
    except ImportError:
        return "Triton is not installed"
    return None


@pytest.mark.skipif(_gpu_reason() is not None, reason=str(_gpu_reason()))
@pytest.mark.parametrize("deform,upsample,illu,hidden", [(True, 4, True, 64), (False, 1, False, 32), (True, 1, False, 16)])
def test_fused_render_matches_the_reference_on_gpu(deform, upsample, illu, hidden):
    dev = torch.device("cuda")
    s = _lit_toy(dev) if illu else toy_scene(n_frames=12, size=32, seed=0, device=dev)
    torch.manual_seed(0)
    m = model_for_scene(s, n_samples=48, occ_res=32, upsample=upsample,
                        field=dict(FIELD, deform=deform, hidden=hidden, feat_dim=16 if upsample > 1 else 3)).to(dev)
    fit(m, s, steps=150, lr=2e-2, occ_every=50, progress=False)
    m.eval()
    with torch.no_grad():
        m.update_occupancy(s.cond[torch.as_tensor(s.train_idx).to(dev)])
        assert m.can_fuse(dev)
        args = (s.cond, s.c2w, s.focal, s.cx, s.cy, s.H, s.W, s.bg)
        ref = m.render(*args, mode="reference")
        fused = m.render(*args, mode="fast", fused=True)
        fast = m.render(*args, mode="fast", fused=False)
    assert psnr(ref["rgb"], s.images) > 15.0                          # a fitted head, not a blank field
    assert psnr(fused["rgb"].clamp(0, 1), ref["rgb"].clamp(0, 1)) > 45.0
    assert psnr(fast["rgb"].clamp(0, 1), ref["rgb"].clamp(0, 1)) > 45.0
    assert (fused["acc"] - ref["acc"]).abs().max() < 2e-2
    assert (fused["acc"] - ref["acc"]).abs().mean() < 1e-3


def _audio_toy(device):
    """The toy head conditioned through the conditions stage: an audio window per frame (MFCC-shaped)
    that carries the mouth opening, so the Conditioner's audio net and attention are on the path."""
    import numpy as np

    from talklib.condition.audionet import ConditionConfig
    from talklib.condition.inputs import pack
    from talklib.condition.spec import parse

    s = toy_scene(n_frames=12, size=32, seed=0, device=device)
    cfg = ConditionConfig.from_parts(parse("mfcc"), audio_dim=4, frames=4)
    jaw = s.cond[:, :1].cpu().numpy()
    win = np.repeat(jaw[:, None, :], 16, axis=1) * np.linspace(0.5, 1.5, 13, dtype=np.float32)
    raw = torch.from_numpy(pack(cfg, {}, win.astype(np.float32))).to(device)
    return dataclasses.replace(s, cond=raw, cond_parts=cfg.raw_layout(), conditions=cfg.to_dict())


@pytest.mark.skipif(_gpu_reason() is not None, reason=str(_gpu_reason()))
def test_fused_render_matches_the_reference_for_an_audio_conditioned_field_on_gpu():
    dev = torch.device("cuda")
    s = _audio_toy(dev)
    torch.manual_seed(0)
    m = model_for_scene(s, n_samples=48, occ_res=32, upsample=1, field=dict(FIELD, deform=True, feat_dim=3)).to(dev)
    assert m.conditioner is not None
    fit(m, s, steps=150, lr=2e-2, occ_every=50, progress=False)
    m.eval()
    with torch.no_grad():
        assert m.can_fuse(dev)
        args = (s.cond, s.c2w, s.focal, s.cx, s.cy, s.H, s.W, s.bg)
        ref = m.render(*args, mode="reference")
        fused = m.render(*args, mode="fast", fused=True)
    assert psnr(ref["rgb"], s.images) > 15.0
    assert psnr(fused["rgb"].clamp(0, 1), ref["rgb"].clamp(0, 1)) > 45.0


@pytest.mark.skipif(_gpu_reason() is not None, reason=str(_gpu_reason()))
def test_a_plugged_in_field_the_kernel_does_not_implement_is_refused_on_gpu():
    from talklib.nerf.march_triton import unsupported
    from talklib.nerf.model import NeRFConfig, TalkingNeRF

    class Other(torch.nn.Module):
        pass

    m = TalkingNeRF(NeRFConfig(cond_parts={"f_exp": 2}), field=Other())
    assert "kernel implements talklib's ConditionalField" in unsupported(m)


@pytest.mark.skipif(_gpu_reason() is not None, reason=str(_gpu_reason()))
def test_fused_renderer_refuses_view_dependent_colour_on_gpu():
    from talklib.nerf.march_triton import march

    dev = torch.device("cuda")
    s = toy_scene(n_frames=6, size=16, seed=0, device=dev)
    m = model_for_scene(s, n_samples=16, occ_res=8, field=dict(FIELD, view_dir=True)).to(dev)
    with torch.no_grad():
        assert not m.can_fuse(dev)
        o = torch.zeros(4, 3, device=dev)
        with pytest.raises(ValueError, match="view direction"):
            march(m, o, o, m.codes(s.cond[:1]), 4)


@pytest.mark.skipif(_gpu_reason() is not None, reason=str(_gpu_reason()))
def test_fused_renderer_sees_weight_changes_on_gpu():
    dev = torch.device("cuda")
    s = toy_scene(n_frames=6, size=16, seed=0, device=dev)
    torch.manual_seed(0)
    m = model_for_scene(s, n_samples=24, occ_res=8, field=dict(FIELD, feat_dim=3)).to(dev)
    args = (s.cond[:2], s.c2w[:2], s.focal, s.cx, s.cy, s.H, s.W, s.bg)
    with torch.no_grad():
        before = m.render(*args, mode="fast", fused=True)["rgb"]
        m.field.color_net[2].bias += 1.0      # brighter everywhere: the packed weights must follow
        after = m.render(*args, mode="fast", fused=True)["rgb"]
        ref = m.render(*args, mode="reference")["rgb"]
    assert (after - before).abs().max() > 1e-2
    assert psnr(after.clamp(0, 1), ref.clamp(0, 1)) > 45.0


_INTERPRET = """
import torch
from talklib.nerf.scene import toy_scene
from talklib.metrics.image import psnr
from talklib.nerf.train import fit, model_for_scene
s = toy_scene(n_frames=6, size=16, seed=0)
torch.manual_seed(0)
m = model_for_scene(s, n_samples=24, occ_res=16, upsample=2, field=dict(plane_res=[8, 16], hidden=16, cond_code=8,
                    feat_dim=8, view_dir=False))
fit(m, s, steps=40, lr=2e-2, occ_every=20, progress=False)
m.eval()
with torch.no_grad():
    m.update_occupancy(s.cond[torch.as_tensor(s.train_idx)])
    args = (s.cond[:2], s.c2w[:2], s.focal, s.cx, s.cy, s.H, s.W, s.bg)
    ref = m.render(*args, mode="reference")
    fused = m.render(*args, mode="fast", fused=True)
print(psnr(fused["rgb"].clamp(0, 1), ref["rgb"].clamp(0, 1)), float((fused["acc"] - ref["acc"]).abs().max()))
"""


def test_fused_kernels_match_the_reference_in_the_triton_interpreter():
    """The same check on a CPU, through Triton's interpreter (where Triton is installed)."""
    import importlib.util
    import os
    import subprocess
    import sys

    if importlib.util.find_spec("triton") is None:
        pytest.skip("Triton is not installed (CPU torch wheels come without it)")
    env = {**os.environ, "TRITON_INTERPRET": "1"}
    r = subprocess.run([sys.executable, "-c", _INTERPRET], env=env, capture_output=True, text=True, timeout=600)
    assert r.returncode == 0, r.stderr[-2000:]
    p, amax = (float(v) for v in r.stdout.split()[-2:])
    assert p > 45.0 and amax < 2e-2
