"""``python -m talklib reproduce``: the notebooks as one parameterised pipeline.

Each ``notebooks/NN_name.py`` (jupytext percent format, with a ``parameters`` cell) is converted to a
notebook and executed by papermill, in order, with a preset's parameters plus the user's overrides.
Everything is validated before the first notebook starts (names, types and ranges of the parameters,
the run folder). Outputs go to the run folder (see ``talklib.outputs``); ``report.md`` and
``report.html`` gather every notebook's metrics, key figures and videos, ``run.json`` the state of the
run and of each notebook. The report says ``running`` while the run goes on, ``FAILED`` when a notebook
fails and ``interrupted`` after Ctrl-C, so a report never looks complete when it is not.

Interrupts: a run holds a lock on its folder (an ``flock``, which the system drops when the process
dies; the notebook's kernel holds it too), so two runs never share a folder. A run that finds
``run.json`` still ``running`` but the lock free knows its predecessor was killed (``kill -9``, power
loss): it says so and marks it ``interrupted``. ``--resume`` continues a run from its first unfinished
notebook, with the same preset and overrides, and passes ``resume=True`` to the notebooks so that a
trainer continues from its checkpoint. Each executed notebook is written under a temporary name
(``.NAME.ipynb.tmp-PID-run.ipynb``) and renamed when it ends; temporaries left in the run folder by a
killed process are removed when the next run starts. The kernel's own stderr goes to
``logs/NAME.log`` (removed when empty), so that a Ctrl-C does not print its shutdown noise.
"""

from __future__ import annotations

import ast
import contextlib
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
from talklib.outputs import atomic_write_text, pid_alive, read_metrics

ROOT = Path(__file__).resolve().parents[1]
NOTEBOOK_DIR = ROOT / "notebooks"
KERNEL = "talklib"
# Parameters the command line sets itself; -p/-f may not set them.
RESERVED = {"preset": "--preset", "run_dir": "--out", "resume": "--resume"}
# A temporary of a process that may have died: ``.NAME.tmp-PID...``, ``.NAME.building-PID``, ``.NAME.old-PID``
# (talklib.outputs), or the older ``.NAME.XXXXXXXX.tmp`` of tempfile.mkstemp.
_TEMP = re.compile(r"^\..+\.(?:(?:tmp|building|old)-(?P<pid>\d+)(?:-.*)?|[A-Za-z0-9_]{8}\.tmp)$")


class RunInterrupted(KeyboardInterrupt):
    """Ctrl-C during a run, after ``run.json`` was marked ``interrupted``; its message says how to go on."""


@dataclass
class Notebook:
    number: str              # "03"
    name: str                # "03_conditional_nerf"
    path: Path               # notebooks/03_conditional_nerf.py
    defaults: dict[str, Any]  # the parameters cell, name -> default value


@dataclass
class Step:
    notebook: Notebook
    status: str = "pending"  # pending, running, ok, failed, interrupted, not run
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


def plan(preset: str, out: Path, overrides: dict[str, Any], notebooks: list[Notebook],
         resume: bool = False) -> list[Step]:
    """Each notebook with the parameters it will get: its own names, from the preset and overrides."""
    values = config.preset(preset)
    values.update(overrides)
    if "data_dir" not in overrides and values["seed"] != config.preset(preset)["seed"]:
        # another seed is another synthetic speaker: give it its own folder, so the preset's stays as built
        values["data_dir"] = f"{values['data_dir']}-seed{values['seed']}"
    if "motion_dir" not in overrides and values["seed"] != config.preset(preset)["seed"]:
        values["motion_dir"] = f"{values['motion_dir']}-seed{values['seed']}"   # the motion corpus likewise
    values["preset"] = preset
    values["run_dir"] = str(out)
    values["resume"] = bool(resume)
    values["data_dir"] = str(Path(values["data_dir"]).expanduser().resolve())
    config.check_together(values)
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


