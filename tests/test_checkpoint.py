"""talklib.checkpoint: atomic saves, and every kind of bad file refused with one line that names it."""

import pickle
import zipfile

import pytest
import torch

from talklib import checkpoint, outputs
from talklib.errors import UserError


def _blob():
    torch.manual_seed(0)
    return {"config": {"dim": 4, "name": "tiny"}, "state": {"w": torch.randn(64, 32), "n": torch.tensor(3)},
            "step": 7, "history": [{"loss": 0.5}]}


def _refused(path, needle, what="test model", **kw):
    with pytest.raises(UserError) as e:
        checkpoint.load(path, what, **kw)
    msg = str(e.value)
    assert "\n" not in msg and str(path) in msg and what in msg and needle in msg, msg
    return msg


def test_round_trip(tmp_path):
    blob = _blob()
    path = checkpoint.save(tmp_path / "sub" / "m.pt", blob)
    assert path == tmp_path / "sub" / "m.pt"
    back = checkpoint.load(path, "test model", required_keys=("config", "state"))
    assert back["config"] == blob["config"] and back["step"] == 7 and back["history"] == blob["history"]
    assert all(torch.equal(back["state"][k], blob["state"][k]) for k in blob["state"])
    assert [p.name for p in path.parent.iterdir()] == ["m.pt"]   # no temporaries left


