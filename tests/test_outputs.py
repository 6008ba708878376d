import json
import math

import numpy as np
import pytest

from talklib.outputs import atomic_write_text, read_metrics, save_image, write_metrics


def test_metrics_are_plain_json_with_missing_values_as_null(tmp_path):
    write_metrics(tmp_path, "01_x", {"psnr": np.float32(31.5), "lpips": None, "bad": math.nan, "n": np.int64(3)},
                  timings={"train_s": 1.25})
    body = json.loads((tmp_path / "metrics" / "01_x.json").read_text())
    assert body["metrics"] == {"psnr": 31.5, "lpips": None, "bad": None, "n": 3}
    assert body["timings"] == {"train_s": 1.25}
    assert read_metrics(tmp_path)["01_x"]["notebook"] == "01_x"


def test_metric_values_must_be_plain(tmp_path):
    with pytest.raises(TypeError):
        write_metrics(tmp_path, "01_x", {"obj": object()})


def test_atomic_write_leaves_no_temp_files(tmp_path):
    atomic_write_text(tmp_path / "a" / "b.txt", "hello")
    assert (tmp_path / "a" / "b.txt").read_text() == "hello"
    assert [p.name for p in (tmp_path / "a").iterdir()] == ["b.txt"]


def test_save_image_accepts_float_and_uint8(tmp_path):
    p = save_image(np.ones((4, 5, 3)), tmp_path, "01_x", "white")
    from PIL import Image

    assert np.asarray(Image.open(p)).min() == 255


def test_atomic_files_get_the_usual_permissions(tmp_path):
    import os

    p = atomic_write_text(tmp_path / "x.txt", "x")
    umask = os.umask(0)
    os.umask(umask)
    assert (p.stat().st_mode & 0o777) == (0o666 & ~umask)