def _kernel_manager(launch: dict[str, Any], started: list):
    """A kernel manager class for nbclient that adds ``launch`` (Popen arguments: stderr, pass_fds) when it
    starts the kernel, and appends itself to ``started`` (so the kernel can be stopped for sure)."""
    from jupyter_client.manager import AsyncKernelManager

    class _Manager(AsyncKernelManager):
        async def start_kernel(self, **kw):
            started.append(self)
            return await super().start_kernel(**{**kw, **launch})

    return _Manager


def _stop_kernels(managers: list) -> None:
    """Kill what is left of the kernels (and their children) ``managers`` started; nbclient stops them
    itself, except when Ctrl-C cut its shutdown short."""
    import signal

    for km in managers:
        pid = getattr(getattr(km, "provisioner", None), "pid", None)
        if pid and pid_alive(pid):
            try:
                os.killpg(pid, signal.SIGKILL)   # the kernel leads its own session (jupyter_client)
            except OSError:
                pass


def _quiet_executors() -> None:
    """Keep papermill / nbclient / asyncio from logging to the terminal: a notebook's failure is reported
    as one line from ``step.error`` (the traceback is in the executed notebook), and on Ctrl-C the kernel
    may die before papermill notices, which nbclient logs ("Kernel died while waiting for execute reply")
    and asyncio reports again when the dead task is collected ("Task exception was never retrieved") —
    lines after the one-line message the user is owed."""
    import logging

    for name in ("papermill", "nbclient", "traitlets", "asyncio"):
        logging.getLogger(name).setLevel(logging.CRITICAL)


def execute(step: Step, out: Path, prepare_to: Path | None = None, lock_fd: int | None = None) -> None:
    """Run one notebook with papermill into ``out/notebooks``; on failure say which cell and why.

    With ``prepare_to`` the notebook is only parameterised (not run) and written there (for nbval).
    The executed notebook is written to a temporary name and renamed when it ends (done, failed or
    interrupted). ``lock_fd`` (the run folder's lock) is passed on to the kernel, so the folder stays
    locked until the kernel is gone. Ctrl-C (KeyboardInterrupt) propagates, with the step marked
    ``interrupted``.
    """
    import papermill
    from papermill.exceptions import PapermillExecutionError

    nb = step.notebook
    src = to_ipynb(nb.path, out / "notebooks" / ".src" / f"{nb.name}.ipynb")
    dst = (prepare_to or out / "notebooks") / f"{nb.name}.ipynb"
    kw: dict[str, Any] = {}
    tmp, log, managers = dst, None, []
    if prepare_to is None:
        for stale in (dst, out / "metrics" / f"{nb.name}.json", out / "figures" / nb.name, out / "videos" / nb.name):
            shutil.rmtree(stale, ignore_errors=True) if stale.is_dir() else stale.unlink(missing_ok=True)
        tmp = dst.with_name(f".{dst.name}.tmp-{os.getpid()}-run.ipynb")
        log_path = out / "logs" / f"{nb.name}.log"
        log_path.parent.mkdir(parents=True, exist_ok=True)
        log = open(log_path, "wb")
        launch = {"stderr": log}
        if lock_fd is not None:
            launch["pass_fds"] = (lock_fd,)
        kw["kernel_manager_class"] = _kernel_manager(launch, managers)
    step.status = "running"
    _quiet_executors()
    t0 = time.perf_counter()
    try:
        papermill.execute_notebook(
            str(src), str(tmp), parameters=step.params, kernel_name=KERNEL, cwd=str(ROOT),
            prepare_only=prepare_to is not None, progress_bar=False, log_output=False,
            extra_arguments=["--IPKernelApp.log_level=ERROR"],  # not its warning about TCP on localhost
            **kw,
        )
    except PapermillExecutionError as e:
        step.status = "failed"
        first = next((ln.strip() for ln in (e.source or "").splitlines() if ln.strip() and not ln.startswith("#")), "")
        evalue = str(e.evalue).splitlines()[0] if e.evalue else ""
        if not evalue:    # a bare `assert`: say which line failed
            line = _failing_line(e.traceback)
            evalue = f"at `{line}`" if line else ""
        step.error = f"cell {e.exec_count} ({first[:60]}) raised {e.ename}: {evalue}"
    except KeyboardInterrupt:
        step.status = "interrupted"
        step.error = "interrupted (Ctrl-C)"
        raise
    except Exception as e:  # kernel died, notebook unreadable ...
        step.status = "failed"
        step.error = f"{type(e).__name__}: {str(e).splitlines()[0] if str(e) else ''}"
    else:
        step.status = "ok"
    finally:
        step.seconds = time.perf_counter() - t0
        _stop_kernels(managers)
        if tmp != dst and tmp.exists():
            os.replace(tmp, dst)
        if log is not None:
            log.close()
            if Path(log.name).stat().st_size == 0:
                Path(log.name).unlink()
                with contextlib.suppress(OSError):
                    Path(log.name).parent.rmdir()


