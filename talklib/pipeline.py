"""``python -m talklib reproduce``: the notebooks as one parameterised pipeline.

Each ``notebooks/NN_name.py`` (jupytext percent format, with a ``parameters`` cell) is converted to a
notebook and executed by papermill, in order, with a preset's parameters plus the user's overrides.
Everything is validated before the first notebook starts. Outputs go to the run folder (see
``talklib.outputs``); ``report.md`` and ``report.html`` gather every notebook's metrics, key figures
and videos. The report says ``running`` while the run goes on and ``FAILED`` when a notebook fails,
so a report never looks complete when it is not.
"""

from __future__ import annotations

import ast
import datetime as dt
import json
import os
import platform
import re
import shutil
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from talklib import config
from talklib.errors import UserError
from talklib.outputs import atomic_write_text, read_metrics

ROOT = Path(__file__).resolve().parents[1]
NOTEBOOK_DIR = ROOT / "notebooks"
KERNEL = "talklib"
# Parameters the command line sets itself; -p/-f may not set them.
RESERVED = {"preset": "--preset", "run_dir": "--out"}


@dataclass
class Notebook:
    number: str              # "03"
    name: str                # "03_conditional_nerf"
    path: Path               # notebooks/03_conditional_nerf.py
    defaults: dict[str, Any]  # the parameters cell, name -> default value


@dataclass
class Step:
    notebook: Notebook
    status: str = "pending"  # pending, running, ok, failed, not run
    seconds: float | None = None
    error: str | None = None
    params: dict[str, Any] = field(default_factory=dict)


# --- finding notebooks and their parameters -----------------------------------------------------

def discover(nb_dir: Path = NOTEBOOK_DIR) -> list[Notebook]:
    """Every ``NN_name.py`` in ``nb_dir``, in order, with its parameters cell read."""
    out = []
    for path in sorted(nb_dir.glob("[0-9][0-9]_*.py")):
        out.append(Notebook(path.stem[:2], path.stem, path, parameters_cell(path)))
    return out


def parameters_cell(path: Path) -> dict[str, Any]:
    """The ``name = literal`` assignments of the cell tagged ``parameters`` in a percent-format file."""
    text = path.read_text()
    cells = re.split(r"^# %%", text, flags=re.M)
    for cell in cells[1:]:
        header, _, body = cell.partition("\n")
        if re.search(r"tags\s*=\s*\[[^\]]*[\"']parameters[\"']", header):
            out = {}
            for node in ast.parse(body).body:
                if isinstance(node, ast.Assign) and len(node.targets) == 1 and isinstance(node.targets[0], ast.Name):
                    out[node.targets[0].id] = ast.literal_eval(node.value)
            return out
    raise UserError(f"{path} has no cell tagged parameters: add '# %% tags=[\"parameters\"]' above its settings")


# --- planning: everything is checked before anything runs ----------------------------------------

def parse_overrides(pairs: list[str] | None, files: list[str] | None) -> dict[str, Any]:
    """``-f params.yaml`` files first, then ``-p name=value`` pairs; names and types checked."""
    import yaml

    params: dict[str, Any] = {}
    for f in files or []:
        p = Path(f)
        if not p.is_file():
            raise UserError(f"parameter file {f} does not exist: give a YAML file of name: value lines")
        try:
            data = yaml.safe_load(p.read_text())
        except yaml.YAMLError as e:
            raise UserError(f"parameter file {f} is not valid YAML ({str(e).splitlines()[0]})") from None
        if data is None:
            data = {}
        if not isinstance(data, dict):
            raise UserError(f"parameter file {f} must be a mapping of name: value, not a {type(data).__name__}")
        params.update(config.validate(data))
    for pair in pairs or []:
        name, eq, value = pair.partition("=")
        if not eq or not name:
            raise UserError(f"-p takes name=value, not {pair!r}")
        params[name] = config.parse_value(name, value)
    for name, flag in RESERVED.items():
        if name in params:
            raise UserError(f"parameter {name} is set with {flag}, not with -p or -f")
    return params


def select(notebooks: list[Notebook], only: list[str] | None) -> list[Notebook]:
    """The notebooks named by ``--only`` (numbers such as 03, or 3, or full names), in order."""
    if not only:
        return notebooks
    wanted = [w for item in only for w in item.split(",") if w]
    by_key = {}
    for nb in notebooks:
        by_key[nb.number] = by_key[str(int(nb.number))] = by_key[nb.name] = nb
    unknown = [w for w in wanted if w not in by_key]
    if unknown:
        raise UserError(
            f"unknown notebook {', '.join(unknown)}: choose from {', '.join(nb.number for nb in notebooks)}"
        )
    chosen = {by_key[w].name for w in wanted}
    return [nb for nb in notebooks if nb.name in chosen]


