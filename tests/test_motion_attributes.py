"""DFA-NeRF's face-attribute autoencoder (Section 3.2, Eq. (2)) on toy landmarks whose mouth and blink are known:
swapping f_m moves the mouth and not the eyes, the codes read the right scalar, resume after a kill, save / load,
and the one-line errors."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from talklib.errors import UserError
from talklib.motion import attributes as A

L, N_MOUTH, N_IDENT = 20, 8, 6
MOUTH, EYE = np.arange(N_MOUTH), np.arange(N_MOUTH, L)
CFG = A.AttributeAEConfig(n_landmarks=L, mouth_dim=8, eye_dim=4, width=64, layers=2)
TRAIN = {"batch": 128, "lr": 3e-3, "progress": False}


def _world(seed: int) -> tuple[np.ndarray, ...]:
    """A toy 3DMM (Eq. (1)) of L landmarks in metres: a template, one static offset per identity and point (4 mm),
    a mouth direction per mouth point (10 mm at full opening) and a blink direction per eye point (4 mm)."""
    r = np.random.default_rng(seed)
    template = r.uniform(-0.05, 0.05, (L, 3))
    ident = r.normal(0, 0.004, (N_IDENT, L, 3))
    mouth_dir, blink_dir = r.normal(0, 1, (L, 3)), r.normal(0, 1, (L, 3))
    mouth_dir[N_MOUTH:], blink_dir[:N_MOUTH] = 0, 0
    mouth_dir /= np.maximum(np.linalg.norm(mouth_dir, axis=1, keepdims=True), 1e-9)
    blink_dir /= np.maximum(np.linalg.norm(blink_dir, axis=1, keepdims=True), 1e-9)
    return template, ident, 0.010 * mouth_dir, 0.004 * blink_dir


def _frames(world, per_ident: int, seed: int) -> tuple[np.ndarray, ...]:
    """per_ident frames of each identity: landmarks (N, L, 3) float32 (0.1 mm noise), identity (N,), mouth opening
    (N,) and blink (N,), both uniform in [0, 1] per frame."""
    template, ident, mouth_dir, blink_dir = world
    r = np.random.default_rng(seed)
    g = np.repeat(np.arange(N_IDENT), per_ident)
    mouth, blink = r.random(len(g)), r.random(len(g))
    x = (template + ident[g] + mouth[:, None, None] * mouth_dir + blink[:, None, None] * blink_dir
         + r.normal(0, 1e-4, (len(g), L, 3)))
    return x.astype(np.float32), g, mouth, blink


def _probe_r2(features: np.ndarray, y: np.ndarray, ident: np.ndarray | None = None) -> float:
    """R^2 of a least-squares linear probe y ~ features (+ one intercept per identity when ident is given)."""
    extra = np.ones((len(y), 1)) if ident is None else np.eye(N_IDENT)[ident]
    X = np.c_[features, extra]
    coef, *_ = np.linalg.lstsq(X, y, rcond=None)
    return float(1 - ((X @ coef - y) ** 2).mean() / y.var())


@pytest.fixture(scope="module")
def trained():
    """An autoencoder trained 600 steps on 6 identities x 100 frames, with held-out frames (40 per identity)."""
    world = _world(0)
    x, g, _, _ = _frames(world, 100, 100)
    torch.manual_seed(0)
    ae = A.AttributeAE(CFG)
    history = A.train_attribute_ae(ae, x, g, MOUTH, EYE, 600, seed=0, **TRAIN)
    return ae, history, _frames(world, 40, 200)


def _cross_pairs(test, n: int = 300) -> tuple[np.ndarray, np.ndarray]:
    """n held-out pairs (A, B) of different identities (the frames come 40 per identity, in order)."""
    r = np.random.default_rng(9)
    ia = r.integers(0, len(test[0]), n)
    return ia, (ia + 40 * r.integers(1, N_IDENT, n)) % len(test[0])


# Margins measured over seeds 0-4 (world, data, init and sampling all seeded alike; 1.4-3 s a training on one CPU
# thread). Landmark spread (mean distance from the mean shape) 5.5-6.2 mm; reconstruction 0.16-0.17 mm per region,
# 0.028-0.031 of the spread (the 0.1 mm-per-coordinate noise is 0.16 mm per landmark); D(f_mB, f_eA): mouth
# 0.26-0.35 mm from B's and 9.0-10.4 mm from A's (ratio 0.027-0.039), eyes 0.25-0.31 mm from A's and 7.9-9.6 mm
# from B's (ratio 0.026-0.035), the reverse swap the same; the eye region moves 0.021-0.026 of what the mouth moves
# when only f_m is swapped, the mouth 0.022-0.031 of what the eyes move when only f_e is; the loss ends at 0.03 of
# its start.


def test_swapping_f_m_moves_the_mouth_and_keeps_the_eyes(trained):
    ae, history, test = trained
    assert history[-1]["loss"] < 0.3 * history[0]["loss"]
    x_test = test[0]
    spread = float(np.linalg.norm(x_test - x_test.mean(0), axis=-1).mean())
    ia, ib = _cross_pairs(test)
    s = A.swap_scores(ae, x_test[ia], x_test[ib], MOUTH, EYE)
    assert s["pairs"] == len(ia) and s["rec_mouth_mm"] == pytest.approx(1000 * s["rec_mouth"])
    assert max(s["rec_mouth"], s["rec_eye"]) < 0.1 * spread
    for swapped, kept in (("B", "A"), ("A", "B")):
        code = f"m{swapped}e{kept}"
        assert s[f"{code}_mouth_vs_{swapped}"] < 0.15 * s[f"{code}_mouth_vs_{kept}"]
        assert s[f"{code}_eye_vs_{kept}"] < 0.15 * s[f"{code}_eye_vs_{swapped}"]
    for swap in ("mouth", "eye"):
        change = A.region_change(ae, x_test[ia], x_test[ib], MOUTH, EYE, swap=swap)
        assert change["ratio"] < 0.1
        assert change["moved_mm"] > 3.0       # the swapped region really moved (mouths 9 mm apart, eyes 8-10)


def test_codes_read_the_right_scalar(trained):
    # Linear probes on held-out frames, measured over seeds 0-4: mouth opening from f_m R^2 0.97-1.00, blink from
    # f_m 0.02-0.32 (plain probe); with one intercept per identity (the codes carry identity geometry too, module
    # docstring): mouth from f_m 0.997-1.00, blink from f_e 0.96-1.00, mouth from f_e 0.02-0.07. Not asserted: blink
    # from f_m with per-identity intercepts is 0.18-0.75. Eq. (2) makes D_L's mouth depend on f_m alone and its
    # eyes on f_e alone, but nothing makes E_L's f_m blind to the eyes: its spare dimensions keep blink that D_L
    # ignores (f_e, with fewer dimensions, keeps almost no mouth).
    ae, _, (x_test, g_test, mouth, blink) = trained
    f_m, f_e = A.embed(ae, x_test, batch=50)
    assert f_m.shape == (len(x_test), CFG.mouth_dim) and f_e.shape == (len(x_test), CFG.eye_dim)
    assert f_m.dtype == np.float32
    assert _probe_r2(f_m, mouth) > 0.9
    assert _probe_r2(f_m, blink) < 0.5
    assert _probe_r2(f_m, mouth, g_test) > 0.98
    assert _probe_r2(f_e, blink, g_test) > 0.9
    assert _probe_r2(f_e, mouth, g_test) < 0.2




def test_killed_training_resumes_to_the_uninterrupted_result(tmp_path, killed):
    x, g, _, _ = _frames(_world(1), 10, 1)
    small = A.AttributeAEConfig(n_landmarks=L, mouth_dim=3, eye_dim=2, width=16, layers=1)
    kw = {"batch": 16, "lr": 3e-3, "seed": 4, "progress": False}
    torch.manual_seed(2)
    whole = A.AttributeAE(small)
    h = A.train_attribute_ae(whole, x, g, MOUTH, EYE, 40, **kw)
    ck = tmp_path / "attr_state.pt"
    torch.manual_seed(2)
    cut = A.AttributeAE(small)
    killed(A, 23, lambda: A.train_attribute_ae(cut, x, g, MOUTH, EYE, 40, ckpt=ck, ckpt_every=20, **kw))
    torch.manual_seed(99)     # another initialisation: every weight and buffer must come from the file
    again = A.AttributeAE(small)
    h2 = A.train_attribute_ae(again, x, g, MOUTH, EYE, 40, ckpt=ck, ckpt_every=20, **kw)
    assert len(h2) == 40 and h2 == h
    for k, v in whole.state_dict().items():
        torch.testing.assert_close(again.state_dict()[k], v, rtol=0, atol=0)
    with pytest.raises(UserError, match="trained with other settings .*same_identity_prob"):
        A.train_attribute_ae(A.AttributeAE(small), x, g, MOUTH, EYE, 40, ckpt=ck, same_identity_prob=0.2,
                             **kw)


def test_save_load_round_trip(tmp_path):
    x, g, _, _ = _frames(_world(2), 5, 2)
    cfg = A.AttributeAEConfig(n_landmarks=L, mouth_dim=3, eye_dim=2, width=16, layers=1, per_coordinate_std=True)
    torch.manual_seed(0)
    ae = A.AttributeAE(cfg)
    A.train_attribute_ae(ae, x, g, MOUTH, EYE, 5, batch=8, progress=False)
    back = A.load_attribute_ae(A.save_attribute_ae(ae, tmp_path / "attr.pt"))
    assert back.cfg == cfg and not back.training
    assert float(back.lm_std.std()) > 0          # per-coordinate std, carried by the file
    for a, b in zip(A.embed(ae, x), A.embed(back, x), strict=True):
        np.testing.assert_array_equal(a, b)
    with torch.no_grad():
        torch.testing.assert_close(back(torch.from_numpy(x)), ae(torch.from_numpy(x)), rtol=0, atol=0)
    torch.save({"kind": "au-encoder", "config": {}, "state": {}}, tmp_path / "other.pt")
    with pytest.raises(UserError, match="not an attribute autoencoder"):
        A.load_attribute_ae(tmp_path / "other.pt")


def test_one_line_errors():
    x, g, _, _ = _frames(_world(3), 4, 3)
    ae = A.AttributeAE(A.AttributeAEConfig(n_landmarks=L, mouth_dim=2, eye_dim=2, width=8, layers=1))

    def train(lm=x, groups=g, mouth=MOUTH, eye=EYE):
        A.train_attribute_ae(ae, lm, groups, mouth, eye, 1, batch=4, progress=False)

    cases = [
        ({"mouth": np.arange(9)}, "given twice"),                         # landmark 8 in both regions
        ({"eye": np.arange(N_MOUTH + 1, L)}, "1 missing"),                # landmark 8 in neither
        ({"eye": np.arange(N_MOUTH, L + 1)}, "out of range"),
        ({"mouth": MOUTH.astype(np.float32)}, "region indices"),
        ({"mouth": np.array([], np.int64), "eye": np.arange(L)}, "region indices"),
        ({"lm": x[:, :L - 1]}, r"give \(N, 20, 3\)"),
        ({"lm": x[..., :2]}, r"give \(N, 20, 3\)"),
        ({"groups": g[:-1]}, "one integer identity label per"),
        ({"groups": g.astype(np.float64)}, "one integer identity label per"),
        ({"groups": np.zeros_like(g)}, "at least 2 identities"),
        ({"lm": np.where(np.arange(len(x))[:, None, None] == 3, np.nan, x)}, "NaN or inf"),
    ]
    for kw, msg in cases:
        with pytest.raises(UserError, match=msg) as e:
            train(**kw)
        assert "\n" not in str(e.value)
    with pytest.raises(UserError, match="paired row by row"):
        A.swap_scores(ae, x, x[:-1], MOUTH, EYE)
    with pytest.raises(UserError, match="given twice"):
        A.region_change(ae, x, x, np.arange(9), EYE)
    with pytest.raises(UserError, match="'mouth' .* or 'eye'"):
        A.region_change(ae, x, x, MOUTH, EYE, swap="nose")
    with pytest.raises(UserError, match="NaN or inf"):
        A.embed(ae, np.full((2, L, 3), np.inf, np.float32))
