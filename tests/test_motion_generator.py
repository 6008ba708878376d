"""talklib.motion.generator: DFA-NeRF's motion branch from a wav (E_a -> cross-modal encoder -> frozen decoder),
saved and loaded as one file, with its one-line errors."""

import numpy as np
import pytest
import torch

from talklib import checkpoint
from talklib.audio.contrastive import AudioEncoder
from talklib.errors import UserError
from talklib.motion import generator as G
from talklib.motion import vae as V


def _generator(eye_dim: int = 2, tau: int = 4, window: int = 24) -> G.MotionGenerator:
    torch.manual_seed(0)
    d = 6 + eye_dim
    cfg = V.VAEConfig(d_in=d, z_dim=4, width=16, layers=1, heads=2, seq_len=window)
    vae = V.MotionVAE(cfg)
    enc = AudioEncoder(dim=8)
    cme = V.CrossModalEncoder(V.CMEConfig.for_vae(cfg, a_dim=8))
    rng = np.random.default_rng(0)
    mean, std = rng.normal(size=d), rng.uniform(0.5, 2.0, d)
    bop = mean + std * rng.normal(size=(tau, d))
    return G.MotionGenerator(enc.eval(), vae.eval(), cme.eval(), mean, std, bop, window, "m000")


def _speech(seconds: float, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    t = np.arange(int(16000 * seconds)) / 16000
    return (0.1 * np.sin(2 * np.pi * 140 * t) * (1 + np.sin(2 * np.pi * 3 * t)) + 0.01 * rng.normal(size=len(t))
            ).astype(np.float32)


def test_drive_gives_pose_and_eyes_for_every_frame_starting_with_the_bop():
    gen = _generator()
    out = G.drive(gen, _speech(3.0))
    assert out["pose"].shape == (75, 6) and out["f_e"].shape == (75, 2)
    assert np.isfinite(out["pose"]).all() and np.isfinite(out["f_e"]).all()
    np.testing.assert_allclose(np.c_[out["pose"], out["f_e"]][:gen.tau], gen.bop, rtol=1e-5, atol=1e-5)
    again = G.drive(gen, _speech(3.0))
    np.testing.assert_array_equal(out["pose"], again["pose"])            # same seed, same motion
    other = G.drive(gen, _speech(3.0), seed=1)
    assert not np.array_equal(out["pose"][gen.tau:], other["pose"][gen.tau:])
    mean = G.drive(gen, _speech(3.0), sample=False)
    np.testing.assert_array_equal(mean["pose"], G.drive(gen, _speech(3.0), seed=5, sample=False)["pose"])
    assert G.drive(gen, _speech(3.0), n_frames=40)["pose"].shape == (40, 6)


def test_save_load_round_trip(tmp_path):
    gen = _generator(eye_dim=3)
    path = G.save_generator(tmp_path / "motion.pt", gen)
    back = G.load_generator(path)
    assert back.eye_dim == 3 and back.tau == gen.tau and back.window == gen.window and back.person == "m000"
    a, b = G.drive(gen, _speech(2.0), seed=2), G.drive(back, _speech(2.0), seed=2)
    np.testing.assert_allclose(a["pose"], b["pose"], rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(a["f_e"], b["f_e"], rtol=1e-5, atol=1e-5)


def test_errors_are_one_line(tmp_path):
    gen = _generator(tau=4)
    with pytest.raises(UserError, match="longer than the BOP") as e:
        G.drive(gen, _speech(0.1))                                       # 2 frames, BOP of 4
    assert "\n" not in str(e.value)
    with pytest.raises(UserError, match="mono"):
        G.drive(gen, np.zeros((2, 16000), np.float32))
    with pytest.raises(UserError, match="no motion generator"):
        G.load_generator(tmp_path / "missing.pt")
    checkpoint.save(tmp_path / "other.pt", {"kind": "nerf", "audio_encoder": 1, "vae": 1, "cme": 1, "h_mean": 1,
                                            "h_std": 1, "bop": 1, "window": 1})
    with pytest.raises(UserError, match="not a motion generator"):
        G.load_generator(tmp_path / "other.pt")
    bad = _generator()
    bad.bop = bad.bop[:, :3]
    with pytest.raises(UserError, match="BOP of shape"):
        G.save_generator(tmp_path / "bad.pt", bad)
    assert not (tmp_path / "bad.pt").exists()
