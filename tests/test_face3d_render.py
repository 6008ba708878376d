"""talklib.face3d camera, rasterizer, renderer, landmark detection and fitting, with known answers."""

import math

import numpy as np
import pytest
import torch

from talklib.face3d.camera import (euler_to_matrix, focal_for, head_canonical_c2w, matrix_to_euler, orbit_camera,
                                   pose_matrix, project)
from talklib.face3d.raster import interpolate, rasterize


def test_projection_known_answer():
    c2w = torch.tensor(orbit_camera(0, 0, 1.0), dtype=torch.float64)[None]
    pts = torch.tensor([[[0.0, 0.0, 0.0], [0.1, 0.05, 0.0]]], dtype=torch.float64)
    pix, depth = project(pts, c2w, 100.0, 32.0, 24.0)
    assert torch.allclose(pix[0, 0], torch.tensor([32.0, 24.0], dtype=torch.float64))
    assert torch.allclose(pix[0, 1], torch.tensor([42.0, 19.0], dtype=torch.float64))   # +y up -> smaller row
    assert torch.allclose(depth, torch.ones_like(depth))


def test_orbit_and_euler():
    M = orbit_camera(30, 0, 2.0)
    assert np.allclose(M[:3, 3], [2 * math.sin(math.radians(30)), 0, 2 * math.cos(math.radians(30))])
    assert orbit_camera(0, 15, 1.0)[1, 3] > 0                           # pitch+ = camera above
    ang = np.radians([[12.0, -7.0, 3.0]])
    R = euler_to_matrix(*torch.tensor(ang).T).numpy()
    assert np.allclose(matrix_to_euler(R), ang)
    H = pose_matrix(torch.tensor([[10.0, 0, 0, 0.01, 0, 0]], dtype=torch.float64)).numpy()[0]
    assert np.allclose(head_canonical_c2w(np.eye(4), H) @ H, np.eye(4))
    assert math.isclose(focal_for(100, 90), 50.0)


def test_rasterizer_area_depth_and_interpolation():
    H = W = 20
    # triangle A covering the lower-left half at depth 2, triangle B the full square at depth 3 behind it
    pix = torch.tensor([[[0, 0], [20, 20], [0, 20], [0, 0], [20, 0], [20, 20], [0, 20]]], dtype=torch.float64)
    depth = torch.tensor([[2.0, 2.0, 2.0, 3.0, 3.0, 3.0, 3.0]], dtype=torch.float64)
    faces = torch.tensor([[0, 1, 2], [3, 4, 5], [3, 5, 6]])
    face, bary, z = rasterize(pix, depth, faces, H, W)
    assert (face >= 0).all()                                           # square fully covered
    assert (face[0] == 0).sum().item() == 210                          # 20*21/2 centres on or below the diagonal
    assert torch.allclose(z[0][face[0] == 0], torch.tensor(2.0, dtype=torch.float64))
    assert torch.allclose(bary.sum(-1), torch.ones(1, H, W, dtype=torch.float64))
    # an attribute linear in x is reproduced exactly at pixel centres (constant depth)
    attr = pix[..., :1].clone()
    x = interpolate(attr, faces, face, bary)[0, ..., 0]
    assert torch.allclose(x, torch.arange(W, dtype=torch.float64)[None].expand(H, W) + 0.5)


def test_rasterizer_is_deterministic():
    rng = np.random.default_rng(0)
    pix = torch.tensor(rng.uniform(0, 32, (2, 30, 2)))
    depth = torch.tensor(rng.uniform(1, 2, (2, 30)))
    faces = torch.tensor(rng.integers(0, 30, (40, 3)))
    a = rasterize(pix, depth, faces, 32, 32)
    b = rasterize(pix, depth, faces, 32, 32)
    assert all(torch.equal(x, y) for x, y in zip(a, b))


@pytest.fixture(scope="module")
def frontal():
    from talklib.face3d.model import MorphableModel, default_illumination
    from talklib.face3d.render import render

    m = MorphableModel.from_asset()
    t = m.tensors()
    B, S = 3, 256
    exp = torch.zeros(B, 79)
    exp[1, 0] = 0.8                                          # jaw open
    pose = torch.zeros(B, 6)
    pose[2, 0] = 8.0                                         # yaw 8 degrees
    illu = torch.tensor(default_illumination()).expand(B, -1)
    c2w = torch.tensor(orbit_camera(0, 0, 0.6), dtype=torch.float32).expand(B, -1, -1)
    f = focal_for(S, 22.0)
    out = render(t, torch.zeros(B, 100), exp, torch.zeros(B, 100), illu, pose, c2w, f, S / 2, S / 2, S, S,
                 torch.full((S, S, 3), 0.4))
    return t, out, exp, pose, f, S


def test_render_outputs(frontal):
    _, out, _, _, _, S = frontal
    assert out["rgb"].shape == (3, S, S, 3) and 0.2 < out["alpha"].mean() < 0.8
    assert out["lmk2d"].shape == (3, 478, 2) and out["lmk3d"].shape == (3, 478, 3)
    d = out["depth"][0][out["alpha"][0] > 0.5]
    assert 0.45 < d.min() < d.max() < 0.75                   # the head sits ~0.6 m from the camera
    # the open jaw shows the dark mouth cavity between the lips
    r, c = out["lmk2d"][1, [13, 14]].mean(0).round().long().tolist()[::-1]
    assert out["rgb"][1, r, c].max() < 0.3


def test_mediapipe_agrees_and_fit_recovers(frontal):
    pytest.importorskip("mediapipe")
    from talklib.face3d.fit import fit_landmarks
    from talklib.face3d.landmarks import LandmarkDetector, inter_ocular_distance

    t, out, exp, pose, f, S = frontal
    rgb = (out["rgb"].numpy() * 255 + 0.5).astype(np.uint8)
    with LandmarkDetector() as det:
        found = [det(im) for im in rgb]
    assert all(p is not None and p.shape == (478, 2) for p in found)
    gt = out["lmk2d"].numpy()
    err = np.linalg.norm(found[0] - gt[0], axis=1).mean() / inter_ocular_distance(gt[0])
    assert err < 0.03
    # fitting the exact projected landmarks recovers pose and jaw
    r = fit_landmarks(t, gt, orbit_camera(0, 0, 0.6), f, S / 2, S / 2, n_exp=12)
    assert np.abs(r["pose"][:, 0] - pose[:, 0].numpy()).max() < 0.5
    assert abs(r["exp"][1, 0] - 0.8) < 0.1 and abs(r["exp"][0, 0]) < 0.1
