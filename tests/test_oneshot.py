"""S3D-NeRF (talklib.oneshot): shapes and equations of each part, the trainer's exact resume, the checkpoint,
the single shot from a photo, and ``render --source-image``'s one-line errors."""

import re
from dataclasses import replace

import numpy as np
import pytest
import torch

from talklib.errors import UserError
from talklib.oneshot import data as OD
from talklib.oneshot import train as OT
from talklib.oneshot.attention import CrossAttention, SlotAttention, aggregate_levels, heat_map
from talklib.oneshot.deform import Deform, deform_condition_dim
from talklib.oneshot.discriminator import Discriminator, r1_penalty
from talklib.oneshot.encoder import AppearanceEncoder, sample_planes, source_coordinates
from talklib.oneshot.model import S3DConfig, S3DNeRF, expand_identity
from talklib.sync.model import SyncConfig, SyncNet

TINY = S3DConfig(size=32, sr_factor=2, samples=4, window=8, plane_channels=4, enc_widths=(8, 8, 8, 8),
                 slot_size=4, slot_dim=8, slot_iters=2, mel_steps=8, audio_dim=8, cm_dim=8, heads=2,
                 deform_widths=(8, 4), hidden=8, feat_dim=4, sr_width=8)
FOCAL = 32 / (2 * np.tan(np.radians(11.0)))


def _camera(n, dist=0.6):
    c2w = torch.eye(4).expand(n, 4, 4).clone()
    c2w[:, 2, 3] = dist
    return c2w


def _faceset(name, n=12, size=32, seed=0):
    g = torch.Generator().manual_seed(seed)
    inner = torch.zeros(n, 1, size, size, dtype=torch.uint8)
    inner[:, :, 8:26, 9:23] = 255
    lm = np.random.default_rng(seed).uniform(10, 22, (n, 478, 2)).astype(np.float32)
    return OD.FaceSet(name, torch.randint(0, 256, (n, 3, size, size), dtype=torch.uint8, generator=g), inner,
                      _camera(n), np.random.default_rng(seed).random((2 * n, 80)).astype(np.float32), lm, FOCAL,
                      np.zeros(n * 640, np.float32))


def test_encoder_builds_four_triplane_levels_from_one_image():
    enc = AppearanceEncoder((8, 8, 8, 8), channels=4)
    planes = enc(torch.rand(2, 4, 32, 32))
    assert [tuple(p.shape) for p in planes] == [(2, 3, 4, 16, 16), (2, 3, 4, 8, 8), (2, 3, 4, 4, 4), (2, 3, 4, 2, 2)]
    feat = sample_planes(planes, torch.zeros(2, 5, 2), torch.zeros(2, 5, 3))
    assert feat.shape == (2, 5, 16)


def test_eq2_projects_points_as_the_pinhole_camera_does():
    from talklib.face3d.camera import project

    from talklib.nerf.rays import rotation

    rng = np.random.default_rng(0)
    c2w = torch.eye(4, dtype=torch.float64)
    c2w[:3, :3] = rotation(12.0, -5.0, torch.float64)
    c2w[:3, 3] = c2w[:3, :3] @ torch.tensor([0.0, 0.0, 0.6], dtype=torch.float64)
    x = torch.as_tensor(rng.uniform(-0.08, 0.08, (1, 50, 3)))
    uv, q = source_coordinates(x.float(), torch.linalg.inv(c2w).float()[None], 100.0, 32.0, 32.0, 64,
                               torch.zeros(3), 0.125)
    pix, _ = project(x, c2w[None], 100.0, 32.0, 32.0)
    np.testing.assert_allclose((uv[0].numpy() + 1) / 2 * 64, pix[0].numpy(), atol=1e-3)
    assert q.abs().max() < 1.5


def test_slot_attention_competes_over_slots_and_is_deterministic_in_eval():
    sa = SlotAttention(n_slots=6, dim=8, in_dim=5, iters=2)
    x = torch.rand(2, 10, 5)
    slots, attn = sa(x)
    assert slots.shape == (2, 6, 8) and attn.shape == (2, 6, 10)
    torch.testing.assert_close(attn.sum(1), torch.ones(2, 10), atol=1e-5, rtol=0)     # softmax over the slots
    sa.eval()
    torch.testing.assert_close(sa(x)[0], sa(x)[0], rtol=0, atol=0)


