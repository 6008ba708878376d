"""What a notebook leaves in its run folder: metrics, figures, videos.

Layout of a run folder ``runs/NAME/``::

    notebooks/NN_name.ipynb      executed notebooks (written by the pipeline)
    metrics/NN_name.json         each notebook's figures of merit (``write_metrics``)
    figures/NN_name/*.png|html   key figures the report shows (``save_figure``, ``save_image``)
    videos/NN_name/*.mp4         rendered videos the report embeds (``video_path``)
    report.md, report.html       gathered by ``talklib.pipeline``

Every file is written to a temporary name and renamed, so nothing half-written looks complete.
Temporaries carry the writer's process id (``.NAME.tmp-PID-XXXX``, ``.NAME.building-PID``,
``.NAME.old-PID``); one whose process is dead (killed mid-write) is removed by the next write of
``NAME`` (``remove_stale``). ``output_lock(path)`` keeps two processes from building one output at once.
"""

from __future__ import annotations

import contextlib
import json
import math
import os
import re
import shutil
import tempfile
from pathlib import Path
from typing import Any, Iterator

#: what this process's temporaries of NAME are called: ``.NAME.<kind>-PID`` (``-XXXX...`` after for files)
_TEMP = re.compile(r"\.(?P<kind>tmp|building|old)-(?P<pid>\d+)(?:-.*)?$")
#: output locks this process holds (path -> depth), so that a builder called under a command's lock re-enters it
_HELD: dict[str, int] = {}


def pid_alive(pid: int) -> bool:
    """True while process ``pid`` exists on this machine (a zombie counts as alive)."""
    if pid <= 0:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:   # someone else's process
        return True
    return True


def temp_name(path: str | Path, kind: str) -> Path:
    """``.NAME.<kind>-PID`` next to ``path``: this process's temporary of ``path`` (kind: building, old)."""
    path = Path(path)
    return path.parent / f".{path.name}.{kind}-{os.getpid()}"


def temp_file(path: str | Path, suffix: str = "") -> str:
    """A new empty temporary file ``.NAME.tmp-PID-XXXXXXXX<suffix>`` next to ``path``; returns its name."""
    path = Path(path)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.tmp-{os.getpid()}-", suffix=suffix, dir=path.parent)
    os.close(fd)
    return tmp


def remove_stale(path: str | Path) -> list[Path]:
    """Remove the temporaries of ``path`` (``.NAME.tmp-PID-*``, ``.NAME.building-PID``, ``.NAME.old-PID``)
    that a process which no longer runs left behind (killed while writing); returns what was removed."""
    path = Path(path)
    prefix = f".{path.name}."
    removed = []
    try:
        entries = list(os.scandir(path.parent))
    except OSError:
        return removed
    for e in entries:
        if not e.name.startswith(prefix):
            continue
        m = _TEMP.match(e.name[len(prefix) - 1:])
        if m is None or pid_alive(int(m["pid"])):
            continue
        p = Path(e.path)
        if e.is_dir(follow_symlinks=False):
            shutil.rmtree(p, ignore_errors=True)
        else:
            p.unlink(missing_ok=True)
        if not p.exists():
            removed.append(p)
    return removed


@contextlib.contextmanager
def output_lock(path: str | Path) -> Iterator[Path]:
    """Hold ``.NAME.lock`` next to ``path`` (it holds this process's id) while ``path`` is built.

    Another process holding it: ``UserError`` (one line, with its id). A lock file left by a process
    that died is taken over (the lock is an ``flock``, which the system releases when its holder dies).
    Re-entrant within one process.
    """
    import fcntl

    from talklib.errors import UserError

    path = Path(path)
    lock = path.parent / f".{path.name}.lock"
    key = str(lock.absolute())
    if key in _HELD:
        _HELD[key] += 1
        try:
            yield lock
        finally:
            _HELD[key] -= 1
        return
    path.parent.mkdir(parents=True, exist_ok=True)
    while True:
        try:
            fd = os.open(lock, os.O_RDWR | os.O_CREAT, 0o644)
        except OSError as e:
            raise UserError(f"cannot write the lock file {lock} ({e.strerror}): choose an output in a writable "
                            "folder") from None
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            try:
                holder = os.read(fd, 32).decode(errors="replace").strip() or "?"
            finally:
                os.close(fd)
            raise UserError(f"{path} is being written by another process (pid {holder}, lock {lock}): "
                            "wait for it to finish or choose another output") from None
        try:
            same = os.fstat(fd).st_ino == os.stat(lock).st_ino
        except FileNotFoundError:
            same = False
        if same:
            break
        os.close(fd)   # its holder removed the file as we opened it: lock the new one
    try:
        os.ftruncate(fd, 0)
        os.write(fd, f"{os.getpid()}\n".encode())
        _HELD[key] = 1
        yield lock
    finally:
        _HELD.pop(key, None)
        lock.unlink(missing_ok=True)
        os.close(fd)


def atomic_write_bytes(path: str | Path, data: bytes) -> Path:
    """Write ``data`` to ``path`` through a temporary file in the same folder, then rename."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    remove_stale(path)
    tmp = temp_file(path)
    try:
        with open(tmp, "wb") as f:
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
    """Move the finished folder ``tmp`` to ``path``, replacing any old one (folder or file), so ``path``
    is never half-made. The old one is moved to ``.NAME.old-PID`` first and then removed."""
    tmp, path = Path(tmp), Path(path)
    if path.exists() or path.is_symlink():
        old = temp_name(path, "old")
        os.replace(path, old)
        os.replace(tmp, path)
        if old.is_dir() and not old.is_symlink():
            shutil.rmtree(old, ignore_errors=True)
        else:
            old.unlink(missing_ok=True)
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