def plan(preset: str, out: Path, overrides: dict[str, Any], notebooks: list[Notebook]) -> list[Step]:
    """Each notebook with the parameters it will get: its own names, from the preset and overrides."""
    values = config.preset(preset)
    values.update(overrides)
    values["preset"] = preset
    values["run_dir"] = str(out)
    values["data_dir"] = str(Path(values["data_dir"]).expanduser().resolve())
    steps = []
    for nb in notebooks:
        unknown = sorted(set(nb.defaults) - set(config.names()))
        if unknown:
            raise UserError(f"{nb.path.name} reads parameters missing from talklib/config.py: {', '.join(unknown)}")
        steps.append(Step(nb, params={k: values[k] for k in nb.defaults}))
    return steps


# --- running --------------------------------------------------------------------------------------

def to_ipynb(src: Path, dst: Path) -> Path:
    """Convert a percent-format ``.py`` to ``.ipynb`` with the talklib kernel (papermill needs ipynb)."""
    import jupytext

    nb = jupytext.read(src)
    nb.metadata["kernelspec"] = {"name": KERNEL, "display_name": "talklib", "language": "python"}
    dst.parent.mkdir(parents=True, exist_ok=True)
    jupytext.write(nb, dst)
    return dst


def execute(step: Step, out: Path, prepare_to: Path | None = None) -> None:
    """Run one notebook with papermill into ``out/notebooks``; on failure say which cell and why.

    With ``prepare_to`` the notebook is only parameterised (not run) and written there (for nbval).
    """
    import papermill
    from papermill.exceptions import PapermillExecutionError

    nb = step.notebook
    src = to_ipynb(nb.path, out / "notebooks" / ".src" / f"{nb.name}.ipynb")
    dst = (prepare_to or out / "notebooks") / f"{nb.name}.ipynb"
    if prepare_to is None:
        for stale in (out / "metrics" / f"{nb.name}.json", out / "figures" / nb.name, out / "videos" / nb.name):
            shutil.rmtree(stale, ignore_errors=True) if stale.is_dir() else stale.unlink(missing_ok=True)
    step.status = "running"
    t0 = time.perf_counter()
    try:
        papermill.execute_notebook(
            str(src), str(dst), parameters=step.params, kernel_name=KERNEL, cwd=str(ROOT),
            prepare_only=prepare_to is not None, progress_bar=False, log_output=False,
            extra_arguments=["--IPKernelApp.log_level=ERROR"],  # not its warning about TCP on localhost
        )
    except PapermillExecutionError as e:
        step.status = "failed"
        first = next((ln.strip() for ln in (e.source or "").splitlines() if ln.strip() and not ln.startswith("#")), "")
        evalue = str(e.evalue).splitlines()[0] if e.evalue else ""
        step.error = f"cell {e.exec_count} ({first[:60]}) raised {e.ename}: {evalue}"
    except Exception as e:  # kernel died, notebook unreadable ...
        step.status = "failed"
        step.error = f"{type(e).__name__}: {str(e).splitlines()[0] if str(e) else ''}"
    else:
        step.status = "ok"
    finally:
        step.seconds = time.perf_counter() - t0