def test_cross_attention_is_eq3_with_visual_queries():
    ca = CrossAttention(q_dim=8, a_dim=6, dim=8, heads=2)
    f_cm, attn = ca(torch.rand(3, 16, 8), torch.rand(3, 5, 6))
    assert f_cm.shape == (3, 16, 8) and attn.shape == (3, 2, 16, 5)
    torch.testing.assert_close(attn.sum(-1), torch.ones(3, 2, 16), atol=1e-5, rtol=0)
    assert heat_map(f_cm, 4).shape == (3, 4, 4)
    assert aggregate_levels([torch.rand(3, 3, 2, 8, 8), torch.rand(3, 3, 2, 2, 2)], 4).shape == (3, 16, 12)


def test_deform_starts_at_zero_and_the_variants_see_what_table3_says():
    d = Deform(cond_dim=5, widths=(8, 4))
    assert torch.all(d(torch.rand(2, 7, 3), torch.rand(2, 7, 5)) == 0)
    assert [deform_condition_dim(v, 3, 4, 5) for v in ("full", "nd", "fcd", "none")] == [7, 3, 8, 0]
    with pytest.raises(ValueError, match="unknown S3D-NeRF variant"):
        deform_condition_dim("big", 1, 1, 1)


@pytest.mark.parametrize("variant", ["full", "nd", "fcd", "none"])
def test_model_renders_the_inner_face_coarse_and_the_frame_fine(variant):
    torch.manual_seed(0)
    m = S3DNeRF(replace(TINY, variant=variant))
    src = torch.rand(2, 3, 32, 32)
    out = m(src, torch.ones(2, 1, 32, 32), _camera(2), FOCAL, torch.rand(2, 8, 80), _camera(2))
    assert out["coarse"].shape == (2, 4, 16, 16) and out["acc"].shape == (2, 1, 16, 16)
    assert out["fine"].shape == (2, 3, 32, 32) and out["heat"].shape == (2, 4, 4)
    (r, c), = m.face_window(_camera(1), FOCAL).tolist()
    assert 0 <= r <= 8 and 3 <= c <= 5                       # the square around the face, near the middle
    outside = torch.ones(16, 16, dtype=torch.bool)
    outside[r:r + 8, c:c + 8] = False
    assert torch.all(out["coarse"][:, :, outside] == 0) and torch.all(out["acc"][:, :, outside] == 0)
    base = m.superres.base(out["coarse"], out["acc"], src)
    torch.testing.assert_close(out["fine"], base)          # an untrained super-resolution is the composite
    one = expand_identity(m.encode(src[:1], torch.ones(1, 1, 32, 32), _camera(1), FOCAL), 3)
    assert one["planes"][0].shape[0] == 3


def test_config_refuses_sizes_the_encoder_cannot_halve():
    with pytest.raises(ValueError, match="multiple of"):
        replace(TINY, size=40).check()
    with pytest.raises(ValueError, match="larger than the coarse image"):
        replace(TINY, window=20).check()


def test_discriminator_and_r1():
    d = Discriminator(32, width=8)
    x = torch.rand(3, 3, 32, 32)                        # an odd batch for the minibatch-stddev groups
    assert d(x).shape == (3,)
    r1 = r1_penalty(d, x, 1.0)
    assert torch.isfinite(r1) and r1 > 0


def test_discriminator_skip_is_a_stride_2_1x1_conv():
    from talklib.oneshot.discriminator import _ResBlock

    block = _ResBlock(4, 8)
    x = torch.randn(2, 4, 16, 16)
    want = torch.nn.functional.conv2d(x, block.skip.weight, stride=2)
    assert torch.allclose(block.skip(x[:, :, ::2, ::2]), want, atol=1e-6)


def test_discriminator_backward_on_channels_last_input():
    """The S3D-NeRF training step's shapes (batch 5, 32², width 8) on channels-last images: torch 2.13's oneDNN
    strided 1x1 conv backward corrupted the heap on an AVX-512 AMD EPYC (the process aborted); in a child
    process, so that a crash fails this test and not the whole run."""
    import subprocess
    import sys

    code = ("import torch\n"
            "from talklib.oneshot.discriminator import Discriminator, r1_penalty\n"
            "torch.manual_seed(0)\n"
            "d = Discriminator(32, width=8)\n"
            "for _ in range(20):\n"
            "    x = torch.rand(5, 32, 32, 3).permute(0, 3, 1, 2).requires_grad_(True)\n"
            "    (d(x).sum() + r1_penalty(d, x, 1.0)).backward()\n")
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr[-2000:]


