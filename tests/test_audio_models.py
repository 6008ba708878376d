"""SpeechSplit, the phoneme recogniser, contrastive sync and probes on small known problems."""

import numpy as np
import pytest
import torch

from talklib.audio import contrastive as CT
from talklib.audio import probes as P
from talklib.audio import recognizer as AR
from talklib.audio import speechsplit as SS



@pytest.fixture(autouse=True)
def _one_thread():
    """Tiny recurrent nets: one thread is faster than two (and than a busy machine's share of two)."""
    n = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(n)


TINY = SS.SpeechSplitConfig(conv_content=16, conv_pitch=16, conv_rhythm=8, dec_dim=16, dec_layers=1, n_speakers=2)


def test_random_resample_index_segments():
    g = torch.Generator().manual_seed(0)
    pos = SS.random_resample_index(200, g)
    assert pos.shape == (200,) and pos.min() >= 0 and pos.max() <= 199
    steps = torch.diff(pos)
    assert steps.min() >= 0  # monotone: time is stretched, never reversed
    inner = steps[(steps > 0) & (pos[1:] < 199)]
    assert inner.min() >= 0.5 - 1e-5 and inner.max() < 1.5 + 1e-5 and inner.std() > 0.05
    x = torch.arange(10.0)[None, None]
    assert torch.allclose(SS.resample_time(x, torch.tensor([[0.0, 2.5, 9.0]]))[0, 0], torch.tensor([0.0, 2.5, 9.0]))


def test_random_resample_segments_are_19_to_31_frames():
    """SpeechSplit's InterpLnr draws segment lengths with randint(19, 32): 19..31 frames, each one factor."""
    g = torch.Generator().manual_seed(0)  # (a seed where no two neighbours draw near-equal factors)
    lengths = []
    for _ in range(20):
        pos = SS.random_resample_index(400, g)
        steps = torch.diff(pos)[pos[1:] < 399]  # the clamped tail is not a segment
        change = torch.nonzero(torch.abs(torch.diff(steps)) > 1e-4).flatten()
        lengths += torch.diff(change).tolist()  # whole segments between two factor changes
    assert min(lengths) >= 19 and max(lengths) <= 31 and {19, 31} <= set(lengths)


def test_speechsplit_shapes_bottleneck_and_train_step():
    torch.manual_seed(0)
    m = SS.SpeechSplit(TINY)
    mel, f0 = torch.rand(2, 50, 80), torch.zeros(2, 50, 257)
    f0[..., 0] = 1
    m.eval()
    a_c, a_r, a_p = m.encode(mel, f0)
    assert a_c.shape == (2, 50, 16) and a_r.shape == (2, 50, 2) and a_p.shape == (2, 50, 64)
    # downsampled by 8: constant within each block of 8 frames
    assert torch.equal(a_c[:, 0], a_c[:, 7]) and torch.equal(a_r[:, 8], a_r[:, 15])
    low = m.encode(mel, f0, upsample=False)
    assert low[0].shape == (2, 7, 16)
    assert m.decode(a_c, a_r, a_p, torch.eye(2)).shape == (2, 50, 80)
    # eval mode is deterministic (no resampling); train mode resamples the content path
    assert torch.equal(m.encode(mel, f0)[0], a_c)
    m.train()
    assert not torch.equal(m.encode(mel, f0, torch.Generator().manual_seed(1))[0], a_c)
    assert torch.equal(m.encode(mel, f0, torch.Generator().manual_seed(1))[1], a_r)  # rhythm sees the original


def test_speechsplit_learns_and_checkpoint(tmp_path):
    rng = np.random.default_rng(0)
    items = []
    for k in range(4):
        mel = np.clip(0.5 + 0.3 * np.sin(np.arange(100)[:, None] / (5 + k) + np.arange(80)[None] / 9), 0, 1)
        q = np.full(100, 100 + 10 * k)
        items.append({"mel": mel.astype(np.float32), "f0_onehot": np.eye(257, dtype=np.float32)[q],
                      "speaker": np.eye(2, dtype=np.float32)[k % 2]})
    torch.manual_seed(0)
    m = SS.SpeechSplit(TINY)
    losses = SS.train_speechsplit(m, items, steps=40, batch=4, length=64, lr=3e-3, progress=False, lr_final=0.1)
    assert losses[-1] < 0.3 * losses[0]
    with pytest.raises(ValueError, match="lr_final"):
        SS.train_speechsplit(m, items, steps=1, lr_final=0.0, progress=False)
    SS.save_speechsplit(m, tmp_path / "ss.pt")
    m2 = SS.load_speechsplit(tmp_path / "ss.pt")
    c1 = SS.codes_of(m, items[0]["mel"], items[0]["f0_onehot"])
    c2 = SS.codes_of(m2, items[0]["mel"], items[0]["f0_onehot"])
    assert all(np.array_equal(c1[k], c2[k]) for k in c1)
    sw = SS.swap_codes(c1, {k: v[:60] + 1 for k, v in c1.items()}, ("pitch",))
    assert len(sw["content"]) == 60 and np.array_equal(sw["content"], c1["content"][:60])
    assert np.array_equal(sw["pitch"], c1["pitch"][:60] + 1)
    assert SS.reconstruct(m, sw, items[0]["speaker"]).shape == (60, 80)
    assert SS.codes_per_frame(c1, 25)["pitch"].shape == (25, 64)
    rel = SS.code_reliance(m, items[:2])
    assert set(rel) == {"all", "no content", "no rhythm", "no pitch"} and all(np.isfinite(v) for v in rel.values())
    assert rel["all"] <= 1.05 * min(rel.values())  # the trained decoder does best with every code
    with pytest.raises(ValueError):
        SS.swap_codes(c1, c1, ("timbre",))