def test_a_write_that_fails_midway_leaves_the_old_file_and_no_temporary(tmp_path, monkeypatch):
    path = checkpoint.save(tmp_path / "m.pt", {"old": torch.zeros(3)})
    old = path.read_bytes()

    class Full:   # the disk fills after half the bytes
        def __init__(self, f):
            self.f = f

        def __enter__(self):
            return self

        def __exit__(self, *exc):
            self.f.close()

        def write(self, data):
            self.f.write(data[: len(data) // 2])
            raise OSError(28, "No space left on device")

    real_open = open
    monkeypatch.setattr(outputs, "open", lambda *a, **k: Full(real_open(*a, **k)), raising=False)
    with pytest.raises(OSError, match="No space"):
        checkpoint.save(path, _blob())
    with pytest.raises(OSError, match="No space"):
        checkpoint.save(tmp_path / "new.pt", _blob())
    monkeypatch.undo()
    assert path.read_bytes() == old and sorted(p.name for p in tmp_path.iterdir()) == ["m.pt"]


def test_a_blob_torch_cannot_save_writes_nothing(tmp_path):
    with pytest.raises(Exception):
        checkpoint.save(tmp_path / "m.pt", {"f": lambda: 0})
    with pytest.raises(TypeError, match="dict"):
        checkpoint.save(tmp_path / "m.pt", [torch.zeros(1)])
    assert list(tmp_path.iterdir()) == []


def test_missing_file(tmp_path):
    _refused(tmp_path / "none.pt", "does not exist")
    _refused(tmp_path, "does not exist")   # a folder is not a checkpoint file


def test_truncated_file(tmp_path):
    path = checkpoint.save(tmp_path / "m.pt", _blob())
    data = path.read_bytes()
    for n in (len(data) // 2, len(data) - 10, 0):
        path.write_bytes(data[:n])
        _refused(path, "not a readable")


def test_flipped_bytes_of_the_same_size_are_damaged(tmp_path):
    path = checkpoint.save(tmp_path / "m.pt", _blob())
    data = bytearray(path.read_bytes())
    with zipfile.ZipFile(path) as z:
        info = max(z.infolist(), key=lambda i: i.file_size)   # the weights
        start = info.header_offset + 30 + len(info.filename.encode()) + len(info.extra)
    assert torch.load(path, weights_only=True)   # torch's own reader would not notice
    for i in range(start, start + 64):
        data[i] ^= 0xFF
    path.write_bytes(bytes(data))
    assert len(data) == path.stat().st_size
    assert "checksum mismatch" in _refused(path, "is damaged")


def test_non_finite_tensors_are_damaged(tmp_path):
    for bad in (float("nan"), float("inf")):
        blob = _blob()
        blob["history"] = [{"loss": 0.5, "grad": torch.tensor([1.0, bad])}]
        path = checkpoint.save(tmp_path / "m.pt", blob)
        assert "NaN or inf in history.0.grad" in _refused(path, "is damaged")


@pytest.mark.filterwarnings("ignore:Detected pickle protocol")   # torch's note on the plain pickle
def test_foreign_files(tmp_path):
    (tmp_path / "text.pt").write_text("hello, I am a text file\n")
    _refused(tmp_path / "text.pt", "not a readable")
    (tmp_path / "pickle.pt").write_bytes(pickle.dumps({"a": 1}))
    _refused(tmp_path / "pickle.pt", "not a readable")
    torch.save(zipfile.ZipInfo("x"), tmp_path / "object.pt")   # a pickle that weights_only will not run
    _refused(tmp_path / "object.pt", "not a readable")
    with zipfile.ZipFile(tmp_path / "zip.pt", "w") as z:
        z.writestr("readme.txt", "not torch")
    _refused(tmp_path / "zip.pt", "not a readable")
    torch.save([torch.zeros(2)], tmp_path / "list.pt")
    _refused(tmp_path / "list.pt", "not a dict")
    torch.save({"config": {}}, tmp_path / "keys.pt")
    _refused(tmp_path / "keys.pt", "lacks 'state'", required_keys=("config", "state"))


def test_the_fix_ends_the_message(tmp_path):
    msg = _refused(tmp_path / "none.pt", "does not exist", fix="train one with notebook 99")
    assert msg.endswith("train one with notebook 99")


def test_speechsplit_round_trip_and_a_damaged_file(tmp_path):
    from talklib.audio import speechsplit as SS

    torch.manual_seed(0)
    cfg = SS.SpeechSplitConfig(conv_content=16, conv_pitch=16, conv_rhythm=8, dec_dim=16, dec_layers=1, n_speakers=2)
    m = SS.SpeechSplit(cfg).eval()
    path = tmp_path / "ss.pt"
    SS.save_speechsplit(m, path)
    m2 = SS.load_speechsplit(path)
    assert not m2.training and m2.cfg == cfg
    assert all(torch.equal(a, b) for a, b in zip(m.state_dict().values(), m2.state_dict().values()))

    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 3])
    with pytest.raises(UserError) as e:
        SS.load_speechsplit(path)
    assert "\n" not in str(e.value) and "SpeechSplit model" in str(e.value) and str(path) in str(e.value)

    SS.save_speechsplit(m, path)
    blob = torch.load(path, weights_only=True)
    blob["config"]["dec_dim"] = 32   # weights of another size than the config says
    torch.save(blob, path)
    with pytest.raises(UserError, match="does not fit talklib's SpeechSplit") as e:
        SS.load_speechsplit(path)
    assert "\n" not in str(e.value)


def test_sync_round_trip_and_refusals(tmp_path):
    from talklib.sync.model import SyncConfig, SyncNet, load_sync, save_sync

    torch.manual_seed(0)
    m = SyncNet(SyncConfig(dim=16)).eval()
    path = save_sync(m, tmp_path / "sync.pt")
    m2 = load_sync(path)
    assert not m2.training and m2.cfg == m.cfg
    assert all(torch.equal(a, b) for a, b in zip(m.state_dict().values(), m2.state_dict().values()))

    blob = torch.load(path, weights_only=True)
    k = next(k for k, v in blob["state"].items() if v.is_floating_point())
    blob["state"][k] = torch.full_like(blob["state"][k], float("nan"))
    torch.save(blob, path)
    with pytest.raises(UserError, match="is damaged") as e:
        load_sync(path)
    assert "NaN or inf" in str(e.value) and "sync model" in str(e.value) and "\n" not in str(e.value)
