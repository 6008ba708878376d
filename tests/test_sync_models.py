"""The official syncnet_v2 architecture + state-dict loader (on a saved random model), talklib's expert
save/load, and a short training run that recovers known offsets on toy clips."""

import numpy as np
import pytest
import torch

from talklib.errors import UserError
from talklib.sync.model import SyncConfig, SyncNet, load_sync, save_sync
from talklib.sync.syncnet_v2 import SyncNetV2, load_syncnet_v2, psf_mfcc, syncnet_v2_embeddings

# tensor names and shapes of syncnet_python's syncnet_v2.model (a few of each branch)
OFFICIAL = {
    "netcnnaud.0.weight": (64, 1, 3, 3), "netcnnaud.4.weight": (192, 64, 3, 3),
    "netcnnaud.18.weight": (512, 256, 5, 4), "netcnnaud.19.running_var": (512,),
    "netfcaud.0.weight": (512, 512), "netfcaud.3.weight": (1024, 512),
    "netcnnlip.0.weight": (96, 3, 5, 7, 7), "netcnnlip.4.weight": (256, 96, 1, 5, 5),
    "netcnnlip.18.weight": (512, 256, 1, 6, 6), "netfclip.1.running_mean": (512,),
}


def test_syncnet_v2_names_load_and_embed(tmp_path):
    torch.manual_seed(0)
    model = SyncNetV2().eval()
    sd = model.state_dict()
    for k, shape in OFFICIAL.items():
        assert tuple(sd[k].shape) == shape, k
    # the official file predates num_batches_tracked: save without it
    torch.save({k: v for k, v in sd.items() if not k.endswith("num_batches_tracked")}, tmp_path / "syncnet_v2.model")
    loaded = load_syncnet_v2(tmp_path / "syncnet_v2.model")
    rng = np.random.default_rng(0)
    faces = rng.integers(0, 256, (8, 224, 224, 3)).astype(np.uint8)
    pcm = (rng.standard_normal(8 * 640) * 3000).astype(np.int16)
    v1, a1 = syncnet_v2_embeddings(loaded, faces, pcm)
    v0, a0 = syncnet_v2_embeddings(model, faces, pcm)
    assert v1.shape == (3, 1024) and a1.shape == (3, 1024)  # lastframe = 8 - 5 windows
    np.testing.assert_allclose(v1, v0, rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(a1, a0, rtol=1e-5, atol=1e-5)
    assert psf_mfcc(pcm).shape == (1 + int(np.ceil((len(pcm) - 400) / 160)), 13)


def test_syncnet_v2_bad_files(tmp_path):
    with pytest.raises(UserError, match="do not exist"):
        load_syncnet_v2(tmp_path / "none.model")
    torch.save({"netcnnaud.0.weight": torch.zeros(64, 1, 3, 3)}, tmp_path / "part.model")
    with pytest.raises(UserError, match="lack"):
        load_syncnet_v2(tmp_path / "part.model")
    sd = SyncNetV2().state_dict()
    sd["netfcaud.3.weight"] = torch.zeros(10, 512)
    torch.save(sd, tmp_path / "wrong.model")
    with pytest.raises(UserError, match="shape"):
        load_syncnet_v2(tmp_path / "wrong.model")


def test_talklib_expert_save_load(tmp_path):
    model = SyncNet(SyncConfig(dim=32)).eval()
    path = save_sync(model, tmp_path / "m" / "sync.pt")
    loaded = load_sync(path)
    crops, mel = torch.rand(3, 5, 3, 24, 40), torch.rand(3, 10, 80)
    for a, b in zip(model(crops, mel), loaded(crops, mel)):
        torch.testing.assert_close(a, b)
    (tmp_path / "junk.pt").write_bytes(b"junk")
    with pytest.raises(UserError, match="not a readable sync model"):
        load_sync(tmp_path / "junk.pt")
    with pytest.raises(UserError, match="does not exist"):
        load_sync(tmp_path / "none.pt")


def test_mouth_points_are_mediapipe_lips():
    from mediapipe.python.solutions.face_mesh_connections import FACEMESH_LIPS

    from talklib.metrics.landmarks import MOUTH_40 as metric_mouth
    from talklib.sync.crops import MOUTH_40

    lips = {i for edge in FACEMESH_LIPS for i in edge}
    assert set(MOUTH_40) == lips == set(metric_mouth) and len(MOUTH_40) == 40
