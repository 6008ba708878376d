"""talklib.face3d: the morphable model (Eq. 1), its named expressions, AUs, the asset, SH lighting."""

import numpy as np
import pytest
import torch

from talklib.data.dataset import AU_NAMES, EXP_NAMES
from talklib.face3d import topology as topo
from talklib.face3d.model import MorphableModel, au_intensity, default_illumination, sh_basis, shade


@pytest.fixture(scope="module")
def model():
    return MorphableModel.from_asset()


def test_dimensions(model):
    V = model.n_vertices
    assert model.id_basis.shape == (100, V, 3) and model.exp_basis.shape == (79, V, 3)
    assert model.alb_basis.shape == (100, V, 3) and model.faces.max() < V
    assert model.faces.shape[0] > 852 and model.texture.shape == (256, 256, 3)


def test_equation_1_is_linear(model):
    t = model.tensors()
    rng = np.random.default_rng(0)
    a, b = torch.tensor(rng.normal(size=(1, 100)), dtype=torch.float32), torch.tensor(rng.normal(size=(1, 79)),
                                                                                      dtype=torch.float32)
    S = MorphableModel.shape(t, a, b)[0].numpy()
    expect = model.mean + np.einsum("k,kvc->vc", a[0].numpy(), model.id_basis) + \
        np.einsum("k,kvc->vc", b[0].numpy(), model.exp_basis)
    assert np.allclose(S, expect, atol=1e-5)


def test_named_components_move_the_right_parts(model):
    m = model.mean
    jaw = model.exp_basis[EXP_NAMES.index("jaw_open")]
    assert jaw[topo.CHIN, 1] < -0.01                              # chin drops > 1 cm
    assert np.abs(jaw[topo.FOREHEAD]).max() == 0.0                 # forehead still
    assert np.abs(jaw[list(topo.LIPS_INNER_UPPER[1:-1])]).max() == 0.0
    blink = model.exp_basis[EXP_NAMES.index("blink_right")]
    closed = m + blink
    gap = closed[list(topo.RIGHT_UPPER_LID), 1] - closed[list(topo.RIGHT_LOWER_LID), 1]
    assert np.abs(gap).max() < 1e-4                                # lids meet
    assert np.abs(blink[list(topo.LEFT_EYE_LOOP)]).max() == 0.0     # the other eye does not move
    brow = model.exp_basis[EXP_NAMES.index("brow_inner_raise")]
    assert brow[107, 1] > 0.005 and brow[topo.CHIN, 1] == 0.0
    smile = model.exp_basis[EXP_NAMES.index("smile")]
    assert smile[61, 1] > 0.003 and smile[291, 1] > 0.003 and smile[61, 0] < 0 < smile[291, 0]


def test_au_mapping_known_answers():
    e = np.zeros((3, 79), np.float32)
    e[0, EXP_NAMES.index("jaw_open")] = 1.0
    e[1, EXP_NAMES.index("blink_left")] = 0.5
    e[2, EXP_NAMES.index("smile")] = 0.1
    au = au_intensity(e)
    col = {n: i for i, n in enumerate(AU_NAMES)}
    assert au[0, col["AU26"]] == 5.0 and au[0, col["AU25"]] == 5.0 and au[0, col["AU45"]] == 0.0
    assert au[1, col["AU45"]] == 2.5
    assert np.isclose(au[2, col["AU12"]], 0.5) and au.max() <= 5.0
    assert np.allclose(au_intensity(torch.tensor(e)).numpy(), au)


def test_sh_lighting_known_answers():
    n = torch.tensor([[0.0, 0.0, 1.0], [0.0, 0.0, -1.0]])
    Y = sh_basis(n)
    assert torch.allclose(Y[0, 0], torch.tensor(0.282095)) and torch.allclose(Y[0, 2], torch.tensor(0.488603))
    illu = torch.tensor(default_illumination(ambient=0.8, frontal=0.25, top=0.0))[None]
    s = shade(n[None], illu)[0]
    assert torch.allclose(s[0], torch.full((3,), 1.05), atol=1e-4)   # facing the light
    assert torch.allclose(s[1], torch.full((3,), 0.55), atol=1e-4)   # facing away


def test_committed_asset_matches_a_rebuild():
    pytest.importorskip("mediapipe")
    from talklib.face3d.asset import build_head_asset, load_head_asset

    new, old = build_head_asset(), load_head_asset()
    assert set(new) == set(old)
    assert np.array_equal(new["faces"], old["faces"]) and np.array_equal(new["texture"], old["texture"])
    assert np.abs(new["vertices"] - old["vertices"]).max() < 1e-4
    assert np.abs(new["uv"] - old["uv"]).max() < 1e-4


def test_photo_without_face_is_refused():
    pytest.importorskip("mediapipe")
    from talklib.errors import UserError
    from talklib.face3d.asset import build_head_asset
    from talklib.face3d.fit import fit_photo

    blank = np.full((128, 128, 3), 90, np.uint8)
    with pytest.raises(UserError, match="no face found in the photo"):
        build_head_asset(blank)
    with pytest.raises(UserError, match="no face found in the photo"):
        fit_photo({}, blank)
