"""`make lab`: JupyterLab opens notebooks/*.py as notebooks, with plotly and widgets extensions."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

from talklib.pipeline import ROOT

BIN = Path(sys.executable).parent


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def lab(tmp_path_factory):
    port, token = _free_port(), "talklib-test"
    home = tmp_path_factory.mktemp("home")
    proc = subprocess.Popen(
        [str(BIN / "jupyter"), "lab", "--no-browser", f"--port={port}", "--ServerApp.ip=127.0.0.1",
         f"--IdentityProvider.token={token}", f"--ServerApp.root_dir={ROOT}"]
        + (["--allow-root"] if os.geteuid() == 0 else []),
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env={"HOME": str(home), "PATH": str(BIN)},
    )
    base = f"http://127.0.0.1:{port}"
    try:
        for _ in range(120):  # at most ~60 s
            try:
                urllib.request.urlopen(f"{base}/api/status?token={token}", timeout=2)
                break
            except OSError:
                time.sleep(0.5)
        else:
            pytest.fail("JupyterLab did not start within 60 s")
        yield base, token
    finally:
        proc.terminate()
        proc.wait(timeout=30)


def test_a_percent_py_opens_as_a_notebook(lab):
    base, token = lab
    url = f"{base}/api/contents/notebooks/00_overview.py?type=notebook&content=1&token={token}"
    model = json.load(urllib.request.urlopen(url, timeout=30))
    assert model["type"] == "notebook"
    cells = model["content"]["cells"]
    assert any("parameters" in c["metadata"].get("tags", []) for c in cells)
    assert model["content"]["metadata"]["kernelspec"]["name"] == "talklib"


def test_lab_has_the_plotly_widgets_and_jupytext_extensions():
    out = subprocess.run([str(BIN / "jupyter"), "labextension", "list"], capture_output=True, text=True)
    text = out.stdout + out.stderr
    for ext in ("jupyterlab-plotly", "@jupyter-widgets/jupyterlab-manager", "jupyterlab-jupytext"):
        assert ext in text, f"JupyterLab extension {ext} missing"
