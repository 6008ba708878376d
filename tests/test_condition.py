"""talklib.condition: names and sizes, packing, AD-NeRF's audio net and attention, features from a wav."""

import numpy as np
import pytest
import torch

from talklib.condition.audionet import AudioAttention, AudioNet, ConditionConfig, Conditioner
from talklib.condition.inputs import audio_window, neighbours, pack
from talklib.condition.spec import CONDITIONS, parse, to_text
from talklib.errors import UserError


def test_parse_puts_3dmm_first_audio_next_and_lighting_last():
    parts = parse("f_illu, a_pitch ,f_exp:12,a_content")
    assert [str(p) for p in parts] == ["f_exp:12", "a_pitch", "a_content", "f_illu"]
    assert to_text(parts) == "f_exp:12,a_pitch,a_content,f_illu"
    assert parse(parts) == parts                       # parts parse to themselves
    assert [p.dim for p in parse("f_exp")] == [79]


@pytest.mark.parametrize("text, needle", [
    ("bogus", "unknown condition 'bogus': choose from f_exp"),
    ("f_illu:3", r"fixed size \(27\)"),
    ("f_exp:0", "from 1 to 79"), ("f_exp:80", "from 1 to 79"), ("f_exp:x", "from 1 to 79"),
    ("mfcc,mfcc", "given twice"), ("", "no conditions given"), (" , ", "no conditions given"),
])
def test_bad_condition_lists_are_one_line_errors(text, needle):
    with pytest.raises(UserError, match=needle) as e:
        parse(text)
    assert "\n" not in str(e.value)


def test_every_valid_name_is_listed_in_the_error():
    with pytest.raises(UserError) as e:
        parse("nope")
    assert all(name in str(e.value) for name in CONDITIONS)


def test_layout_and_sizes():
    cfg = ConditionConfig.from_parts(parse("f_exp:12,a_content,a_rhythm,f_illu"), audio_dim=7, frames=4)
    assert cfg.audio_channels == 18
    assert cfg.raw_layout() == {"f_exp": 12, "audio": 4 * 16 * 18, "f_illu": 27}
    assert cfg.out_dim == 12 + 7 + 27 and cfg.illu_last
    assert ConditionConfig(**cfg.to_dict()).raw_layout() == cfg.raw_layout()


def test_audio_net_reduces_any_window_to_one_code():
    for steps in (16, 8, 1):
        assert AudioNet(5, steps, 9)(torch.randn(3, steps, 5)).shape == (3, 9)


def test_attention_weights_are_a_distribution_over_the_frames():
    att = AudioAttention(6, frames=8)
    codes = torch.randn(4, 8, 6)
    w = att.weights(codes)
    assert w.shape == (4, 8) and torch.allclose(w.sum(-1), torch.ones(4)) and (w >= 0).all()
    same = codes[:, :1].expand(-1, 8, -1)               # identical neighbours: the sum is that code
    assert torch.allclose(att(same), same[:, 0], atol=1e-6)


def test_conditioner_passes_3dmm_parts_and_codes_the_audio():
    cfg = ConditionConfig.from_parts(parse("f_exp:3,mfcc,f_illu"), audio_dim=5, frames=8)
    c = Conditioner(cfg)
    raw = torch.randn(2, c.raw_dim)
    out = c(raw)
    assert out.shape == (2, cfg.out_dim)
    assert torch.equal(out[:, :3], raw[:, :3]) and torch.equal(out[:, -27:], raw[:, -27:])
    three = Conditioner(ConditionConfig.from_parts(parse("f_exp:3,f_illu")))
    assert torch.equal(three(raw[:, :30]), raw[:, :30])        # no audio: the identity


def test_neighbours_repeat_the_edge_frames():
    win = np.arange(5, dtype=np.float32)[:, None, None] * np.ones((1, 16, 2), np.float32)
    nb = neighbours(win, 4).reshape(5, 4, 16, 2)[:, :, 0, 0]
    assert nb[0].tolist() == [0, 0, 0, 1] and nb[2].tolist() == [0, 1, 2, 3] and nb[4].tolist() == [2, 3, 4, 4]


