"""Fixtures shared by several test files: a tiny renderable NeRF checkpoint and a short wav."""

import numpy as np
import pytest
import torch


@pytest.fixture(scope="module")
def ckpt(tmp_path_factory):
    """A checkpoint folder ``python -m talklib render`` accepts: a toy NeRF with its render settings."""
    from talklib.nerf.audio2exp import Audio2Exp
    from talklib.nerf.scene import toy_scene
    from talklib.nerf.talk import render_extra
    from talklib.nerf.train import model_for_scene, save_checkpoint

    d = tmp_path_factory.mktemp("ckpt")
    scene = toy_scene(n_frames=5, size=16, seed=0)
    torch.manual_seed(0)
    model = model_for_scene(scene, n_samples=8, occ_res=8, field=dict(plane_res=[8], hidden=8, cond_code=4))
    extra = render_extra(scene, Audio2Exp(out_dim=2, hidden=16), (0, 2), scene.cond.mean(0))
    save_checkpoint(d / "nerf.pt", model, extra=extra)
    return d


@pytest.fixture(scope="module")
def wav(tmp_path_factory):
    """0.2 s of a 220 Hz tone at 16 kHz."""
    import soundfile as sf   # imported here: the GPU machine runs the kernel tests without it

    p = tmp_path_factory.mktemp("aud") / "a.wav"
    t = np.arange(int(0.2 * 16000)) / 16000
    sf.write(p, (0.3 * np.sin(2 * np.pi * 220 * t)).astype(np.float32), 16000)
    return p
