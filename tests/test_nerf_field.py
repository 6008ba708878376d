"""Encodings, field, rays, sampling, occupancy grid, upsampler: shapes and known answers."""

import math

import pytest
import torch
import torch.nn.functional as F

from talklib.nerf.encoding import TriPlaneGrid, positional_encoding
from talklib.nerf.field import ConditionalField, ConditionSpec, FieldConfig
from talklib.nerf.model import NeRFConfig, TalkingNeRF
from talklib.nerf.rays import camera_rays, orbit, to_canonical
from talklib.nerf.sampling import OccupancyGrid, ray_box, stratified_samples
from talklib.nerf.upsampler import Upsampler


def test_positional_encoding_values():
    p = torch.tensor([[0.25, 0.0, -0.5]])
    e = positional_encoding(p, 2)
    assert e.shape == (1, 3 * 5)
    assert torch.allclose(e[0, :3], p[0])
    assert e[0, 3].item() == pytest.approx(math.sin(math.pi * 0.25), abs=1e-6)   # sin(2^0 pi x)
    assert e[0, 4].item() == pytest.approx(math.sin(2 * math.pi * 0.25), abs=1e-6)


def test_triplane_lookup_hits_plane_corners():
    grid = TriPlaneGrid((4,), channels=2)
    x = torch.tensor([[-1.0, -1.0, -1.0], [1.0, 1.0, 1.0]])
    f = grid(x)
    assert f.shape == (2, grid.out_dim) == (2, 6)
    p = grid.planes[0].detach()
    assert torch.allclose(f[0, :2], p[0, :, 0, 0]) and torch.allclose(f[1, :2], p[0, :, -1, -1])


def test_field_shapes_ranges_and_condition_matters():
    torch.manual_seed(0)
    fld = ConditionalField(FieldConfig(cond_dim=5, plane_res=(8, 16), hidden=16))
    x, d = torch.rand(100, 3) * 2 - 1, F.normalize(torch.randn(100, 3), dim=-1)
    c1 = fld.encode_condition(torch.zeros(1, 5)).expand(100, -1)
    c2 = fld.encode_condition(torch.ones(1, 5)).expand(100, -1)
    z, s = fld(x, d, c1)
    assert z.shape == (100, 3) and s.shape == (100,)
    assert (s >= 0).all() and (z >= 0).all() and (z <= 1).all()
    assert not torch.allclose(fld(x, d, c2)[0], z)


def test_view_dir_off_makes_the_colour_independent_of_the_view():
    torch.manual_seed(0)
    x = torch.rand(64, 3) * 2 - 1
    d1, d2 = F.normalize(torch.randn(64, 3), dim=-1), F.normalize(torch.randn(64, 3), dim=-1)
    for view_dir in (True, False):
        fld = ConditionalField(FieldConfig(cond_dim=5, plane_res=(8, 16), hidden=16, view_dir=view_dir))
        with torch.no_grad():
            fld.grid.planes[0].normal_()    # a non-trivial field (untrained planes start near zero)
        code = fld.encode_condition(torch.rand(1, 5)).expand(64, -1)
        (z1, s1), (z2, s2) = fld(x, d1, code), fld(x, d2, code)
        assert torch.equal(s1, s2)          # density never sees the view direction
        assert torch.allclose(z1, z2) != view_dir


def test_condition_spec_packs_in_order_and_checks_sizes():
    spec = ConditionSpec({"f_exp": 2, "f_id": 3})
    v = spec.pack({"f_id": torch.ones(4, 3), "f_exp": torch.zeros(4, 2)})
    assert v.shape == (4, 5) and v[0, :2].sum() == 0 and v[0, 2:].sum() == 3
    with pytest.raises(ValueError, match="f_id"):
        spec.pack({"f_exp": torch.zeros(4, 2)})


def test_camera_rays_centre_pixel_looks_down_minus_z_and_canonical_round_trip():
    c2w = torch.eye(4)[None]
    c2w[0, :3, 3] = torch.tensor([0.0, 0.0, 3.0])
    o, d = camera_rays(c2w, focal=10.0, cx=2.0, cy=2.0, H=4, W=4)
    assert o.shape == d.shape == (1, 16, 3)
    centre = d[0].mean(0)
    assert centre[2] < -0.98 and abs(centre[0]) < 1e-5 and abs(centre[1]) < 1e-5
    pose = torch.eye(4)[None]
    pose[0, :3, :3] = orbit(torch.eye(4)[None], 30.0, 10.0, torch.zeros(3))[0, :3, :3]
    pose[0, :3, 3] = torch.tensor([0.1, -0.2, 0.3])
    oc, dc = to_canonical(o, d, pose)
    back = oc @ pose[0, :3, :3].T + pose[0, :3, 3]
    assert torch.allclose(back, o, atol=1e-5) and torch.allclose(dc.norm(dim=-1), torch.ones(1, 16))


