"""talklib.motion.vae: DFA-NeRF's Transformer GP-VAE and its Table 4 baselines (Section 3.4, Eq. (4)-(9)):
the Cauchy kernel and the analytic KL against brute force, each kind learning smooth sequences, the cross-modal
encoder learning an audio -> attribute mapping, autoregressive generation, resume after a kill, files, and the
one-line errors."""

import numpy as np
import pytest
import torch
from torch.distributions import MultivariateNormal, kl_divergence

from talklib import checkpoint
from talklib.errors import UserError
from talklib.motion import vae as V

#: the tiny sizes every test trains (d = 3 attributes, windows of 32 frames)
TINY = {"d_in": 3, "z_dim": 4, "width": 32, "layers": 1, "heads": 2, "seq_len": 32, "beta": 0.05}


def _one_line(e) -> str:
    msg = str(e.value)
    assert "\n" not in msg
    return msg


def _sinusoids(n: int, T: int, rng: np.random.Generator, d: int = 3) -> list[np.ndarray]:
    """Smooth sequences: per sequence and dimension a sinusoid of 15-40 frames' period, random phase."""
    t = np.arange(T)[:, None]
    f, ph = rng.uniform(1 / 40, 1 / 15, (n, 1, d)), rng.uniform(0, 2 * np.pi, (n, 1, d))
    return list(np.sin(2 * np.pi * f * t + ph).astype(np.float32))


def _audio_pairs(n: int, T: int, rng: np.random.Generator, a: int = 4, d: int = 3) -> list[dict]:
    """Smooth 'audio' f_a (low-passed noise) and h = a 5-frame moving average of its first d channels."""
    out = []
    for _ in range(n):
        w = rng.standard_normal((T + 12, a))
        fa = np.stack([np.convolve(w[:, j], np.ones(9) / 3.0, mode="valid") for j in range(a)], 1)
        h = np.stack([np.convolve(fa[:, j], np.ones(5) / 5.0, mode="valid") for j in range(d)], 1)
        out.append({"f_a": fa[4:].astype(np.float32), "h": h.astype(np.float32)})
    return out


def _pair(kind: str = "gp_transformer", a_dim: int = 4, seed: int = 0, **sizes):
    torch.manual_seed(seed)
    cfg = V.VAEConfig(**{**TINY, "kind": kind, **sizes})
    vae = V.MotionVAE(cfg)
    return vae, V.CrossModalEncoder(V.CMEConfig.for_vae(cfg, a_dim, width=32))


# ---- Eq. (7): the kernel and the prior --------------------------------------------------------------


def test_cauchy_kernel_values_and_positive_definite():
    K = V.cauchy_kernel(6, 2.0, sigma=1.5, jitter=1e-3)
    assert K.shape == (6, 6) and K.dtype == torch.float64
    assert float(K[0, 0]) == pytest.approx(1.5 + 1e-3)
    assert float(K[1, 4]) == pytest.approx(1.5 / (1 + 9 / 4))
    torch.testing.assert_close(K, K.T)
    for T, length in [(6, 2.0), (300, 8.0), (300, 0.5)]:
        K = V.cauchy_kernel(T, length)
        assert float(torch.linalg.eigvalsh(K).min()) > 5e-4          # jitter keeps it positive definite
        torch.linalg.cholesky(K)