def _failing_line(traceback: list[str] | None) -> str:
    """The source line IPython marks with an arrow in the innermost frame of ``traceback`` (colour codes
    removed), e.g. ``assert r2 > 0.3``; "" when there is none."""
    text = re.sub(r"\x1b\[[0-9;]*m", "", "\n".join(traceback or []))
    marked = re.findall(r"^-+> *\d+ (.*)$", text, flags=re.M)
    return marked[-1].strip()[:160] if marked else ""


def reproduce(preset: str | None, out: str | Path, only: list[str] | None = None, pairs: list[str] | None = None,
              files: list[str] | None = None, prepare_to: str | Path | None = None,
              nb_dir: Path = NOTEBOOK_DIR, resume: bool = False) -> tuple[bool, Path]:
    """The pipeline. Returns (success, report path). Validates everything before running anything.

    ``resume``: continue the run in ``out`` from its first unfinished notebook; ``preset``, ``only``,
    ``pairs`` and ``files`` may then be None (the run's own are used) and must match the run's when given.
    Ctrl-C raises ``RunInterrupted`` once ``run.json`` says ``interrupted``.
    """
    out = Path(out).expanduser().resolve()
    _check_out(out)
    prev = _resume_from(out, preset, only, pairs, files) if resume else None
    if prev is not None:
        preset, overrides = prev["preset"], prev["overrides"]
        only = list(prev["notebooks"])
    else:
        preset = "small" if preset is None else preset
        overrides = None
    if preset not in config.PRESETS:
        raise UserError(f"unknown preset {preset!r}: choose one of {', '.join(config.PRESETS)}")
    if overrides is None:
        overrides = parse_overrides(pairs, files)
    steps = plan(preset, out, overrides, select(discover(nb_dir), only), resume=resume)
    if not steps:
        raise UserError(f"no notebooks found in {nb_dir}")
    _check_kernel()
    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise UserError(f"cannot make the run folder {out}: {e.strerror}") from None
    started = dt.datetime.now().isoformat(timespec="seconds")
    meta = {"preset": preset, "overrides": overrides, "started": started, "command": " ".join(sys.argv)}
    if prepare_to is not None:
        prepare_to = Path(prepare_to).resolve()
        prepare_to.mkdir(parents=True, exist_ok=True)
        for step in steps:
            execute(step, out, prepare_to=prepare_to)
            if step.status != "ok":
                raise UserError(f"could not prepare {step.notebook.name}: {step.error}")
        print(f"prepared {len(steps)} notebooks in {_rel(prepare_to)} (run_dir {_rel(out)})")
        return True, prepare_to
    lock = _lock(out)
    try:
        last = read_run(out)
        if last is not None and last.get("state") == "running":   # its process died: the lock was free
            _mark_interrupted(out, last)
            print(f"note: the last run in {_rel(out)} (pid {last.get('pid', '?')}) stopped before it finished "
                  f"(killed?): marked interrupted{'' if resume else '; this run starts afresh (--resume would have continued it)'}")
        removed = clean_stale(out)
        if removed:
            print(f"removed {len(removed)} temporary file(s) a killed run left in {_rel(out)}")
        if prev is not None:
            meta["started"], meta["command"] = prev.get("started", started), prev.get("command", meta["command"])
            meta["resumed"] = list(prev.get("resumed", []))
            kept = _keep_finished(steps, out, last or prev)
            if kept == len(steps):
                print(f"every notebook of {_rel(out)} finished already: nothing to resume")
                meta["finished"] = (last or prev).get("finished") or started
                return True, write_report(out, steps, meta, state="complete")
            meta["resumed"].append(started)
        meta["pid"] = os.getpid()
        return _run_steps(out, steps, meta, lock)
    finally:
        if lock is not None:
            os.close(lock)