def test_orbit_keeps_distance_and_faces_centre():
    c2w = torch.eye(4)[None]
    c2w[0, 2, 3] = 3.0
    n = orbit(c2w, 20.0, 0.0, torch.zeros(3))
    assert n[0, :3, 3].norm().item() == pytest.approx(3.0, abs=1e-5)
    assert n[0, 0, 3].item() == pytest.approx(3 * math.sin(math.radians(20)), abs=1e-5)
    fwd = -n[0, :3, 2]
    assert torch.allclose(fwd, -n[0, :3, 3] / 3.0, atol=1e-5)


def test_ray_box_and_stratified_samples():
    o = torch.tensor([[0.0, 0.0, 3.0], [0.0, 5.0, 3.0]])
    d = torch.tensor([[0.0, 0.0, -1.0], [0.0, 0.0, -1.0]])
    tn, tf = ray_box(o, d, torch.zeros(3), 1.0, 0.0, 100.0)
    assert tn[0].item() == pytest.approx(2.0) and tf[0].item() == pytest.approx(4.0)
    assert tf[1] <= tn[1]                                 # misses the box
    t, dl = stratified_samples(tn, tf, 8)
    assert torch.allclose(t[0], 2.0 + (torch.arange(8) + 0.5) * 0.25)
    assert torch.all(dl[1] == 0)
    tp, _ = stratified_samples(tn, tf, 8, generator=torch.Generator().manual_seed(0), perturb=True)
    assert (tp[0] >= 2.0).all() and (tp[0] <= 4.0).all()


def test_occupancy_grid_marks_a_ball():
    grid = OccupancyGrid(16)
    ball = lambda u, code: 10.0 * (u.norm(dim=-1) < 0.5).float()  # noqa: E731
    frac = grid.update(ball, torch.zeros(2, 1), threshold=1.0, generator=torch.Generator().manual_seed(0))
    assert 0.05 < frac < 0.2
    q = grid.query(torch.tensor([[0.0, 0.0, 0.0], [0.9, 0.9, 0.9], [2.0, 0.0, 0.0]]))
    assert q.tolist() == [True, False, False]


def test_untrained_upsampler_is_bilinear():
    up = Upsampler(8, 4)
    f = torch.rand(2, 8, 5, 6)
    out = up(f)
    assert out.shape == (2, 3, 20, 24)
    assert torch.allclose(out, F.interpolate(f[:, :3], scale_factor=4, mode="bilinear", align_corners=False))
    with pytest.raises(ValueError):
        Upsampler(8, 3)


def test_fast_render_matches_reference_after_occupancy_update():
    torch.manual_seed(0)
    m = TalkingNeRF(NeRFConfig(cond_parts={"f_exp": 2}, n_samples=24, occ_res=16, upsample=2,
                               field={"plane_res": [8, 16], "hidden": 16, "feat_dim": 8}))
    with torch.no_grad():  # a blob of density in the middle of the box
        m.field.grid.planes[0].zero_()
        m.field.density_net[-1].bias[0] = 3.0
    cond = torch.rand(2, 2)
    frac = m.update_occupancy(cond)
    c2w = torch.eye(4).repeat(2, 1, 1)
    c2w[:, 2, 3] = 3.0
    bg = torch.rand(8, 8, 3)
    with torch.no_grad():
        ref = m.render(cond, c2w, 8.0, 4.0, 4.0, 8, 8, bg, mode="reference")
        fast = m.render(cond, c2w, 8.0, 4.0, 4.0, 8, 8, bg, mode="fast")
    assert ref["rgb"].shape == (2, 8, 8, 3) and ref["acc"].shape == (2, 4, 4)
    assert (ref["rgb"] - fast["rgb"]).abs().max() < 2e-2
    assert frac <= 1.0


