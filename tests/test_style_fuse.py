"""NeRF-3DTalker's StyleNet / FuseNet (Eq. 3) and the synthetic speaker's speech / style parts: the default
style draws exactly the corpus's motion, a style is learnt from a reference and swapped, training resumes
after a kill, and bad input is a one-line error."""

import numpy as np
import pytest
import torch

from talklib.condition import style as ST
from talklib.errors import UserError
from talklib.speaker import style as SS
from talklib.speaker.motion import spontaneous

TIMELINE = [("SIL", 0.0, 0.3), ("AA", 0.3, 0.6), ("SIL", 0.6, 1.0), ("M", 1.0, 1.2), ("IY", 1.2, 1.5),
            ("SIL", 1.5, 4.0)]


def test_default_style_draws_the_corpus_motion_exactly():
    a = spontaneous(np.random.default_rng(3), 100, TIMELINE)
    b = spontaneous(np.random.default_rng(3), 100, TIMELINE, style=SS.DEFAULT_STYLE)
    assert all(np.array_equal(a[k], b[k]) for k in ("exp_extra", "pose", "illu"))


def test_styled_expression_is_speech_plus_style_plus_blinks():
    speech = np.zeros((100, 79), np.float32)
    speech[:, 0] = np.linspace(0, 0.6, 100)                       # a jaw that opens
    st = SS.draw_style(np.random.default_rng(1))
    out = SS.styled_expression(speech, TIMELINE, st, np.random.default_rng(0))
    blinks = out["exp"][:, list(SS.BLINK_COLUMNS)]
    rebuilt = speech + out["style"]
    rebuilt[:, list(SS.BLINK_COLUMNS)] += blinks
    rebuilt[:, :12] = np.clip(rebuilt[:, :12], 0, 1)
    np.testing.assert_allclose(out["exp"], rebuilt, atol=1e-6)
    assert np.all(out["style"][:, list(SS.BLINK_COLUMNS)] == 0)
    # the style's offsets are there: the unnamed columns sit around the style's own values
    off = np.asarray(st.unnamed)
    assert np.corrcoef(out["style"][:, 12:].mean(0), off)[0, 1] > 0.8


def _toy(n_clips=6, n_styles=4, T=80, seed=0):
    """f_aud: smooth random curves; clip i in style s = f_aud[i] + the style's offset o_s."""
    rng = np.random.default_rng(seed)
    k = np.exp(-0.5 * (np.arange(-6, 7) / 3.0) ** 2)
    f_aud = [np.stack([np.convolve(rng.normal(size=T + 12), k / k.sum(), "valid") for _ in range(79)], 1)
             .astype(np.float32) for _ in range(n_clips)]
    offsets = 0.5 * rng.normal(size=(n_styles, 79)).astype(np.float32)
    return f_aud, offsets, [[f + o for f in f_aud] for o in offsets]


def test_stylenet_takes_the_style_from_the_reference_and_the_motion_from_the_audio():
    f_aud, offsets, exp = _toy()
    torch.manual_seed(0)
    model = ST.Disentangler(ST.StyleConfig(width=32))
    h = ST.train_disentangler(model, ST.StyledSet(f_aud, exp), 500, batch=16, seed=0, progress=False)
    assert np.mean([r["l_exp"] for r in h[-20:]]) < 0.2 * np.mean([r["l_exp"] for r in h[:5]])
    for s in range(len(offsets)):                     # clip 0 spoken with a reference of clip 1 in style s
        gen, f_style = ST.fuse(model, f_aud[0], exp[s][1])
        got = (gen - f_aud[0]).mean(0)
        assert int(np.argmin(np.linalg.norm(offsets - got, axis=1))) == s
        motion = np.mean([np.corrcoef(gen[:, c], f_aud[0][:, c])[0, 1] for c in range(79)])
        assert motion > 0.5, motion      # the motion is the audio's (0.82-0.84 on seeds 0-3)


def test_training_resumes_exactly_after_a_kill(tmp_path):
    f_aud, _, exp = _toy(n_clips=3, n_styles=2)
    data = ST.StyledSet(f_aud, exp)
    cfg = ST.StyleConfig(width=8)
    torch.manual_seed(1)
    whole = ST.Disentangler(cfg)
    ST.train_disentangler(whole, data, 30, batch=4, seed=2, progress=False)
    calls, real = [0], ST.l_exp

    def dies(*a):
        calls[0] += 1
        if calls[0] > 17:
            raise KeyboardInterrupt
        return real(*a)

    ck = tmp_path / "sf.pt"
    torch.manual_seed(1)
    cut = ST.Disentangler(cfg)
    ST.l_exp = dies
    try:
        with pytest.raises(KeyboardInterrupt):
            ST.train_disentangler(cut, data, 30, batch=4, seed=2, ckpt=ck, ckpt_every=10, progress=False)
    finally:
        ST.l_exp = real
    torch.manual_seed(99)
    again = ST.Disentangler(cfg)
    h = ST.train_disentangler(again, data, 30, batch=4, seed=2, ckpt=ck, ckpt_every=10, progress=False)
    assert len(h) == 30
    for k, v in whole.state_dict().items():
        torch.testing.assert_close(again.state_dict()[k], v)
    ST.save_disentangler(again, tmp_path / "m.pt")
    back = ST.load_disentangler(tmp_path / "m.pt")
    np.testing.assert_allclose(ST.fuse(back, f_aud[0], exp[0][1])[0], ST.fuse(again, f_aud[0], exp[0][1])[0])


def test_bad_input_is_one_line():
    model = ST.Disentangler(ST.StyleConfig(width=8))
    with pytest.raises(UserError, match="at least 50"):
        ST.fuse(model, np.zeros((30, 79)), np.zeros((20, 79)))
    with pytest.raises(UserError, match="79-d expression per frame"):
        ST.check_reference(np.zeros((60, 12)))
    with pytest.raises(UserError, match="shorter than"):
        ST.train_disentangler(model, ST.StyledSet([np.zeros((30, 79))] * 2, [[np.zeros((30, 79))] * 2]), 5,
                              progress=False)
    with pytest.raises(UserError, match="odd"):
        ST.Disentangler(ST.StyleConfig(window=4))