def test_mouth_crops_match_the_sync_packages_crops():
    from talklib.sync.crops import crop_boxes

    img = np.random.default_rng(0).integers(0, 256, (2, 64, 64, 3)).astype(np.uint8)
    img = np.ascontiguousarray(np.repeat(np.repeat(img[:, ::8, ::8], 8, 1), 8, 2))        # smooth enough to compare
    boxes = np.array([[32.0, 40.0, 24.0, 14.4], [30.0, 36.0, 20.0, 12.0]])
    ref = crop_boxes(img, boxes, 12, 20).astype(np.float32) / 255
    ours = OD.crop_mouths(torch.from_numpy(img).permute(0, 3, 1, 2).float() / 255, torch.tensor(boxes).float(), 12, 20)
    assert np.abs(ours.permute(0, 2, 3, 1).numpy() - ref).mean() < 0.08


def test_mel_windows_are_centred_on_the_frame():
    mel = np.arange(40, dtype=np.float32)[:, None].repeat(80, 1)
    w = OD.mel_windows(mel, [0, 5, 19], 8)
    assert w.shape == (3, 8, 80)
    assert w[1, :, 0].tolist() == list(range(7, 15)) and w[0, 0, 0] == 0 and w[2, -1, 0] == 39


def test_sample_batch_pairs_two_moments_of_one_person_and_sync_windows_are_consecutive():
    sets = [_faceset("a", seed=1), _faceset("b", seed=2)]
    b = OD.sample_batch(sets, 4, np.random.default_rng(0), 8)
    assert b["source"].shape == (4, 3, 32, 32) and b["mel"].shape == (4, 8, 80) and b["target_c2w"].shape == (4, 4, 4)
    s = OD.sample_batch(sets, 4, np.random.default_rng(1), 8, sync_frames=5)
    assert s["target"].shape[0] == 5 and 0 <= s["start"] <= 7 and s["set"] in (0, 1)
    fs = sets[s["set"]]
    torch.testing.assert_close(s["target"], fs.frames[s["start"]:s["start"] + 5].float() / 255)


def test_perceptual_loss_is_zero_for_the_same_images():
    from talklib.codebook.au import AUEncoder, AUEncoderConfig

    per = OT.PerceptualLoss(AUEncoder(AUEncoderConfig(image_size=32, width=4)))
    x = torch.rand(2, 3, 32, 32)
    assert per(x, x) == 0 and per(x, torch.rand(2, 3, 32, 32)) > 0


def _train(model, sets, steps=6, ckpt=None, **kw):
    from talklib.codebook.au import AUEncoder, AUEncoderConfig

    with torch.random.fork_rng():                       # the frozen networks: the same in every call
        torch.manual_seed(7)
        expert = SyncNet(SyncConfig(crop_h=8, crop_w=12, width=4, dim=8)).eval()
        per = OT.PerceptualLoss(AUEncoder(AUEncoderConfig(image_size=32, width=4)))
    cfg = OT.TrainConfig(steps=steps, batch=2, adv_from=0.3, sync_every=2, r1_every=2, disc_width=8, ckpt_every=2,
                         **kw)
    return OT.train_s3d(model, sets, cfg, per, expert, ckpt=ckpt, progress=False)


def test_training_takes_every_loss_of_eq9():
    torch.manual_seed(0)
    h = _train(S3DNeRF(TINY), [_faceset("a", seed=1), _faceset("b", seed=2)])
    assert len(h) == 6 and {"pix", "per", "deform", "sync"} <= set(h[0]) and {"adv", "disc"} <= set(h[-1])
    assert all(np.isfinite(x["total"]) for x in h)


def test_killed_training_resumes_to_the_uninterrupted_result(tmp_path, monkeypatch):
    sets = [_faceset("a", seed=1), _faceset("b", seed=2)]
    torch.manual_seed(1)
    whole = S3DNeRF(TINY)
    h = _train(whole, sets)
    ck = tmp_path / "s3d.train.pt"
    torch.manual_seed(1)
    cut = S3DNeRF(TINY)
    calls, real = [0], OD.sample_batch

    def dies(*a, **k):
        calls[0] += 1
        if calls[0] > 3:
            raise KeyboardInterrupt
        return real(*a, **k)

    with monkeypatch.context() as m:
        m.setattr(OT, "sample_batch", dies)
        with pytest.raises(KeyboardInterrupt):
            _train(cut, sets, ckpt=ck)
    torch.manual_seed(99)               # other weights: everything must come from the file
    again = S3DNeRF(TINY)
    assert _train(again, sets, ckpt=ck) == h
    for k, v in whole.state_dict().items():
        torch.testing.assert_close(again.state_dict()[k], v, rtol=0, atol=0)
    with pytest.raises(UserError, match="other settings"):
        _train(S3DNeRF(TINY), sets, ckpt=ck, lr=0.1)