def _run_steps(out: Path, steps: list[Step], meta: dict, lock: int | None) -> tuple[bool, Path]:
    """Run the steps not yet ``ok``, in order, keeping ``run.json`` current; stop at the first failure."""
    n = len(steps)
    write_report(out, steps, meta, state="running")
    try:
        for i, step in enumerate(steps):
            if step.status == "ok":
                print(f"[{i + 1}/{n}] {step.notebook.name} finished in the run before: kept", flush=True)
                continue
            print(f"[{i + 1}/{n}] {step.notebook.name} ...", end=" ", flush=True)
            step.status = "running"
            write_report(out, steps, meta, state="running")
            execute(step, out, lock_fd=lock)
            print(f"{step.status} in {step.seconds:.0f} s", flush=True)
            if step.status == "failed":
                for later in steps[i + 1:]:
                    later.status = "not run"
                print(f"error: notebook {step.notebook.name} failed at {step.error}")
                print(f"       the executed notebook with the traceback: {out / 'notebooks' / (step.notebook.name + '.ipynb')}")
                break
            write_report(out, steps, meta, state="running")
    except KeyboardInterrupt:
        name = "?"
        for s in steps:
            if s.status == "running":
                s.status, s.error = "interrupted", "interrupted (Ctrl-C)"
            if s.status == "interrupted":
                name = s.notebook.name
            elif s.status == "pending":
                s.status = "not run"
        meta["finished"] = dt.datetime.now().isoformat(timespec="seconds")
        write_report(out, steps, meta, state="interrupted")
        print(flush=True)
        raise RunInterrupted(f"in {name}: {_rel(out)}/run.json says interrupted; continue with "
                             f"'python -m talklib reproduce --resume --out {_rel(out)}'") from None
    state = "complete" if all(s.status == "ok" for s in steps) else "FAILED"
    meta["finished"] = dt.datetime.now().isoformat(timespec="seconds")
    report = write_report(out, steps, meta, state=state)
    return state == "complete", report


# --- the run folder: lock, state, temporaries, resuming ---------------------------------------------

def read_run(out: Path) -> dict | None:
    """The run folder's ``run.json``, or None when it has none (or an unreadable one)."""
    try:
        meta = json.loads((Path(out) / "run.json").read_text())
    except (OSError, ValueError):
        return None
    return meta if isinstance(meta, dict) else None


def _rel(p: Path) -> str:
    """``p`` relative to the working folder when it lies inside it, else absolute."""
    try:
        rel = os.path.relpath(p)
    except ValueError:
        return str(p)
    return str(p) if rel.startswith("..") else rel


def _check_out(out: Path) -> None:
    """``--out`` must be a folder, or a path where one can be made."""
    if out.exists() and not out.is_dir():
        raise UserError(f"--out {_rel(out)} is a file, not a folder: give a folder for the run (it is made if missing)")
    for parent in out.parents:
        if parent.exists():
            if not parent.is_dir():
                raise UserError(f"--out {_rel(out)} lies under {_rel(parent)}, which is a file: give a folder path")
            if not out.exists() and not os.access(parent, os.W_OK | os.X_OK):
                raise UserError(f"--out {_rel(out)}: cannot make a folder in {_rel(parent)} (no permission)")
            break


def _lock(out: Path) -> int | None:
    """Lock the run folder (``flock`` on the folder itself, dropped when the holder dies); UserError when
    another process holds it. None where the system has no ``flock``."""
    try:
        import fcntl
    except ImportError:  # not POSIX: no lock, the pid in run.json is all there is
        return None
    fd = os.open(out, os.O_RDONLY)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError:
        os.close(fd)
        pid = (read_run(out) or {}).get("pid")
        if isinstance(pid, int) and not pid_alive(pid):
            raise UserError(f"run folder {_rel(out)} is still held by the notebook kernel of a killed run (pid {pid}): "
                            "it exits within seconds, try again then") from None
        raise UserError(f"run folder {_rel(out)} is in use by another reproduce (pid {pid or '?'}): wait for it to "
                        "end, stop it, or choose another --out") from None
    return fd


