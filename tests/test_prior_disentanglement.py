"""NeRF-3DTalker §II.B pieces: the Lip-wav generator (Eq. 2), the image -> 3DMM regressor, their trainers'
resume after a kill, and their one-line errors."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from talklib.condition import lipwav as LW
from talklib.condition import prior3d as RG
from talklib.errors import UserError
from talklib.sync.model import SyncConfig, SyncNet
from talklib.sync.train import SyncClip, crop_margins

CFG = SyncConfig(width=4, dim=16)


def _toy_clip(n: int, rng: np.random.Generator) -> SyncClip:
    """A clip whose mouth opening (a dark band's height) follows the audio's loudness, frame by frame."""
    mh, mw = crop_margins(CFG)
    H, W = CFG.crop_h + 2 * mh, CFG.crop_w + 2 * mw
    loud = np.clip(np.convolve(rng.random(n), np.ones(3) / 3, mode="same"), 0, 1)
    crops = np.full((n, H, W, 3), 200, np.uint8)
    for t in range(n):
        half = int(1 + 8 * loud[t])
        crops[t, H // 2 - half:H // 2 + half, W // 4:3 * W // 4] = 40
    mel = np.repeat(loud, 2)[:, None] * np.ones((1, 80), np.float32)
    return SyncClip(crops=crops, mel=mel.astype(np.float32))


def test_mel_window_is_centred_on_its_frame():
    mel = np.arange(20, dtype=np.float32)[:, None] * np.ones((1, 80), np.float32)  # 10 frames, step i = i
    w = LW.frame_mel_windows(mel, np.array([0, 4, 9]), 4)
    assert w.shape == (3, 4, 80)
    assert list(w[1, :, 0]) == [7, 8, 9, 10]        # frame 4 covers steps 8, 9: the middle of its window
    assert list(w[0, :, 0]) == [0, 0, 1, 2]         # the stream's first row repeats before it
    assert list(w[2, :, 0]) == [17, 18, 19, 19]


def test_lipwav_learns_the_audio_and_resumes_exactly(tmp_path):
    rng = np.random.default_rng(0)
    clips = [_toy_clip(60, rng) for _ in range(3)]
    torch.manual_seed(0)
    expert = SyncNet(CFG)
    cfg = LW.LipWavConfig(crop_h=CFG.crop_h, crop_w=CFG.crop_w, width=8, audio_dim=16)
    before = {k: v.clone() for k, v in expert.state_dict().items()}

    torch.manual_seed(1)
    full = LW.LipWavGenerator(cfg)
    h = LW.train_lipwav(full, clips, expert, 40, batch=4, lip_weight=0.01, lip_from=0.5, seed=3, progress=False)
    assert all(torch.equal(before[k], v) for k, v in expert.state_dict().items())   # the expert stays frozen
    assert h[-1]["lip"] > 0 and h[0]["lip"] == 0                                      # L_lip joins halfway
    assert np.mean([r["l1"] for r in h[-5:]]) < 0.7 * np.mean([r["l1"] for r in h[:5]])

    torch.manual_seed(1)
    whole = LW.LipWavGenerator(cfg)
    LW.train_lipwav(whole, clips, expert, 40, batch=4, lip_weight=0.01, seed=3, progress=False)
    # killed after step 25 (the last checkpoint is at 20), then run again with the same file: it resumes
    calls, real = [0], LW._batch

    def dies(*a, **k):
        calls[0] += 1
        if calls[0] > 25:
            raise KeyboardInterrupt
        return real(*a, **k)

    ck = tmp_path / "lw.pt"
    torch.manual_seed(1)
    cut = LW.LipWavGenerator(cfg)
    LW._batch = dies
    try:
        with pytest.raises(KeyboardInterrupt):
            LW.train_lipwav(cut, clips, expert, 40, batch=4, lip_weight=0.01, seed=3, ckpt=ck, ckpt_every=10,
                            progress=False)
    finally:
        LW._batch = real
    torch.manual_seed(99)    # another initialisation: every weight must come from the file
    again = LW.LipWavGenerator(cfg)
    h2 = LW.train_lipwav(again, clips, expert, 40, batch=4, lip_weight=0.01, seed=3, ckpt=ck, ckpt_every=10,
                         progress=False)
    assert len(h2) == 40
    for k, v in whole.state_dict().items():
        torch.testing.assert_close(again.state_dict()[k], v)
    part = again

    clip = LW.lipwav_clip(part, clips[0].crops[0, 3:27, 5:45], clips[0].mel, crop_margins(CFG))
    assert clip.crops.shape == clips[0].crops.shape and len(clip.mel) == len(clips[0].mel)


def test_the_pair_shares_its_l1_part_and_ends_where_separate_runs_do(tmp_path):
    """Notebook 06 trains the L1-only part once: with L_lip branched from it, both end as if run apart."""
    rng = np.random.default_rng(0)
    clips = [_toy_clip(40, rng) for _ in range(2)]
    torch.manual_seed(0)
    expert = SyncNet(CFG)
    cfg = LW.LipWavConfig(crop_h=CFG.crop_h, crop_w=CFG.crop_w, width=4, audio_dim=8)

    def run(w, **kw):
        torch.manual_seed(1)
        g = LW.LipWavGenerator(cfg)
        LW.train_lipwav(g, clips, expert, 12, batch=2, lip_weight=w, lip_from=0.5, seed=3, progress=False, **kw)
        return g

    apart = {w: run(w) for w in (0.0, 0.01)}
    l1, lip = tmp_path / "l1.pt", tmp_path / "lip.pt"
    run(0.0, ckpt=l1, stop_at=6)
    shared = {0.01: run(0.01, ckpt=lip, branch=l1), 0.0: run(0.0, ckpt=l1)}
    for w in apart:
        for k, v in apart[w].state_dict().items():
            torch.testing.assert_close(shared[w].state_dict()[k], v)
    with pytest.raises(UserError, match="past the 6 steps"):
        run(0.01, ckpt=tmp_path / "other.pt", branch=l1)          # l1.pt now holds step 12


def test_lipwav_refuses_bad_input(tmp_path):
    gen = LW.LipWavGenerator(LW.LipWavConfig(crop_h=16, crop_w=32, width=4, audio_dim=8))
    with pytest.raises(UserError, match="build LipWavConfig with the expert's crop size"):
        LW.train_lipwav(gen, [], SyncNet(CFG), 1, progress=False)
    with pytest.raises(UserError, match="audio too short"):
        LW.generate(gen, np.zeros((16, 32, 3), np.uint8), np.zeros((1, 80), np.float32), 0)
    (tmp_path / "x.pt").write_bytes(b"not a checkpoint")
    with pytest.raises(UserError, match="Lip-wav generator"):
        LW.load_lipwav(tmp_path / "x.pt")
    with pytest.raises(ValueError, match="multiples of 4"):
        LW.LipWavConfig(crop_h=10).check()
    ck = tmp_path / "ck.pt"
    good = LW.LipWavGenerator(LW.LipWavConfig(crop_h=CFG.crop_h, crop_w=CFG.crop_w, width=4, audio_dim=8))
    clips = [_toy_clip(20, np.random.default_rng(0))]
    LW.train_lipwav(good, clips, SyncNet(CFG), 2, batch=2, ckpt=ck, progress=False)
    with pytest.raises(UserError, match="trained with other settings .*lr"):
        LW.train_lipwav(good, clips, SyncNet(CFG), 2, batch=2, lr=1.0, ckpt=ck, progress=False)
    LW.save_lipwav(good, tmp_path / "g.pt")
    assert isinstance(LW.load_lipwav(tmp_path / "g.pt"), LW.LipWavGenerator)


def test_regressor_reads_what_the_crop_shows_and_resumes(tmp_path):
    rng = np.random.default_rng(0)
    n, h, w = 400, 24, 40
    exp = np.zeros((n, 79), np.float32)
    exp[:, 0] = rng.random(n)                       # shown: the height of a dark band
    exp[:, 8] = rng.random(n)                       # not shown (a "blink")
    crops = np.full((n, h, w, 3), 180, np.uint8)
    for i in range(n):
        half = int(1 + 9 * exp[i, 0])
        crops[i, h // 2 - half:h // 2 + half, 8:32] = 30
    cfg = RG.RegressorConfig(crop_h=h, crop_w=w, width=8)
    torch.manual_seed(0)
    model = RG.ExpRegressor(cfg)
    RG.train_regressor(model, crops[:300], exp[:300], 150, batch=32, progress=False)
    p = RG.predict(model, crops[300:])
    assert np.corrcoef(p[:, 0], exp[300:, 0])[0, 1] > 0.9
    assert abs(p[:, 8].mean() - exp[:300, 8].mean()) < 0.1     # what it cannot see: the training mean

    torch.manual_seed(0)
    a = RG.ExpRegressor(cfg)
    RG.train_regressor(a, crops[:300], exp[:300], 20, batch=32, seed=1, ckpt=tmp_path / "a.pt", ckpt_every=5,
                       progress=False)
    torch.manual_seed(5)
    b = RG.ExpRegressor(cfg)   # another initialisation: every weight must come from the file
    RG.train_regressor(b, crops[:300], exp[:300], 20, batch=32, seed=1, ckpt=tmp_path / "a.pt", progress=False)
    for k, v in a.state_dict().items():
        torch.testing.assert_close(b.state_dict()[k], v)
    with pytest.raises(UserError, match="one row per crop"):
        RG.train_regressor(a, crops[:10], exp[:9], 1, progress=False)
    with pytest.raises(UserError, match="do not fit the regressor"):
        RG.train_regressor(a, crops[:10, :20], exp[:10], 1, progress=False)
    RG.save_regressor(a, tmp_path / "r.pt")
    np.testing.assert_allclose(RG.predict(RG.load_regressor(tmp_path / "r.pt"), crops[:5]), RG.predict(a, crops[:5]),
                               atol=1e-5)


def test_training_renders_decouple_the_mouth_from_the_rest(featured_corpus):
    from talklib.data.dataset import EXP_NAMES
    from talklib.speaker.visemes import MOUTH_COMPONENTS

    clip = featured_corpus.clip(split="train")
    pool = clip.exp()
    crops, exp = RG.training_renders(pool, clip, 12, CFG, np.random.default_rng(0))
    assert crops.shape == (12, CFG.crop_h, CFG.crop_w, 3) and crops.dtype == np.uint8 and exp.shape == (12, 79)
    speech = [EXP_NAMES.index(c) for c in MOUTH_COMPONENTS]
    rest = [k for k in range(79) if k not in speech]
    for row in exp:   # each part is one true frame's, and the two parts come from different frames
        i = np.flatnonzero((pool[:, speech] == row[speech]).all(1))
        j = np.flatnonzero((pool[:, rest] == row[rest]).all(1))
        assert len(i) and len(j)
    with pytest.raises(UserError, match="at least 2"):
        RG.training_renders(pool[:1], clip, 2, CFG, np.random.default_rng(0))