def test_checkpoint_round_trip_and_foreign_files(tmp_path):
    from talklib.sync.model import save_sync

    m = S3DNeRF(TINY).eval()
    path = OT.save_s3d(m, tmp_path / "s3d_nerf.pt", {"eye_x": 0.5, "eye_y": 0.45, "iod": 0.3})
    m2, framing = OT.load_s3d(path)
    assert m2.cfg == m.cfg and framing["iod"] == 0.3 and not m2.training
    for k, v in m.state_dict().items():
        torch.testing.assert_close(m2.state_dict()[k], v, rtol=0, atol=0)
    save_sync(SyncNet(), tmp_path / "sync.pt")
    with pytest.raises(UserError, match="not S3D-NeRF's"):
        OT.load_s3d(tmp_path / "sync.pt")


def _photo(yaw=0.0, size=256):
    """A photo of the synthetic head (256 px: mediapipe needs a face of about 100 px)."""
    from talklib.face3d.camera import focal_for, orbit_camera
    from talklib.face3d.model import MorphableModel, default_illumination
    from talklib.face3d.render import render
    from talklib.speaker.clip import CAMERA_DISTANCE_M, FOV_DEG

    t = MorphableModel.from_asset().tensors()
    pose = torch.tensor([[yaw, 0.0, 0.0, 0.0, 0.0, 0.0]])
    c2w = torch.as_tensor(orbit_camera(0.0, 0.0, CAMERA_DISTANCE_M), dtype=torch.float32)[None]
    out = render(t, torch.zeros(1, 100), torch.zeros(1, 79), torch.zeros(1, 100),
                 torch.as_tensor(default_illumination(), dtype=torch.float32)[None], pose, c2w,
                 focal_for(size, FOV_DEG), size / 2, size / 2, size, size, torch.full((size, size, 3), 0.4))
    return (out["rgb"][0].numpy() * 255 + 0.5).astype(np.uint8)


def test_a_photo_becomes_a_single_shot_and_talks():
    from talklib.oneshot import drive as DR

    shot = DR.frame_photo(_photo(), {"eye_x": 0.5, "eye_y": 0.45, "iod": 0.3}, 32)
    assert shot["image"].shape == (32, 32, 3) and shot["mask"].shape == (32, 32) and shot["mask"].any()
    assert abs(shot["yaw"]) < 5 and shot["c2w"].shape == (4, 4)
    m = S3DNeRF(TINY).eval()
    frames = np.concatenate(list(DR.talk(m, DR.encode_shot(m, shot), np.zeros(16000, np.float32),
                                         torch.as_tensor(shot["c2w"]), batch=10)))
    assert frames.shape == (25, 32, 32, 3) and frames.dtype == np.uint8


def test_photo_errors_are_one_line():
    from talklib.oneshot import drive as DR

    with pytest.raises(UserError, match="no face found"):
        DR.frame_photo(np.full((256, 256, 3), 128, np.uint8), {"eye_x": 0.5, "eye_y": 0.45, "iod": 0.3}, 32)
    with pytest.raises(UserError, match="far from frontal"):
        DR.frame_photo(_photo(yaw=40.0), {"eye_x": 0.5, "eye_y": 0.45, "iod": 0.3}, 32)


def test_render_source_image_command(tmp_path, capsys):
    from PIL import Image

    from talklib.audio.io import save_wav
    from talklib.cli import main

    ck = OT.save_s3d(S3DNeRF(TINY), tmp_path / "s3d_nerf.pt", {"eye_x": 0.5, "eye_y": 0.45, "iod": 0.3})
    Image.fromarray(_photo()).save(tmp_path / "me.png")
    save_wav(tmp_path / "a.wav", np.zeros(8000, np.float32))
    base = ["render", "--checkpoint", str(tmp_path), "--audio", str(tmp_path / "a.wav")]
    assert main(base + ["--source-image", str(tmp_path / "me.png"), "--out", str(tmp_path / "t.mp4")]) == 0
    assert (tmp_path / "t.mp4").is_file() and "single shot" in capsys.readouterr().out
    bad = {"--source-image " + str(tmp_path / "none.png"): "no photo at",
           "--source-image " + str(tmp_path / "a.wav"): "not an image",
           f"--source-image {tmp_path / 'me.png'} --motion {ck}": "--motion work with a per-speaker NeRF",
           "": "S3D-NeRF \\(single-shot\\) checkpoint"}
    for extra, msg in bad.items():
        capsys.readouterr()
        assert main(base + extra.split() + ["--out", str(tmp_path / "x.mp4")]) == 2
        err = capsys.readouterr().err.strip()
        assert len(err.splitlines()) == 1 and re.search(msg, err), (extra, err)