def in_use(out: Path) -> bool:
    """Whether a live run (or its kernel) holds the run folder ``out``'s lock."""
    try:
        fd = _lock(out)
    except UserError:
        return True
    except OSError:
        return False
    if fd is not None:
        os.close(fd)
    return False


def _mark_interrupted(out: Path, meta: dict) -> None:
    """Rewrite a dead run's ``run.json``: state and its running notebook ``interrupted``."""
    meta = dict(meta, state="interrupted")
    for nb in (meta.get("notebooks") or {}).values():
        if isinstance(nb, dict) and nb.get("status") == "running":
            nb["status"], nb["error"] = "interrupted", "its process was killed"
        elif isinstance(nb, dict) and nb.get("status") == "pending":
            nb["status"] = "not run"
    atomic_write_text(out / "run.json", json.dumps(meta, indent=2, default=str) + "\n")


def clean_stale(out: Path) -> list[Path]:
    """Remove the temporaries under the run folder whose writer is dead (the caller holds the folder's
    lock, so no live run writes there); returns what was removed."""
    removed = []
    for dirpath, dirnames, filenames in os.walk(out):
        for name in filenames + dirnames:
            m = _TEMP.match(name)
            if m is None or (m["pid"] is not None and pid_alive(int(m["pid"]))):
                continue
            p = Path(dirpath) / name
            if p.is_dir() and not p.is_symlink():
                shutil.rmtree(p, ignore_errors=True)
                dirnames.remove(name)
            else:
                p.unlink(missing_ok=True)
            removed.append(p)
    return removed


def _resume_from(out: Path, preset: str | None, only: list[str] | None, pairs: list[str] | None,
                 files: list[str] | None) -> dict:
    """The run.json of the run to resume, checked against what the command line gives."""
    prev = read_run(out)
    if prev is None:
        why = "has no run.json" if out.is_dir() else "does not exist"
        raise UserError(f"nothing to resume: {_rel(out)} {why}; start the run without --resume")
    if not isinstance(prev.get("notebooks"), dict) or prev.get("preset") not in config.PRESETS:
        raise UserError(f"{_rel(out)}/run.json is not a talklib run's: start afresh without --resume")
    prev["overrides"] = config.validate(prev.get("overrides") or {})
    if preset is not None and preset != prev["preset"]:
        raise UserError(f"run {_rel(out)} was made with --preset {prev['preset']}, not {preset}: "
                        f"--resume continues it as it was (drop --preset), or start afresh without --resume")
    if pairs or files:
        given = parse_overrides(pairs, files)
        if given != prev["overrides"]:
            raise UserError(f"run {_rel(out)} was made with {_fmt_overrides(prev['overrides'])}, not "
                            f"{_fmt_overrides(given)}: --resume continues it as it was (drop -p/-f), or start "
                            "afresh without --resume")
    if only:
        try:
            wanted = [nb.name for nb in select([Notebook(n[:2], n, Path(n), {}) for n in prev["notebooks"]], only)]
        except UserError:
            wanted = None
        if wanted != list(prev["notebooks"]):
            raise UserError(f"run {_rel(out)} ran notebooks {', '.join(n[:2] for n in prev['notebooks'])}: "
                            "--resume continues them (drop --only), or start afresh without --resume")
    return prev


def _fmt_overrides(overrides: dict) -> str:
    return " ".join(f"-p {k}={v}" for k, v in overrides.items()) or "no overrides"


