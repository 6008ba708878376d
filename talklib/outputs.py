"""What a notebook leaves in its run folder: metrics, figures, videos.

Layout of a run folder ``runs/NAME/``::

    notebooks/NN_name.ipynb      executed notebooks (written by the pipeline)
    metrics/NN_name.json         each notebook's figures of merit (``write_metrics``)
    figures/NN_name/*.png|html   key figures the report shows (``save_figure``, ``save_image``)
    videos/NN_name/*.mp4         rendered videos the report embeds (``video_path``)
    report.md, report.html       gathered by ``talklib.pipeline``

Every file is written to a temporary name and renamed, so nothing half-written looks complete.
"""

from __future__ import annotations

import json
import math
import os
import shutil
import tempfile
from pathlib import Path
from typing import Any


def atomic_write_bytes(path: str | Path, data: bytes) -> Path:
    """Write ``data`` to ``path`` through a temporary file in the same folder, then rename."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
        publish(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return path


def publish(tmp: str | Path, path: str | Path) -> Path:
    """Rename the finished temporary file ``tmp`` to ``path`` with the usual permissions (mkstemp's are 0600)."""
    umask = os.umask(0)
    os.umask(umask)
    os.chmod(tmp, 0o666 & ~umask)
    os.replace(tmp, path)
    return Path(path)


def replace_dir(tmp: str | Path, path: str | Path) -> Path:
    """Move the finished folder ``tmp`` to ``path``, replacing any old one, so ``path`` is never half-made."""
    tmp, path = Path(tmp), Path(path)
    if path.exists():
        old = path.parent / f".{path.name}.old-{os.getpid()}"
        os.replace(path, old)
        os.replace(tmp, path)
        shutil.rmtree(old, ignore_errors=True)
    else:
        os.replace(tmp, path)
    return path


def atomic_write_text(path: str | Path, text: str) -> Path:
    return atomic_write_bytes(path, text.encode("utf-8"))


def write_metrics(run_dir: str | Path, notebook: str, metrics: dict[str, Any],
                  timings: dict[str, float] | None = None) -> Path:
    """Write a notebook's figures of merit to ``{run_dir}/metrics/{notebook}.json``.

    ``metrics`` must be deterministic for a given seed on CPU (they are compared across runs);
    wall-clock numbers go to ``timings``. Values are numbers, strings, booleans or None
    (None for "not available", e.g. LPIPS without weights).
    """
    clean = {k: _plain(v) for k, v in metrics.items()}
    body = {"notebook": notebook, "metrics": clean, "timings": {k: float(v) for k, v in (timings or {}).items()}}
    return atomic_write_text(Path(run_dir) / "metrics" / f"{notebook}.json", json.dumps(body, indent=2) + "\n")


def read_metrics(run_dir: str | Path) -> dict[str, dict]:
    """All metrics files of a run, by notebook name."""
    out = {}
    for f in sorted((Path(run_dir) / "metrics").glob("*.json")):
        out[f.stem] = json.loads(f.read_text())
    return out


def figure_dir(run_dir: str | Path, notebook: str) -> Path:
    d = Path(run_dir) / "figures" / notebook
    d.mkdir(parents=True, exist_ok=True)
    return d


def save_figure(fig, run_dir: str | Path, notebook: str, name: str) -> Path:
    """Save a plotly or matplotlib figure for the report (plotly: self-contained-free HTML div)."""
    d = figure_dir(run_dir, notebook)
    if hasattr(fig, "to_html"):  # plotly
        html = fig.to_html(full_html=False, include_plotlyjs=False)
        return atomic_write_text(d / f"{name}.html", html)
    import io

    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=100, bbox_inches="tight")
    return atomic_write_bytes(d / f"{name}.png", buf.getvalue())


def save_image(image, run_dir: str | Path, notebook: str, name: str) -> Path:
    """Save an image array (H, W, 3) in [0, 1] floats or uint8 as PNG for the report."""
    import io

    import numpy as np
    from PIL import Image

    arr = np.asarray(image)
    if arr.dtype != np.uint8:
        arr = (np.clip(arr, 0.0, 1.0) * 255.0 + 0.5).astype(np.uint8)
    buf = io.BytesIO()
    Image.fromarray(arr).save(buf, format="PNG")
    return atomic_write_bytes(figure_dir(run_dir, notebook) / f"{name}.png", buf.getvalue())


def video_path(run_dir: str | Path, notebook: str, name: str) -> Path:
    """Where a notebook should write a video the report embeds (``videos/NN_name/name.mp4``)."""
    d = Path(run_dir) / "videos" / notebook
    d.mkdir(parents=True, exist_ok=True)
    return d / f"{name}.mp4"


def _plain(v: Any) -> Any:
    """JSON-friendly scalars: numpy/torch scalars to Python, NaN/inf to None."""
    if hasattr(v, "item") and callable(v.item):
        v = v.item()
    if isinstance(v, float) and not math.isfinite(v):
        return None
    if isinstance(v, (int, float, str, bool)) or v is None:
        return v
    if isinstance(v, (list, tuple)):
        return [_plain(x) for x in v]
    if isinstance(v, dict):
        return {str(k): _plain(x) for k, x in v.items()}
    raise TypeError(f"metric value {v!r} is not a number, string, bool, list or dict")
