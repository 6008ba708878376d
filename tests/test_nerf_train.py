"""Fitting on the toy scene: loss goes down, checkpoints are atomic and resumable, configs are checked."""

import pytest
import torch

from talklib.errors import UserError
from talklib.nerf.scene import toy_scene
from talklib.metrics.image import psnr
from talklib.nerf.train import evaluate, fit, load_checkpoint, model_for_scene

SMALL = dict(n_samples=16, occ_res=8, field=dict(plane_res=[8, 16], hidden=16, cond_code=8, deform=False))


@pytest.fixture(scope="module")
def scene():
    return toy_scene(n_frames=10, size=12, seed=0)


def test_fit_improves_on_the_mean_colour(scene):
    torch.manual_seed(0)
    m = model_for_scene(scene, **SMALL)
    before = psnr(evaluate(m, scene, scene.test_idx, mode="reference"), scene.images[scene.test_idx])
    hist = fit(m, scene, steps=80, lr=2e-2, occ_every=40, progress=False)
    after = psnr(evaluate(m, scene, scene.test_idx), scene.images[scene.test_idx])
    assert len(hist) == 80 and after > before + 3.0


def test_checkpoint_resumes_and_refuses_another_configuration(scene, tmp_path):
    torch.manual_seed(0)
    m = model_for_scene(scene, **SMALL)
    fit(m, scene, steps=20, ckpt_dir=tmp_path, ckpt_every=10, progress=False)
    assert [p.name for p in tmp_path.iterdir()] == ["nerf.pt"]          # no temporary files left
    blob = load_checkpoint(tmp_path)
    assert blob["step"] == 20
    # "killed" after 20 steps: a new process continues to 30 from the checkpoint
    torch.manual_seed(1)
    m2 = model_for_scene(scene, **SMALL)
    hist = fit(m2, scene, steps=30, ckpt_dir=tmp_path, progress=False)
    assert len(hist) == 30 and hist[19]["loss"] == blob["history"][19]["loss"]
    assert load_checkpoint(tmp_path)["step"] == 30
    other = model_for_scene(scene, **{**SMALL, "n_samples": 20})
    with pytest.raises(UserError, match="another configuration") as e:
        fit(other, scene, steps=40, ckpt_dir=tmp_path, progress=False)
    assert "\n" not in str(e.value)


def test_missing_checkpoint_is_a_user_error(tmp_path):
    with pytest.raises(UserError, match="no NeRF checkpoint"):
        load_checkpoint(tmp_path)


@pytest.mark.parametrize("frame", [[0, 0, 0, 2, 2, 2, 2, 1], [0, 0, 1, 1, 1, 2, 2, 2], [1, 1, 1, 1, 1, 1, 1, 1]])
def test_per_sample_codes_equal_the_gather_in_value_and_gradient(frame):
    from talklib.nerf.renderer import per_sample_codes

    torch.manual_seed(0)
    frame = torch.tensor(frame)
    w = torch.randn(len(frame), 5)
    grads = []
    for fn in (per_sample_codes, lambda c, f: c[f]):
        codes = torch.randn(3, 5, generator=torch.Generator().manual_seed(1), requires_grad=True)
        out = fn(codes, frame)
        assert torch.equal(out, codes.detach()[frame])
        (out * w).sum().backward()
        grads.append(codes.grad)
    torch.testing.assert_close(grads[0], grads[1])
