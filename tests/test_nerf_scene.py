"""talklib.nerf.scene on a tiny generated clip: the 3DMM depth prior and head-frame lighting."""

import numpy as np
import pytest
import torch

TINY = dict(size=64, train_seconds=1.0, test_seconds=1.0, speech_clips=1, views="yaw_p30")


@pytest.fixture(scope="module")
def clip(tmp_path_factory):
    from talklib.speaker.build import ensure_corpus

    return ensure_corpus(tmp_path_factory.mktemp("corpus") / "tiny", "small", 0, progress=False, **TINY).clip(split="train")


def test_prior_depth_covers_the_head_mask_at_the_camera_distance(clip):
    from talklib.nerf.scene import from_clip

    s = from_clip(clip, conditions="f_exp:12,f_illu", masks=True, depth=True)
    on, mask = s.depth > 0, s.alpha > 0.5
    assert (on == mask).float().mean() > 0.98            # same silhouette as the rendered frames
    d = s.depth[on]
    assert 0.4 < float(d.min()) and float(d.max()) < 0.8  # the camera stands 0.6 m from the head
    # the prior surface lies inside the canonical head box the NeRF samples
    o = s.c2w[:, :3, 3]
    assert float((o - torch.tensor(s.center)).norm(dim=-1).min()) - s.radius * 3 ** 0.5 < float(d.min())


def test_lighting_is_expressed_in_the_head_frame(clip):
    from talklib.face3d.model import rotate_sh
    from talklib.nerf.scene import from_clip

    s = from_clip(clip, conditions="f_illu")
    rot = torch.from_numpy(clip.head_pose()[:, :3, :3].astype(np.float64))
    want = rotate_sh(torch.from_numpy(clip.illu().astype(np.float64)), rot).float()
    assert torch.allclose(s.cond, want, atol=1e-5)
    assert not torch.allclose(s.cond, torch.from_numpy(clip.illu()), atol=1e-4)   # the head does turn


def test_fit_with_the_depth_prior_pulls_rendered_depth_to_it(clip):
    from talklib.nerf.scene import from_clip
    from talklib.nerf.train import fit, model_for_scene

    s = from_clip(clip, size=24, conditions="f_exp:12", depth=True, box_scale=1.2)
    torch.manual_seed(0)
    m = model_for_scene(s, n_samples=16, occ_res=16, field=dict(plane_res=[8, 16], hidden=16, cond_code=4,
                                                                deform=False, view_dir=False))

    def depth_error():
        with torch.no_grad():
            out = m.render(s.cond[:4], s.c2w[:4], s.focal, s.cx, s.cy, s.H, s.W, s.bg, depth=True)
        inside = s.depth[:4] > 0
        return float((out["depth"] - s.depth[:4])[inside].abs().mean())

    before = depth_error()
    fit(m, s, steps=60, lr=0.02, depth_weight=1.0, occ_every=1000, progress=False)
    assert depth_error() < 0.5 * before
