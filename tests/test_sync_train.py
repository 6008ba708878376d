"""A short training run on toy clips (mouth opening follows the audio envelope) recovers known offsets."""

import numpy as np
import torch

from talklib.sync.crops import clip_mel
from talklib.sync.model import SyncConfig
from talklib.sync.train import SyncClip, crop_margins, score_clip, shift_audio, train_sync


def _toy(rng, cfg, n=120):
    env = np.clip(np.convolve(rng.random(n) * (rng.random(n) < 0.5), np.ones(3) / 3, "same"), 0, 1)
    t = np.arange(n * 640) / 16000
    e = np.repeat(env, 640)
    audio = (e * np.sin(2 * np.pi * rng.uniform(100, 250) * t) * 0.5
             + e * 0.2 * rng.standard_normal(len(t))).astype(np.float32)
    mh, mw = crop_margins(cfg)
    H, W = cfg.crop_h + 2 * mh, cfg.crop_w + 2 * mw
    yy, xx = np.mgrid[0:H, 0:W]
    crops = np.empty((n, H, W, 3), np.uint8)
    crops[:] = (200, 150, 130)
    for i in range(n):
        inside = ((xx - W / 2) / (0.3 * W)) ** 2 + ((yy - H / 2) / (1 + 0.3 * H * env[i])) ** 2 < 1
        crops[i][inside] = (60, 20, 20)
    return crops, audio


def test_training_recovers_offsets():
    torch.set_num_threads(1)
    cfg = SyncConfig()
    rng = np.random.default_rng(0)
    train = [SyncClip(c, clip_mel(a, len(c))) for c, a in (_toy(rng, cfg) for _ in range(4))]
    model, hist = train_sync(train, cfg, steps=80, batch=32, progress=False)
    assert np.mean(hist["total"][-10:]) < np.mean(hist["total"][:10])
    crops, audio = _toy(rng, cfg)
    synced = score_clip(model, SyncClip(crops, clip_mel(audio, len(crops))))
    assert synced.offset == 0
    for d in (-7, 4):
        s = score_clip(model, SyncClip(crops, clip_mel(shift_audio(audio, d), len(crops))))
        assert s.offset == -d


def test_relight_pairs_and_range():
    from talklib.sync.train import relight

    rng = np.random.default_rng(0)
    v = rng.random((6, 5, 3, 24, 40)).astype(np.float32)
    assert relight((v,), rng, 0.0)[0] is v
    a, b = relight((v, v.copy()), np.random.default_rng(1), 1.0)
    assert a.shape == v.shape and a.dtype == np.float32 and a.min() >= 0 and a.max() <= 1
    np.testing.assert_array_equal(a, b)  # a window and its partner are lit alike
    assert np.abs(a - v).mean() > 0.02  # ... and differently from the original


def test_input_norm_ignores_exposure_and_old_checkpoints_keep_raw_input(tmp_path):
    from talklib.sync.model import SyncNet, load_sync, save_sync

    torch.manual_seed(0)
    model = SyncNet(SyncConfig(dim=16)).eval()
    crops = torch.rand(4, 5, 3, 24, 40) * 0.6 + 0.2
    e = model.mouth(crops)
    torch.testing.assert_close(model.mouth(crops * 0.5 + 0.1), e, rtol=0.05, atol=0.05 * float(e.abs().max()))
    raw = SyncNet(SyncConfig(dim=16, input_norm=False)).eval()
    assert not torch.allclose(raw.mouth(crops * 0.5 + 0.1), raw.mouth(crops))
    # a checkpoint written before input_norm existed loads as input_norm=False
    path = save_sync(raw, tmp_path / "old.pt")
    blob = torch.load(path, weights_only=True)
    del blob["config"]["input_norm"]
    torch.save(blob, path)
    assert load_sync(path).cfg.input_norm is False


def test_expert_material_split_and_extra_renders(featured_corpus):
    """Notebook 04's split: rendered test clips and every test_every-th speech-only clip held out; with
    renders=2 each training speech-only clip comes twice, the same audio under another stretch of light."""
    from talklib.sync.corpus import expert_material

    cfg = SyncConfig(width=4, dim=8)
    train, test = expert_material(featured_corpus, cfg, test_every=0)
    train2, test2 = expert_material(featured_corpus, cfg, test_every=0, renders=2)
    assert [it.name for it in test] == [it.name for it in test2] == [c.name for c in featured_corpus.clips()
                                                                       if c.split != "train"]
    speech = [s.name for s in featured_corpus.speech()]
    rendered = [it.name for it in train[:len(train) - len(speech)]]
    assert [it.name for it in train2] == rendered + [x for n in speech for x in (n, f"{n}@1")]
    a, b = train2[-2], train2[-1]
    assert np.array_equal(a.data.mel, b.data.mel) and a.data.crops.shape == b.data.crops.shape
    assert not np.array_equal(a.data.crops, b.data.crops)
    assert all(len(it.exp) == it.data.n_frames for it in train2 + test2)


def test_expert_material_cache_gives_the_same_items_and_only_for_the_same_settings(featured_corpus, tmp_path,
                                                                                  monkeypatch):
    """Notebook 06 reads notebook 04's material from the run's cache: the very same arrays; other settings
    (another crop, another renders count) are computed afresh and replace the file, never read from it."""
    from talklib.sync.corpus import expert_material

    cfg, cache = SyncConfig(width=4, dim=8), tmp_path / "cache" / "material.pt"
    fresh = expert_material(featured_corpus, cfg, test_every=0, renders=2)
    first = expert_material(featured_corpus, cfg, test_every=0, renders=2, cache=cache)
    with monkeypatch.context() as m:       # the expert's width and size play no part: read, not rendered again
        m.setattr("talklib.sync.corpus._material", lambda *a: (_ for _ in ()).throw(AssertionError("rendered again")))
        again = expert_material(featured_corpus, SyncConfig(width=8, dim=16), test_every=0, renders=2, cache=cache)
    for items in (first, again):
        for x, y in zip(fresh[0] + fresh[1], items[0] + items[1], strict=True):
            assert x.name == y.name
            for u, v in ((x.data.crops, y.data.crops), (x.data.mel, y.data.mel), (x.exp, y.exp), (x.audio, y.audio)):
                assert u.dtype == v.dtype and np.array_equal(u, v)
    other = expert_material(featured_corpus, SyncConfig(crop_h=16, crop_w=32), test_every=0, cache=cache)
    assert other[0][0].data.crops.shape[1:3] != fresh[0][0].data.crops.shape[1:3]
    assert len(other[0]) < len(fresh[0])          # renders=1 now: the cached renders=2 material was not read
    assert expert_material(featured_corpus, SyncConfig(crop_h=16, crop_w=32), test_every=0, cache=cache)[0][0].name \
        == other[0][0].name