def test_recognizer_learns_toy_phones():
    """On formant-synthesis toy speech the recogniser beats the majority class by far after a few steps."""
    from talklib.audio import features as F
    from talklib.audio.toy import toy_utterance

    items = []
    for i in range(3):
        u = toy_utterance(2.0, i)
        items.append({"stream": F.mel_stream(u["audio"], u["n_frames"]), "labels": AR.stream_labels(u["phonemes"], u["n_frames"])})
    torch.manual_seed(0)
    rec = AR.PhonemeRecognizer(hidden=32)
    AR.train_recognizer(rec, items[:2], steps=60, batch=4, length=80, lr=5e-3, progress=False)
    acc = AR.frame_accuracy(rec, items[2:])
    majority = P.majority_accuracy(np.concatenate([it["labels"] for it in items[:2]]), items[2]["labels"])
    assert acc > majority + 0.2
    w = AR.posterior_windows(rec, items[2]["stream"])
    assert w.shape == (len(items[2]["labels"]) // 2, 16, 40) and np.allclose(w.sum(-1), 1, atol=1e-5)


def test_contrastive_loss_eq3():
    d_pos, d_neg = torch.tensor([0.9, 0.8]), torch.tensor([0.1, 0.3])
    want = -(np.log(0.9) + np.log(0.8) + np.log(0.9) + np.log(0.7)) / 4
    assert float(CT.contrastive_loss(d_pos, d_neg)) == pytest.approx(want, rel=1e-5)
    a = torch.relu(torch.randn(5, 8))
    assert torch.all((CT.sync_prob(a, a) > 0.99) | (a.sum(1) == 0))


def test_sync_finds_offset_on_a_learnable_problem():
    """Audio windows that encode the mouth value at their centre: the trained pair finds offset 0."""
    rng = np.random.default_rng(0)
    items = []
    for _ in range(4):
        n = 120
        mouth = np.convolve(rng.standard_normal(n + 4), np.ones(3) / 3, "valid")[:n]
        mouth = np.stack([mouth, -mouth, mouth ** 2], 1).astype(np.float32)
        stream = np.repeat(np.tanh(mouth[:, :1]), 2, axis=0) * np.linspace(0.2, 1, 80)[None] + 0.5
        from talklib.audio.features import windows

        items.append(CT.prepare(windows(stream.astype(np.float32)), mouth, mouth_win=3))
    torch.manual_seed(0)
    ae, me = CT.AudioEncoder(width=16, dim=8), CT.MouthEncoder(3, win=3, width=16, dim=8)
    CT.train_sync(ae, me, items[:3], steps=150, batch=32, max_shift=5, lr=3e-3, progress=False)
    r = CT.offset_accuracy(ae, me, items[3:], max_shift=5)
    assert r["curve"].shape == (11,) and r["chance"] == pytest.approx(1 / 11)
    assert r["frame_acc"] > 3 * r["chance"] and int(np.argmax(r["curve"])) == 5


def test_probes_known_answers():
    rng = np.random.default_rng(0)
    y = rng.integers(0, 4, 600)
    informative = np.eye(4)[y] + 0.1 * rng.standard_normal((600, 4))
    noise = rng.standard_normal((600, 3))
    assert P.phoneme_probe(informative[:400], y[:400], informative[400:], y[400:]) > 0.95
    assert P.phoneme_probe(noise[:400], y[:400], noise[400:], y[400:]) < 0.4
    t = rng.standard_normal(600)
    x = np.stack([t, rng.standard_normal(600)], 1)
    assert P.regression_probe(x[:400], 2 * t[:400] + 1, x[400:], 2 * t[400:] + 1) > 0.99
    assert P.regression_probe(noise[:400], t[:400], noise[400:], t[400:]) < 0.05
    assert P.majority_accuracy(np.array([1, 1, 2]), np.array([1, 2])) == 0.5


def test_corpus_helpers_on_toy_utterances(tmp_path):
    """analyse() fills every per-utterance array with one row per frame; features land in a clip folder."""
    import json

    from talklib.audio import corpus as AC

    utts = AC.utterances_from_toy(4, seconds=1.2, seed=0, n_voices=2, test_every=2)
    assert [u.split for u in utts] == ["train", "train", "test", "test"]
    info = AC.analyse(utts, progress=False)
    assert info["voices"] == ["toy_voice0", "toy_voice1"]
    mean0, _ = info["f0_stats"]["toy_voice0"]
    assert abs(np.exp(mean0) - 100.0) < 15.0  # voice 0 speaks around 100 Hz
    for u in utts:
        n = u.n_frames
        assert u.data["feats"]["mel_win"].shape == (n, 16, 80)
        assert u.data["labels"].shape == (n,) and u.data["labels50"].shape == (2 * n,)
        assert u.data["stream"].shape == (2 * n, 80)
        assert u.data["ss"]["f0_onehot"].shape == (len(u.data["ss"]["mel"]), 257)
    assert AC.stable_voiced(np.array([-1, 0.5, 0.5, 0.5, -1, 0.5])).tolist() == [False, False, True, False, False, False]
    u = utts[0]
    u.path = tmp_path
    (tmp_path / "dataset.json").write_text(json.dumps({"files": {}}))
    AC.write_clip_features(u, {"sync": np.zeros((u.n_frames, 4), np.float32)})
    files = json.loads((tmp_path / "dataset.json").read_text())["files"]
    assert files["aud_sync.npy"]["shape"] == [u.n_frames, 4] and "aud_f0q.npy" in files
    tr, te = AC.split(utts)
    table = AC.probe_tables(tr, te, {"mfcc": lambda u: u.data["feats"]["mfcc"]})
    assert table["phone_acc"]["mfcc"] > table["majority"]