def test_sh_lighting_enters_the_colour_linearly_and_leaves_geometry_alone():
    torch.manual_seed(0)
    fld = ConditionalField(FieldConfig(cond_dim=12 + 27, plane_res=(8, 16), hidden=16, illu_dim=27))
    x, d = torch.rand(64, 3) * 2 - 1, F.normalize(torch.randn(64, 3), dim=-1)
    exp = torch.randn(1, 12)
    light = torch.randn(1, 27)
    code1 = fld.encode_condition(torch.cat([exp, light], -1)).expand(64, -1)
    code2 = fld.encode_condition(torch.cat([exp, 2 * light], -1)).expand(64, -1)
    z1, s1 = fld(x, d, code1)
    z2, s2 = fld(x, d, code2)
    torch.testing.assert_close(s1, s2)                       # density ignores the lighting
    torch.testing.assert_close(z2[:, :3], 2 * z1[:, :3])     # colour = albedo x (SH basis . L)
    assert fld.code_dim == fld.cfg.cond_code + 27
    with pytest.raises(ValueError, match="illu_dim"):
        ConditionalField(FieldConfig(cond_dim=40, illu_dim=9))


def _opaque_scene():
    """A small model dense enough that many rays stop early, two frames, their cameras and a background."""
    torch.manual_seed(0)
    m = TalkingNeRF(NeRFConfig(cond_parts={"f_exp": 2}, n_samples=48, occ_res=16, upsample=1,
                               field={"plane_res": [8, 16], "hidden": 16, "feat_dim": 3}))
    with torch.no_grad():
        m.field.density_net[-1].bias[0] = 4.0        # opaque enough that many rays stop early
    cond = torch.rand(2, 2)
    m.update_occupancy(cond)
    c2w = torch.eye(4).repeat(2, 1, 1)
    c2w[:, 2, 3] = 3.0
    bg = torch.rand(12, 12, 3)
    return m, cond, c2w, bg


def test_early_ray_termination_splits_compositing_exactly():
    """window=k evaluates k samples from the first occupied one, then only rays still transparent:
    the same image as all occupied samples at once (window=0), up to the 1e-4 transmittance cut."""
    m, cond, c2w, bg = _opaque_scene()
    with torch.no_grad():
        all_at_once = m.render(cond, c2w, 12.0, 6.0, 6.0, 12, 12, bg, mode="fast", window=0, depth=True)
        for k in (1, 4, 8):
            split = m.render(cond, c2w, 12.0, 6.0, 6.0, 12, 12, bg, mode="fast", window=k, depth=True)
            assert (split["rgb"] - all_at_once["rgb"]).abs().max() < 5e-4
            assert (split["acc"] - all_at_once["acc"]).abs().max() < 5e-4
            assert (split["depth"] - all_at_once["depth"]).abs().max() < 5e-3
    assert all_at_once["depth"].shape == (2, 12, 12) and all_at_once["acc"].min() > 0.5


def test_rotated_sh_lighting_shades_head_frame_normals_like_the_world():
    from talklib.face3d.model import rotate_sh, shade

    R = torch.linalg.matrix_exp(torch.tensor([[0.0, -0.3, 0.2], [0.3, 0.0, -0.1], [-0.2, 0.1, 0.0]]))[None]
    L = torch.randn(1, 27)
    n = F.normalize(torch.randn(1, 100, 3), dim=-1)
    assert torch.allclose(shade(n, rotate_sh(L, R)), shade(n @ R[0].T, L), atol=1e-5)


def test_render_picks_the_window_by_the_number_of_rays(monkeypatch):
    """window=None: 16 from WINDOW_MIN_RAYS rays per call, 0 below (the same image either way, up to
    the transmittance cut, so only the choice is checked, bit for bit)."""
    import talklib.nerf.renderer as renderer_mod

    m, cond, c2w, bg = _opaque_scene()
    with torch.no_grad():
        ref = {w: m.render(cond, c2w, 12.0, 6.0, 6.0, 12, 12, bg, mode="fast", window=w)["rgb"] for w in (0, 16)}
        assert not torch.equal(ref[0], ref[16])
        for limit, want in ((2 * 12 * 12, 16), (2 * 12 * 12 + 1, 0)):
            monkeypatch.setattr(renderer_mod, "WINDOW_MIN_RAYS", limit)
            got = m.render(cond, c2w, 12.0, 6.0, 6.0, 12, 12, bg, mode="fast")["rgb"]
            assert torch.equal(got, ref[want])