def reproduce(preset: str, out: str | Path, only: list[str] | None = None, pairs: list[str] | None = None,
              files: list[str] | None = None, prepare_to: str | Path | None = None,
              nb_dir: Path = NOTEBOOK_DIR) -> tuple[bool, Path]:
    """The pipeline. Returns (success, report path). Validates everything before running anything."""
    if preset not in config.PRESETS:
        raise UserError(f"unknown preset {preset!r}: choose one of {', '.join(config.PRESETS)}")
    out = Path(out).expanduser().resolve()
    overrides = parse_overrides(pairs, files)
    steps = plan(preset, out, overrides, select(discover(nb_dir), only))
    if not steps:
        raise UserError(f"no notebooks found in {nb_dir}")
    _check_kernel()
    out.mkdir(parents=True, exist_ok=True)
    started = dt.datetime.now().isoformat(timespec="seconds")
    meta = {"preset": preset, "overrides": overrides, "started": started, "command": " ".join(sys.argv)}
    if prepare_to is not None:
        prepare_to = Path(prepare_to).resolve()
        prepare_to.mkdir(parents=True, exist_ok=True)
        for step in steps:
            execute(step, out, prepare_to=prepare_to)
            if step.status != "ok":
                raise UserError(f"could not prepare {step.notebook.name}: {step.error}")
        print(f"prepared {len(steps)} notebooks in {os.path.relpath(prepare_to)} (run_dir {os.path.relpath(out)})")
        return True, prepare_to
    write_report(out, steps, meta, state="running")
    for i, step in enumerate(steps):
        print(f"[{i + 1}/{len(steps)}] {step.notebook.name} ...", end=" ", flush=True)
        execute(step, out)
        print(f"{step.status} in {step.seconds:.0f} s", flush=True)
        if step.status == "failed":
            for later in steps[i + 1:]:
                later.status = "not run"
            print(f"error: notebook {step.notebook.name} failed at {step.error}")
            print(f"       the executed notebook with the traceback: {out / 'notebooks' / (step.notebook.name + '.ipynb')}")
            break
    state = "complete" if all(s.status == "ok" for s in steps) else "FAILED"
    meta["finished"] = dt.datetime.now().isoformat(timespec="seconds")
    report = write_report(out, steps, meta, state=state)
    return state == "complete", report


def _check_kernel() -> None:
    from jupyter_client.kernelspec import KernelSpecManager, NoSuchKernel

    try:
        KernelSpecManager().get_kernel_spec(KERNEL)
    except NoSuchKernel:
        raise UserError(f"no Jupyter kernel named {KERNEL!r}: run 'make venv' (it registers one inside .venv)") from None


# --- the report -----------------------------------------------------------------------------------

def write_report(out: Path, steps: list[Step], meta: dict, state: str) -> Path:
    """``report.md`` and ``report.html`` and ``run.json`` for the run folder, written atomically."""
    metrics = read_metrics(out)
    meta = dict(meta, state=state, python=platform.python_version(), git=_git_commit(),
                notebooks={s.notebook.name: {"status": s.status, "seconds": s.seconds, "error": s.error} for s in steps})
    atomic_write_text(out / "run.json", json.dumps(meta, indent=2, default=str) + "\n")
    atomic_write_text(out / "report.md", _report_md(out, steps, meta, metrics))
    return atomic_write_text(out / "report.html", _report_html(out, steps, meta, metrics))


def _git_commit() -> str | None:
    try:
        return subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=ROOT, capture_output=True,
                              text=True, check=True).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return None


def _banner(state: str) -> str:
    return {"complete": "Run complete.",
            "running": "RUNNING — this report is incomplete.",
            "FAILED": "RUN FAILED — the numbers below are incomplete."}.get(state, state)


def _fmt(v: Any) -> str:
    if v is None:
        return "unavailable"
    if isinstance(v, float):
        return f"{v:.4g}"
    if isinstance(v, (list, dict)):
        return json.dumps(v)[:80]
    return str(v)


def _assets(out: Path, kind: str, name: str, exts: tuple[str, ...]) -> list[Path]:
    d = out / kind / name
    return sorted(p for p in d.glob("*") if p.suffix in exts) if d.is_dir() else []


def _report_md(out: Path, steps: list[Step], meta: dict, metrics: dict) -> str:
    lines = [f"# talklib run `{out.name}`", "", f"**{_banner(meta['state'])}**", "",
             f"preset `{meta['preset']}` · overrides `{json.dumps(meta['overrides'])}` · started {meta['started']}"
             f" · git {meta['git']}", "", "| notebook | status | seconds |", "|---|---|---|"]
    for s in steps:
        secs = f"{s.seconds:.0f}" if s.seconds is not None else ""
        lines.append(f"| {s.notebook.name} | {s.status}{': ' + s.error if s.error else ''} | {secs} |")
    for s in steps:
        name = s.notebook.name
        lines += ["", f"## {name}", ""]
        m = metrics.get(name)
        if m:
            lines += ["| metric | value |", "|---|---|"]
            lines += [f"| {k} | {_fmt(v)} |" for k, v in m["metrics"].items()]
        else:
            lines.append("_no metrics written_")
        for p in _assets(out, "figures", name, (".png",)):
            lines += ["", f"![{p.stem}]({p.relative_to(out)})"]
        for p in _assets(out, "figures", name, (".html",)):
            lines += ["", f"[{p.stem} (interactive)]({p.relative_to(out)})"]
        for p in _assets(out, "videos", name, (".mp4",)):
            lines += ["", f"[video: {p.stem}]({p.relative_to(out)})"]
        lines += ["", f"[executed notebook](notebooks/{name}.ipynb)"]
    return "\n".join(lines) + "\n"