def test_prior_scales_cycle_and_floor():
    assert V.gp_prior_scales(6, 8.0) == [8.0, 4.0, 2.0, 1.0, 8.0, 4.0]
    assert V.gp_prior_scales(3, 3.0) == [3.0, 1.5, 3.0]
    assert V.gp_prior_scales(2, 0.5) == [0.5, 0.5]
    L, K_inv, logdet = V.gp_prior_factors(10, [4.0, 1.0])
    K = V.cauchy_kernel(10, 4.0).float()
    torch.testing.assert_close(L[0] @ L[0].T, K, atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(K_inv[0] @ K, torch.eye(10), atol=1e-3, rtol=1e-3)
    assert float(logdet[0]) == pytest.approx(float(torch.logdet(K)), rel=1e-4)


# ---- Eq. (8): the posteriors' KL ---------------------------------------------------------------------


def test_gp_kl_equals_brute_force_multivariate_normal():
    g = torch.Generator().manual_seed(0)
    B, T, k = 3, 7, 2
    prior = V.GPPrior([3.0, 1.0], sigma=1.2)
    raw = torch.randn(B, T, 3 * k, generator=g, dtype=torch.float64)
    post = V._posterior(raw, k, prior)
    cov = post.covariance()
    K = torch.stack([V.cauchy_kernel(T, s, 1.2) for s in prior.scales])
    brute = torch.zeros(B)
    for b in range(B):
        for j in range(k):
            q = MultivariateNormal(post.mean[b, :, j], covariance_matrix=cov[b, j])
            brute[b] += kl_divergence(q, MultivariateNormal(torch.zeros(T, dtype=torch.float64), K[j]))
    assert float(post.kl()) == pytest.approx(float(brute.mean() / T), rel=1e-6)
    # the precision is B^T B with B upper bidiagonal
    Bm = post.precision_factor()
    torch.testing.assert_close(torch.linalg.inv(cov), Bm.transpose(-1, -2) @ Bm)
    assert torch.equal(Bm.triu().tril(1), Bm)


def test_gp_sample_has_the_posterior_covariance():
    prior = V.GPPrior([2.0], sigma=1.0)
    raw = torch.randn(1, 4, 3, generator=torch.Generator().manual_seed(1))
    post = V._posterior(raw, 1, prior)
    post = V.GPPosterior(post.mean.expand(20000, -1, -1), post.diag.expand(20000, -1, -1),
                         post.off.expand(20000, -1, -1), post.prior_tril, post.prior_inv, post.prior_logdet)
    z = post.sample(torch.Generator().manual_seed(2))[..., 0]                # (N, T)
    cov = post.covariance()[0, 0].float()
    sd = cov.diagonal().sqrt()
    assert float(((z.mean(0) - post.mean[0, :, 0]) / sd).abs().max()) < 0.04       # ~ 5 standard errors
    assert float(((torch.cov(z.T) - cov) / (sd[:, None] * sd[None, :])).abs().max()) < 0.05


def test_diag_kl_is_zero_at_the_prior_and_matches_brute_force():
    zero = V.DiagPosterior(torch.zeros(2, 5, 3), torch.zeros(2, 5, 3))
    assert float(zero.kl()) == 0.0
    g = torch.Generator().manual_seed(3)
    mean, log_var = torch.randn(2, 5, 3, generator=g), torch.randn(2, 5, 3, generator=g)
    q = torch.distributions.Normal(mean, (0.5 * log_var).exp())
    brute = kl_divergence(q, torch.distributions.Normal(0.0, 1.0)).sum((1, 2)).mean() / 5
    assert float(V.DiagPosterior(mean, log_var).kl()) == pytest.approx(float(brute), rel=1e-5)


# ---- Table 4's four kinds learn smooth sequences ------------------------------------------------------


# bars on (held-out MSE) / (data variance), over 2x the worst of seeds 0-2 as measured with these settings:
# mlp 0.089 / 0.116 / 0.154, lstm 0.044 / 0.055 / 0.056, transformer 0.019 / 0.018 / 0.028, gp 0.009 / 0.010 / 0.016
BARS = {"mlp": 0.35, "lstm": 0.15, "transformer": 0.07, "gp_transformer": 0.04}


@pytest.mark.parametrize("kind", V.KINDS)
def test_each_kind_learns_smooth_sequences(kind):
    rng = np.random.default_rng(0)
    train, test = _sinusoids(16, 96, rng), _sinusoids(4, 32, rng)
    torch.manual_seed(0)
    width, steps = (64, 400) if kind == "mlp" else (32, 150)   # the MLP is cheap per step but slow to learn
    vae = V.MotionVAE(V.VAEConfig(**{**TINY, "kind": kind, "width": width}))
    hist = V.train_vae(vae, train, steps, batch=16, window=32, lr=3e-3, seed=0, progress=False)
    assert len(hist) == steps and all(np.isfinite(r["loss"]) for r in hist)
    x = torch.from_numpy(np.stack(test))
    with torch.no_grad():
        h_hat, post, z = vae(x, sample=False)
    assert h_hat.shape == x.shape and z.shape == post.mean.shape == (4, 32, 4)
    assert float(((h_hat - x) ** 2).mean()) < BARS[kind] * float(x.var())
    assert not vae.training


# ---- Eq. (9): the cross-modal encoder -----------------------------------------------------------------


def test_cross_modal_encoder_learns_audio_to_attributes():
    rng = np.random.default_rng(0)
    train, test = _audio_pairs(16, 96, rng), _audio_pairs(4, 96, rng)
    vae, cme = _pair("gp_transformer")
    V.train_vae(vae, [it["h"] for it in train], 150, batch=16, window=32, lr=3e-3, seed=0, progress=False)
    before = {k: v.clone() for k, v in vae.state_dict().items()}
    hist = V.train_cross_modal(cme, vae, train, 200, tau=4, window=32, batch=16, lr=3e-3, seed=0, progress=False)
    assert hist[-1]["l1"] < hist[0]["l1"]
    for k, v in vae.state_dict().items():                     # the VAE stayed frozen
        assert torch.equal(v, before[k]), k
    assert all(p.requires_grad for p in vae.parameters())      # and its flags were put back
    mean = np.concatenate([it["h"] for it in train]).mean(0)
    err = np.mean([((V.generate(cme, vae, it["f_a"], it["h"][:4], window=32, sample=False)[4:] - it["h"][4:]) ** 2)
                   .mean() for it in test])
    base = np.mean([((mean - it["h"][4:]) ** 2).mean() for it in test])
    assert err < 0.35 * base           # measured 0.139 / 0.129 / 0.142 of the mean predictor, seeds 0-2
    codes = V.latent_codes(cme, vae, test[0]["f_a"], test[0]["h"][:4])
    assert codes.shape == (96, 4) and V.attribute_codes(vae, test[0]["h"]).shape == (96, 4)


# ---- generation ---------------------------------------------------------------------------------------


@pytest.mark.parametrize("kind", ["gp_transformer", "mlp"])
@pytest.mark.parametrize("T", [5, 20, 32, 33, 100])
def test_generate_covers_the_audio_and_starts_with_the_bop(kind, T):
    vae, cme = _pair(kind)
    rng = np.random.default_rng(1)
    fa, bop = rng.standard_normal((T, 4)).astype(np.float32), rng.standard_normal((5, 3)).astype(np.float32)
    out = V.generate(cme, vae, fa, bop, window=32, sample=False)
    assert out.shape == (T, 3) and out.dtype == np.float32 and np.isfinite(out).all()
    np.testing.assert_array_equal(out[:5], bop)
    np.testing.assert_array_equal(out, V.generate(cme, vae, fa, bop, window=32, sample=False))
    a = V.generate(cme, vae, fa, bop, window=32, gen=torch.Generator().manual_seed(4))
    b = V.generate(cme, vae, fa, bop, window=32, gen=torch.Generator().manual_seed(4))
    np.testing.assert_array_equal(a, b)
    if T > 5:
        assert not np.array_equal(a, out)


def test_generate_one_minute_at_default_sizes():
    """A minute of audio in one call (its speed is measured in benchmarks/motion_generate.py, not here)."""
    cfg = V.VAEConfig(d_in=8)
    vae, cme = V.MotionVAE(cfg), V.CrossModalEncoder(V.CMEConfig.for_vae(cfg, 16))
    rng = np.random.default_rng(2)
    fa, bop = rng.standard_normal((1500, 16)).astype(np.float32), rng.standard_normal((8, 8)).astype(np.float32)
    out = V.generate(cme, vae, fa, bop, gen=torch.Generator().manual_seed(0))
    assert out.shape == (1500, 8) and np.isfinite(out).all()
    np.testing.assert_array_equal(out[:8], bop)


@pytest.mark.parametrize("kind", ["gp_transformer", "transformer"])
def test_sample_prior(kind):
    vae, _ = _pair(kind)
    a = V.sample_prior(vae, 40, n=3, gen=torch.Generator().manual_seed(0))
    assert a.shape == (3, 40, 3) and np.isfinite(a).all()
    np.testing.assert_array_equal(a, V.sample_prior(vae, 40, n=3, gen=torch.Generator().manual_seed(0)))
    assert not np.array_equal(a[0], a[1])


# ---- resume, files -----------------------------------------------------------------------------------




def test_killed_vae_training_resumes_to_the_uninterrupted_result(tmp_path, killed):
    seqs = _sinusoids(4, 40, np.random.default_rng(3))
    kw = {"batch": 4, "window": 32, "lr": 3e-3, "seed": 5, "progress": False}
    torch.manual_seed(1)
    whole = V.MotionVAE(V.VAEConfig(**TINY))
    h = V.train_vae(whole, seqs, 40, **kw)
    ck = tmp_path / "vae_state.pt"
    torch.manual_seed(1)
    cut = V.MotionVAE(V.VAEConfig(**TINY))
    killed(V, 20, lambda: V.train_vae(cut, seqs, 40, ckpt=ck, ckpt_every=10, **kw))
    torch.manual_seed(99)          # another initialisation: every weight must come from the file
    again = V.MotionVAE(V.VAEConfig(**TINY))
    assert V.train_vae(again, seqs, 40, ckpt=ck, ckpt_every=10, **kw) == h
    for k, v in whole.state_dict().items():
        torch.testing.assert_close(again.state_dict()[k], v, rtol=0, atol=0)
    with pytest.raises(UserError, match="trained with other settings .*lr"):
        V.train_vae(V.MotionVAE(V.VAEConfig(**TINY)), seqs, 40, ckpt=ck, **{**kw, "lr": 1e-2})


def test_killed_cross_modal_training_resumes(tmp_path, killed):
    items = _audio_pairs(3, 40, np.random.default_rng(4))
    kw = {"tau": 4, "window": 32, "batch": 4, "lr": 3e-3, "seed": 2, "progress": False}
    vae, whole = _pair(seed=1)
    h = V.train_cross_modal(whole, vae, items, 30, **kw)
    ck = tmp_path / "cme_state.pt"
    _, cut = _pair(seed=1)
    killed(V, 12, lambda: V.train_cross_modal(cut, vae, items, 30, ckpt=ck, ckpt_every=10, **kw))
    _, again = _pair(seed=7)
    assert V.train_cross_modal(again, vae, items, 30, ckpt=ck, ckpt_every=10, **kw) == h


@pytest.mark.parametrize("kind", V.KINDS)
def test_save_load_round_trip(tmp_path, kind):
    vae, cme = _pair(kind)
    rng = np.random.default_rng(5)
    fa, bop = rng.standard_normal((50, 4)).astype(np.float32), rng.standard_normal((6, 3)).astype(np.float32)
    x = torch.from_numpy(rng.standard_normal((2, 32, 3)).astype(np.float32))
    extra = {"mean": [0.5, 1.0, 2.0], "fps": 25}
    path = V.save_motion(tmp_path / "motion.pt", vae, cme, extra)
    vae2, cme2, extra2 = V.load_motion(path)
    assert extra2 == extra and vae2.cfg == vae.cfg and cme2.cfg == cme.cfg and not vae2.training
    vae.eval()
    with torch.no_grad():
        torch.testing.assert_close(vae2(x, sample=False)[0], vae(x, sample=False)[0], rtol=0, atol=0)
    np.testing.assert_array_equal(V.generate(cme2, vae2, fa, bop, window=32, sample=False),
                                  V.generate(cme, vae, fa, bop, window=32, sample=False))
    vae3, cme3, extra3 = V.load_motion(V.save_motion(tmp_path / "vae_only.pt", vae))
    assert cme3 is None and extra3 is None and vae3.cfg == vae.cfg


# ---- one-line errors ----------------------------------------------------------------------------------


def test_bad_input_errors(tmp_path):
    vae, cme = _pair()
    rng = np.random.default_rng(6)
    fa, bop = rng.standard_normal((50, 4)).astype(np.float32), rng.standard_normal((6, 3)).astype(np.float32)
    with pytest.raises(UserError) as e:
        V.train_vae(vae, [np.zeros((40, 3)), np.zeros((20, 3))], 5, window=32, progress=False)
    assert "sequence 1 has 20 frames" in _one_line(e) and "at least 32 frames" in str(e.value)
    with pytest.raises(UserError, match=r"\(T, 3\)"):
        V.train_vae(vae, [np.zeros((40, 5))], 5, window=32, progress=False)
    with pytest.raises(UserError) as e:
        V.generate(cme, vae, fa, rng.standard_normal((32, 3)), window=32)
    assert "shorter than the window" in _one_line(e)
    with pytest.raises(UserError) as e:
        V.generate(cme, vae, fa[:4], bop, window=32)
    assert "4 audio frames for a BOP of 6" in _one_line(e)
    with pytest.raises(UserError) as e:
        V.generate(cme, vae, rng.standard_normal((50, 7)), bop, window=32)
    assert "expects (T, 4)" in _one_line(e)
    with pytest.raises(UserError) as e:
        V.generate(cme, vae, fa, rng.standard_normal((6, 2)), window=32)
    assert "expects (tau, 3)" in _one_line(e)
    with pytest.raises(UserError) as e:
        V.train_cross_modal(cme, vae, [{"f_a": fa, "h": np.zeros((49, 3))}], 2, tau=4, window=32, progress=False)
    assert "50 audio frames and 49 attribute frames" in _one_line(e)
    with pytest.raises(UserError) as e:
        V.train_cross_modal(cme, vae, [{"f_a": fa[:20], "h": np.zeros((20, 3))}], 2, tau=4, window=32,
                            progress=False)
    assert "at least 32 frames" in _one_line(e)
    other, _ = _pair("transformer")
    with pytest.raises(UserError) as e:
        V.generate(cme, other, fa, bop, window=32)
    assert "CMEConfig.for_vae" in _one_line(e)


def test_mlp_errors_on_other_lengths():
    vae, cme = _pair("mlp")
    with pytest.raises(UserError) as e:
        vae.encode(torch.zeros(1, 20, 3))
    assert "seq_len = 32" in _one_line(e)
    with pytest.raises(UserError) as e:
        V.train_vae(vae, [np.zeros((80, 3))], 2, window=64, progress=False)
    assert "seq_len = 32" in _one_line(e)
    rng = np.random.default_rng(7)
    with pytest.raises(UserError) as e:
        V.generate(cme, vae, rng.standard_normal((80, 4)), rng.standard_normal((4, 3)), window=64)
    assert "seq_len = 32" in _one_line(e)
    with pytest.raises(UserError):
        V.sample_prior(vae, 40)


def test_load_errors(tmp_path):
    with pytest.raises(UserError) as e:
        V.load_motion(tmp_path / "missing.pt")
    assert "does not exist" in _one_line(e)
    checkpoint.save(tmp_path / "other.pt", {"kind": "au-encoder", "vae_config": {}, "vae": {}, "cme_config": None,
                                            "cme": None, "extra": None})
    with pytest.raises(UserError) as e:
        V.load_motion(tmp_path / "other.pt")
    assert "not a motion model" in _one_line(e)
    vae, _ = _pair()
    blob = {"kind": V.KIND, "vae_config": {**vae.cfg.__dict__, "width": 16}, "vae": vae.state_dict(),
            "cme_config": None, "cme": None, "extra": None}
    checkpoint.save(tmp_path / "bad.pt", blob)
    with pytest.raises(UserError) as e:
        V.load_motion(tmp_path / "bad.pt")
    assert "does not fit" in _one_line(e)