def test_per_frame_codes_become_16_step_windows_centred_on_the_frame():
    parts = parse("a_rhythm")
    ssplit = np.zeros((6, 82), np.float32)
    ssplit[:, 16] = np.arange(6)
    w = audio_window({"ssplit": ssplit}, parts)
    assert w.shape == (6, 16, 2)
    assert w[3, 7, 0] == 3 and w[3, 8, 0] == 3        # the middle steps are the frame's own code


def test_pack_is_the_layout_in_order():
    cfg = ConditionConfig.from_parts(parse("f_exp:2,mfcc,f_illu"), frames=2)
    win = np.random.default_rng(0).normal(size=(4, 16, 13)).astype(np.float32)
    raw = pack(cfg, {"f_exp": np.ones((4, 79)), "f_illu": np.full((4, 27), 2.0)}, win)
    assert raw.shape == (4, 2 + 2 * 16 * 13 + 27)
    assert (raw[:, :2] == 1).all() and (raw[:, -27:] == 2).all()
    assert np.array_equal(raw[1, 2:2 + 16 * 13].reshape(16, 13), win[0])   # frame 1's first neighbour is frame 0


def test_a_wrongly_shaped_feature_file_is_refused():
    with pytest.raises(UserError, match="recompute the features"):
        audio_window({"mfcc_win": np.zeros((4, 16, 12), np.float32)}, parse("mfcc"))


def test_features_from_a_wav_equal_the_clip_folders(featured_corpus):
    from talklib.condition.extract import BUNDLE_NAME, features_from_audio, load_bundle

    c = featured_corpus.clip(split="testA")
    parts = parse("a_content,a_rhythm,a_pitch,deepspeech,f_a,mfcc")
    f = features_from_audio(c.audio(), parts, load_bundle(c.path / BUNDLE_NAME), n_frames=c.n_frames)
    for kind, arr in f.items():
        np.testing.assert_allclose(arr, c.audio_features(kind), atol=1e-5)


def test_audio_shorter_than_one_window_is_refused(featured_corpus):
    from talklib.condition.extract import features_from_audio, make_bundle

    with pytest.raises(UserError, match="needs at least 0.32 s"):
        features_from_audio(np.zeros(1600, np.float32), parse("mfcc"), make_bundle())


def test_feature_networks_missing_or_damaged_are_one_line_errors(tmp_path):
    from talklib.condition.extract import load_bundle, subset

    with pytest.raises(UserError, match="need the feature networks"):
        subset(None, parse("a_content"))
    assert "speechsplit" not in subset(None, parse("mfcc"))       # MFCC needs no network
    bad = tmp_path / "aud_extractors.pt"
    bad.write_bytes(b"not a torch file")
    with pytest.raises(UserError, match="run notebook 02 again"):
        load_bundle(bad)


def test_an_audio_conditioned_nerf_round_trips_through_its_checkpoint(featured_corpus, tmp_path):
    from talklib.nerf.scene import from_clip
    from talklib.nerf.train import load_checkpoint, model_for_scene, model_from_checkpoint, save_checkpoint

    scene = from_clip(featured_corpus.clip(split="train"), size=16, conditions="a_content,f_a,f_illu")
    assert scene.conditions and "audio" in scene.cond_parts
    torch.manual_seed(0)
    m = model_for_scene(scene, n_samples=8, occ_res=8, field=dict(plane_res=[8], hidden=8, cond_code=4)).eval()
    assert m.codes(scene.cond[:3]).shape == (3, m.field.code_dim)
    save_checkpoint(tmp_path / "nerf.pt", m)
    m2 = model_from_checkpoint(load_checkpoint(tmp_path)).eval()
    torch.testing.assert_close(m2.codes(scene.cond[:3]), m.codes(scene.cond[:3]))