def _report_html(out: Path, steps: list[Step], meta: dict, metrics: dict) -> str:
    from html import escape

    plotly_js = ""
    if any(_assets(out, "figures", s.notebook.name, (".html",)) for s in steps):
        from plotly.offline import get_plotlyjs

        plotly_js = f"<script>{get_plotlyjs()}</script>"
    colour = {"complete": "#1a7f37", "running": "#9a6700", "FAILED": "#cf222e"}.get(meta["state"], "#555")
    parts = [
        "<!doctype html><html><head><meta charset='utf-8'>",
        f"<title>talklib run {escape(out.name)}</title>", plotly_js,
        "<style>body{font-family:sans-serif;max-width:1100px;margin:2em auto;padding:0 1em}"
        "table{border-collapse:collapse}td,th{border:1px solid #ccc;padding:3px 8px;text-align:left}"
        "img,video{max-width:100%;margin:.5em 0}</style></head><body>",
        f"<h1>talklib run <code>{escape(out.name)}</code></h1>",
        f"<p style='font-weight:bold;color:{colour}'>{escape(_banner(meta['state']))}</p>",
        f"<p>preset <code>{escape(meta['preset'])}</code> · overrides <code>{escape(json.dumps(meta['overrides']))}"
        f"</code> · started {escape(meta['started'])} · git {escape(str(meta['git']))}</p>",
        "<table><tr><th>notebook</th><th>status</th><th>seconds</th></tr>",
    ]
    for s in steps:
        secs = f"{s.seconds:.0f}" if s.seconds is not None else ""
        err = f": {escape(s.error)}" if s.error else ""
        parts.append(f"<tr><td><a href='#{s.notebook.name}'>{s.notebook.name}</a></td><td>{s.status}{err}</td><td>{secs}</td></tr>")
    parts.append("</table>")
    for s in steps:
        name = s.notebook.name
        parts.append(f"<h2 id='{name}'>{name}</h2>")
        m = metrics.get(name)
        if m:
            parts.append("<table><tr><th>metric</th><th>value</th></tr>")
            parts += [f"<tr><td>{escape(k)}</td><td>{escape(_fmt(v))}</td></tr>" for k, v in m["metrics"].items()]
            parts.append("</table>")
        else:
            parts.append("<p><em>no metrics written</em></p>")
        for p in _assets(out, "figures", name, (".png",)):
            parts.append(f"<figure><img src='{p.relative_to(out)}' alt='{p.stem}'><figcaption>{p.stem}</figcaption></figure>")
        for p in _assets(out, "figures", name, (".html",)):
            parts.append(f"<figure>{p.read_text()}<figcaption>{p.stem}</figcaption></figure>")
        for p in _assets(out, "videos", name, (".mp4",)):
            parts.append(f"<figure><video controls src='{p.relative_to(out)}'></video><figcaption>{p.stem}</figcaption></figure>")
        parts.append(f"<p><a href='notebooks/{name}.ipynb'>executed notebook</a></p>")
    parts.append("</body></html>")
    return "\n".join(parts) + "\n"


# --- command line ---------------------------------------------------------------------------------

def add_arguments(p) -> None:
    p.add_argument("--preset", default="small", help="small (2 CPU cores, minutes) or full (one GPU)")
    p.add_argument("--out", default=None, help="run folder (default runs/PRESET)")
    p.add_argument("--only", nargs="+", metavar="NN", help="run only these notebooks, e.g. --only 01 03")
    p.add_argument("-p", dest="pairs", action="append", metavar="NAME=VALUE", help="override a parameter")
    p.add_argument("-f", dest="files", action="append", metavar="PARAMS.yaml", help="parameters from a YAML file")
    p.add_argument("--prepare-only", metavar="DIR", default=None,
                   help="only write the parameterised notebooks to DIR, without running them (for nbval)")


def run(args) -> int:
    out = args.out or f"runs/{args.preset}"
    ok, report = reproduce(args.preset, out, args.only, args.pairs, args.files, args.prepare_only)
    if args.prepare_only:
        return 0
    print(f"report: {os.path.relpath(report)}")
    return 0 if ok else 1
