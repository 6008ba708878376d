"""NeRF-3DTalker §II.D: the AU losses (Eq. 7-8), the vector quantiser of S and G (Eq. 9-11), the
standardized space, its trainers' resume after a kill, and its one-line errors."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from talklib.codebook import au as AU
from talklib.codebook import space as SP
from talklib.codebook.vq import VectorQuantizer, codebook_terms, perplexity
from talklib.errors import UserError

AUCFG = AU.AUEncoderConfig(image_size=32, width=4, n_au=3, au_dim=4, hidden=16)
CFG = SP.SpaceConfig(image_size=32, width=8, au=AUCFG, au_codes=16, glo_codes=32, glo_dim=8, n_down=2, dead_after=3)


def _toy_frames(n: int, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """n 32x32 faces: a skin disk on grey whose dark mouth bar opens with a random amount; AU labels
    (n, 3): mouth open, wide, and a random third one."""
    yy, xx = np.mgrid[:32, :32]
    frames = np.full((n, 32, 32, 3), 90, np.uint8)
    labels = np.zeros((n, 3), np.int64)
    for i in range(n):
        open_, wide = rng.random(), rng.random()
        frames[i][(yy - 16) ** 2 + (xx - 16) ** 2 < 13 ** 2] = (220, 170, 140)
        h, w = int(1 + 5 * open_), int(3 + 6 * wide)
        frames[i, 22 - h:22 + h, 16 - w:16 + w] = (60, 20, 30)
        labels[i] = (open_ > 0.5, wide > 0.5, rng.random() > 0.7)
    return frames, labels


# ---- Eq. (7)-(8): the AU weights and losses -------------------------------------------------------------

def test_au_weights_follow_the_formula_and_guard_absent_aus():
    w = AU.au_weights([0.5, 0.25, 0.25])                     # 1/r = 2, 4, 4; n / sum = 3 / 10
    torch.testing.assert_close(w, torch.tensor([0.6, 1.2, 1.2]))
    assert float(w.sum()) == pytest.approx(3.0)
    torch.testing.assert_close(AU.au_weights([0.5, 0.0, 0.25]), torch.tensor([0.6, 1.2, 1.2]))  # r = 0 -> rarest seen
    torch.testing.assert_close(AU.au_weights([0.0, 0.0]), torch.ones(2))
    np.testing.assert_allclose(AU.au_rates([[1, 0], [1, 1], [0, 0], [1, 0]]), [0.75, 0.25])
    with pytest.raises(UserError, match="one probability in"):
        AU.au_weights([0.5, 1.5])


def test_bce_and_dice_match_hand_computed_values():
    logits = torch.tensor([[math.log(3.0), math.log(3.0)]])   # x^ = 0.75 for both AUs
    labels = torch.tensor([[1.0, 0.0]])
    w = torch.tensor([0.5, 1.5])
    bce = (0.5 * -math.log(0.75) + 1.5 * -math.log(0.25)) / 2
    assert float(AU.bce_loss(logits, labels, w)) == pytest.approx(bce, rel=1e-5)
    assert float(AU.bce_loss(torch.zeros(4, 2), torch.ones(4, 2))) == pytest.approx(math.log(2), rel=1e-5)
    d1 = 1 - (2 * 0.75 + 1) / (1 + 0.5625 + 1)                # AU with x = 1
    d2 = 1 - (0 + 1) / (0 + 0.5625 + 1)                       # AU with x = 0
    assert float(AU.dice_loss(logits, labels, w)) == pytest.approx((0.5 * d1 + 1.5 * d2) / 2, rel=1e-5)
    # over a batch the products and squares are summed before the ratio
    two = torch.tensor([[math.log(3.0)], [-math.log(3.0)]])   # x^ = 0.75, 0.25
    d = 1 - (2 * 0.75 + 1) / (1 + 0.5625 + 0.0625 + 1)
    assert float(AU.dice_loss(two, torch.tensor([[1.0], [0.0]]))) == pytest.approx(d, rel=1e-5)
    total = AU.au_loss(logits, labels, w)
    assert float(total) == pytest.approx(bce + (0.5 * d1 + 1.5 * d2) / 2, rel=1e-5)


def test_au_encoder_shapes_and_its_readout_reads_the_features():
    torch.manual_seed(0)
    enc = AU.AUEncoder(AUCFG)
    x = torch.rand(5, 3, 32, 32)
    f = enc.features(x)
    assert f.shape == (5, 3, 4)
    torch.testing.assert_close(enc(x), enc.read_au(f))
    assert sum(isinstance(m, torch.nn.Conv2d) for m in enc.modules()) == 4


# ---- Eq. (9)-(11): the vector quantiser ------------------------------------------------------------------

def test_vq_returns_nearest_codes_with_straight_through_gradients():
    torch.manual_seed(0)
    vq = VectorQuantizer(7, 3)
    with torch.no_grad():
        vq.codebook.normal_()
    z = torch.randn(5, 4, 3, requires_grad=True)
    out = vq(z)
    expect = torch.cdist(z.detach().reshape(-1, 3), vq.codebook.detach()).argmin(1).view(5, 4)
    assert torch.equal(out.codes, expect)
    torch.testing.assert_close(out.quantized.detach(), vq.codebook.detach()[expect])
    assert int(out.counts.sum()) == 20 and torch.equal(out.counts, torch.bincount(expect.flatten(), minlength=7))
    g = torch.randn(5, 4, 3)
    (out.quantized * g).sum().backward()
    torch.testing.assert_close(z.grad, g)              # the decoder's gradient reaches the encoder unchanged
    assert vq.codebook.grad is None                    # and not the codebook


def test_codebook_terms_match_eq_11():
    torch.manual_seed(1)
    vq = VectorQuantizer(6, 2)
    z = torch.randn(10, 2, requires_grad=True)
    out = vq(z)
    q = vq.codebook.detach()[out.codes]
    torch.testing.assert_close(out.codebook_term, ((z.detach() - q) ** 2).mean())
    torch.testing.assert_close(out.commit_term, ((z.detach() - q) ** 2).mean())
    out.codebook_term.backward(retain_graph=True)      # ||sg(z_e) - z_q||^2 trains the codebook only
    assert z.grad is None and vq.codebook.grad.abs().sum() > 0
    vq.codebook.grad = None
    out.commit_term.backward()                         # ||z_e - sg(z_q)||^2 trains the encoder only
    assert vq.codebook.grad is None
    torch.testing.assert_close(z.grad, 2 * (z.detach() - q) / z.numel())
    a, b = codebook_terms(torch.ones(2, 2), torch.zeros(2, 2))
    assert float(a) == float(b) == 1.0


def test_perplexity_of_uniform_usage_is_the_codebook_size():
    assert perplexity(torch.ones(32)) == pytest.approx(32.0)
    assert perplexity(torch.tensor([0, 9, 0, 0])) == pytest.approx(1.0)
    assert perplexity(torch.tensor([5, 5, 0, 0])) == pytest.approx(2.0)
    assert perplexity(torch.zeros(4)) == 0.0


def test_codebook_starts_from_the_data():
    gen = torch.Generator().manual_seed(0)
    x = torch.randn(50, 3)
    vq = VectorQuantizer(8, 3)
    assert not bool(vq.initialised)
    vq.init_from(x, gen)                               # k-means++: 8 distinct rows of the data
    assert bool(vq.initialised)
    rows = {tuple(r) for r in x.tolist()}
    chosen = [tuple(r) for r in vq.codebook.detach().tolist()]
    assert len(set(chosen)) == 8 and set(chosen) <= rows
    few = VectorQuantizer(8, 3)
    few.init_from(x[:5], gen)                          # fewer vectors than codes: each once, then noisy copies
    first = {tuple(r) for r in few.codebook.detach()[:5].tolist()}
    assert first == {tuple(r) for r in x[:5].tolist()}
    assert len({tuple(r) for r in few.codebook.detach().tolist()}) == 8


def test_dead_codes_are_moved_onto_current_encodings():
    gen = torch.Generator().manual_seed(0)
    vq = VectorQuantizer(4, 2, dead_after=3)
    with torch.no_grad():
        vq.codebook.copy_(torch.tensor([[0.0, 0.0], [10.0, 10.0], [20.0, 20.0], [30.0, 30.0]]))
    data = torch.randn(16, 2) * 0.1                    # every encoding picks code 0
    for step in range(3):
        assert vq.restart_dead(data, gen) == 0         # not dead yet
        vq.track(vq(data).counts)
    assert vq.dead().tolist() == [1, 2, 3]
    assert vq.restart_dead(data, gen) == 3
    rows = {tuple(r) for r in data.tolist()}
    moved = [tuple(r) for r in vq.codebook.detach()[1:].tolist()]
    assert set(moved) <= rows and len(set(moved)) == 3
    assert vq.codebook.detach()[0].tolist() == [0.0, 0.0] and vq.idle.tolist() == [0, 0, 0, 0]
    assert int((vq(data).counts > 0).sum()) >= 2       # the restarted codes compete again


# ---- the standardized space -------------------------------------------------------------------------------

def test_space_branches_and_ablations_keep_the_frame_size():
    x = torch.rand(2, 3, 32, 32)
    for use_au, use_global in ((True, True), (False, True), (True, False)):
        torch.manual_seed(0)
        m = SP.StandardizedSpace(SP.SpaceConfig(**{**CFG.__dict__, "use_au": use_au, "use_global": use_global}))
        out = m(x)
        assert out.frame.shape == x.shape
        assert (out.au is not None) == use_au and (out.glo is not None) == use_global
        assert set(m.quantizers()) == {k for k, on in (("au", use_au), ("glo", use_global)) if on}
        if use_au:   # the pre-trained AU encoder stays frozen by default
            assert not any(p.requires_grad for p in m.au_encoder.parameters())
            assert all(p.requires_grad for p in m.trainable_parameters())
        terms = SP.standardize_loss(out, x, beta1=0.5, beta2=2.0)
        expect = terms["l1"] + terms["au_codebook"] + 0.5 * terms["au_commit"] + terms["glo_codebook"] + 2.0 * terms["glo_commit"]
        torch.testing.assert_close(terms["loss"], expect)
    assert out.glo is None and float(terms["glo_codebook"]) == 0.0


def test_space_learns_a_toy_set(tmp_path):
    frames, _ = _toy_frames(12, np.random.default_rng(0))
    torch.manual_seed(0)
    m = SP.StandardizedSpace(CFG)
    h = SP.train_space(m, frames, frames, 150, batch=8, lr=3e-3, seed=0, progress=False)
    first, last = np.mean([r["l1"] for r in h[:10]]), np.mean([r["l1"] for r in h[-10:]])
    assert last < 0.5 * first, (first, last)
    assert h[-1]["au_perplexity"] > 1 and h[-1]["glo_perplexity"] > 1
    out = SP.standardize(m, frames, batch=5)
    assert out.shape == frames.shape and out.dtype == np.uint8
    assert np.abs(out.astype(float) - frames).mean() < 0.5 * 255 * first
    codes = SP.codes_of(m, frames)
    assert codes["au"].shape == (12, 3) and codes["glo"].shape == (12, 8, 8)
    SP.save_space(m, tmp_path / "space.pt")
    again = SP.load_space(tmp_path / "space.pt")
    assert np.array_equal(SP.standardize(again, frames, batch=5), out)   # same batch: same float rounding




def test_killed_space_training_resumes_to_the_uninterrupted_result(tmp_path, killed):
    frames, _ = _toy_frames(10, np.random.default_rng(1))
    kw = dict(batch=4, lr=3e-3, beta1=0.3, beta2=0.2, seed=5, progress=False)
    torch.manual_seed(2)
    whole = SP.StandardizedSpace(CFG)
    h = SP.train_space(whole, frames, frames, 24, **kw)
    assert sum(r["glo_restarted"] + r["au_restarted"] for r in h) > 0     # dead codes were re-seeded

    ck = tmp_path / "space_state.pt"
    torch.manual_seed(2)
    cut = SP.StandardizedSpace(CFG)
    killed(SP, 17, lambda: SP.train_space(cut, frames, frames, 24, ckpt=ck, ckpt_every=5, **kw))
    torch.manual_seed(99)      # another initialisation: every weight and buffer must come from the file
    again = SP.StandardizedSpace(CFG)
    h2 = SP.train_space(again, frames, frames, 24, ckpt=ck, ckpt_every=5, **kw)
    assert h2 == h
    for k, v in whole.state_dict().items():
        torch.testing.assert_close(again.state_dict()[k], v, rtol=0, atol=0)
    with pytest.raises(UserError, match="trained with other settings .*beta1"):
        SP.train_space(SP.StandardizedSpace(CFG), frames, frames, 24, ckpt=ck, **{**kw, "beta1": 0.9})


def test_au_encoder_learns_and_resumes(tmp_path, killed):
    frames, labels = _toy_frames(24, np.random.default_rng(2))
    kw = dict(batch=8, lr=3e-3, seed=1, progress=False)
    torch.manual_seed(0)
    whole = AU.AUEncoder(AUCFG)
    h = AU.train_au_encoder(whole, frames, labels, 20, **kw)
    assert h[-1]["loss"] < h[0]["loss"]
    ck = tmp_path / "au_state.pt"
    torch.manual_seed(0)
    cut = AU.AUEncoder(AUCFG)
    killed(AU, 13, lambda: AU.train_au_encoder(cut, frames, labels, 20, ckpt=ck, ckpt_every=5, **kw))
    torch.manual_seed(7)
    again = AU.AUEncoder(AUCFG)
    assert AU.train_au_encoder(again, frames, labels, 20, ckpt=ck, ckpt_every=5, **kw) == h
    for k, v in whole.state_dict().items():
        torch.testing.assert_close(again.state_dict()[k], v, rtol=0, atol=0)
    assert AU.predict_au(again, frames).shape == (24, 3)
    m = SP.StandardizedSpace(CFG, au_encoder=again)     # a pre-trained encoder plugs into the space
    assert m.au_encoder is again
    with pytest.raises(UserError, match="labels in"):
        AU.train_au_encoder(AU.AUEncoder(AUCFG), frames, labels * 2, 2, **kw)


def test_one_line_errors(tmp_path):
    frames, _ = _toy_frames(3, np.random.default_rng(3))
    torch.manual_seed(0)
    m = SP.StandardizedSpace(CFG)
    small = frames[:, ::2, ::2]
    with pytest.raises(UserError, match="frames are 16x16, the standardized space was built for 32x32") as e:
        SP.standardize(m, small)
    assert "\n" not in str(e.value)
    with pytest.raises(UserError, match="uint8"):
        SP.standardize(m, frames.astype(np.float32))
    with pytest.raises(UserError, match="one target frame per input frame"):
        SP.train_space(m, frames, frames[:2], 1, progress=False)

    AU.save_au_encoder(AU.AUEncoder(AUCFG), tmp_path / "au.pt")
    SP.save_space(m, tmp_path / "space.pt")
    with pytest.raises(UserError, match="kind 'au-encoder', not a standardized space") as e:
        SP.load_space(tmp_path / "au.pt")
    assert "\n" not in str(e.value)
    with pytest.raises(UserError, match="kind 'standardized-space', not an AU encoder"):
        AU.load_au_encoder(tmp_path / "space.pt")
    with pytest.raises(UserError, match="no standardized space at"):
        SP.load_space(tmp_path / "missing.pt")

    with pytest.raises(UserError, match="both off") as e:
        SP.StandardizedSpace(SP.SpaceConfig(use_au=False, use_global=False))
    assert "\n" not in str(e.value)
    with pytest.raises(UserError, match="build SpaceConfig\\(au=encoder.cfg\\)"):
        SP.StandardizedSpace(CFG, au_encoder=AU.AUEncoder(AU.AUEncoderConfig(image_size=32, n_au=4)))
    with pytest.raises(ValueError, match="image_size=32"):
        SP.SpaceConfig(image_size=32).check()