def _keep_finished(steps: list[Step], out: Path, prev: dict) -> int:
    """Mark ``ok`` the leading steps the previous run finished (with their executed notebook); return how many."""
    done = prev.get("notebooks") or {}
    kept = 0
    for step in steps:
        was = done.get(step.notebook.name) or {}
        if was.get("status") != "ok" or not (out / "notebooks" / f"{step.notebook.name}.ipynb").is_file():
            break
        step.status, step.seconds = "ok", was.get("seconds")
        kept += 1
    return kept


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
    """The checkout's commit, with ``-dirty`` when tracked files differ from it (a copied working tree, such as
    the GPU machine's, can carry an older commit's history under newer files)."""
    try:
        return subprocess.run(["git", "describe", "--always", "--dirty", "--abbrev=7", "--exclude=*"], cwd=ROOT,
                              capture_output=True, text=True, check=True).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return None


def _banner(state: str) -> str:
    return {"complete": "Run complete.",
            "running": "RUNNING — this report is incomplete.",
            "FAILED": "RUN FAILED — the numbers below are incomplete.",
            "interrupted": "INTERRUPTED — the numbers below are incomplete; reproduce --resume continues the run."
            }.get(state, state)


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


def _scorecard_md(out: Path) -> str | None:
    """The run's scorecard (notebook 10 writes ``scorecard.md``), which heads its report; None before it exists."""
    p = out / "scorecard.md"
    return p.read_text() if p.is_file() else None


def _markdown_html(text: str) -> str:
    """Markdown (with tables) as HTML, through markdown-it (Jupyter Book's parser, installed with it)."""
    from markdown_it import MarkdownIt

    return MarkdownIt("commonmark").enable("table").render(text)


def _report_md(out: Path, steps: list[Step], meta: dict, metrics: dict) -> str:
    lines = [f"# talklib run `{out.name}`", "", f"**{_banner(meta['state'])}**", "",
             f"preset `{meta['preset']}` · overrides `{json.dumps(meta['overrides'])}` · started {meta['started']}"
             f" · git {meta['git']}", ""]
    card = _scorecard_md(out)
    if card:
        lines += ["#" + card if card.startswith("# ") else card, ""]      # its title one level under the run's
    lines += ["| notebook | status | seconds |", "|---|---|---|"]
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
    colour = {"complete": "#1a7f37", "running": "#9a6700", "FAILED": "#cf222e",
              "interrupted": "#cf222e"}.get(meta["state"], "#555")
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
    ]
    card = _scorecard_md(out)
    if card:
        parts.append(f"<section id='scorecard'>{_markdown_html(card)}</section><h2>Notebooks</h2>")
    parts.append("<table><tr><th>notebook</th><th>status</th><th>seconds</th></tr>")
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
    p.add_argument("--preset", default=None, help="small (2 CPU cores, minutes; the default) or full (one GPU)")
    p.add_argument("--out", default=None, help="run folder (default runs/PRESET)")
    p.add_argument("--resume", action="store_true",
                   help="continue the run in --out from its first unfinished notebook (same preset and overrides)")
    p.add_argument("--notebooks", default=None, metavar="DIR", help="folder of the NN_name.py notebooks (default notebooks/)")
    p.add_argument("--only", nargs="+", metavar="NN", help="run only these notebooks, e.g. --only 01 03")
    p.add_argument("-p", dest="pairs", action="append", metavar="NAME=VALUE", help="override a parameter")
    p.add_argument("-f", dest="files", action="append", metavar="PARAMS.yaml", help="parameters from a YAML file")
    p.add_argument("--prepare-only", metavar="DIR", default=None,
                   help="only write the parameterised notebooks to DIR, without running them (for nbval)")


def run(args) -> int:
    out = args.out or f"runs/{args.preset or 'small'}"
    nb_dir = NOTEBOOK_DIR
    if args.notebooks is not None:
        nb_dir = Path(args.notebooks)
        if not nb_dir.is_dir():
            raise UserError(f"--notebooks {args.notebooks} is not a folder: give the folder of NN_name.py notebooks")
    if args.resume and args.prepare_only:
        raise UserError("--resume continues a run; --prepare-only runs nothing: use one of them")
    ok, report = reproduce(args.preset, out, args.only, args.pairs, args.files, args.prepare_only,
                           nb_dir=nb_dir, resume=args.resume)
    if args.prepare_only:
        return 0
    print(f"report: {_rel(report)}")
    return 0 if ok else 1
