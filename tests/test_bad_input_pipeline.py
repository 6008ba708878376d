"""The pipeline and the book on bad input, Ctrl-C and kill -9: one-line errors, nothing left behind.

The runs here use tiny notebooks (``reproduce --notebooks DIR``) so that each takes a second or two.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

from talklib import config
from talklib.book import finished, stage
from talklib.errors import UserError
from talklib.pipeline import ROOT, clean_stale, discover, in_use, read_run

from tests.test_pipeline import HEADER, one_line_error, talklib


def _nb(folder: Path, name: str, params: str, body: str) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    (folder / f"{name}.py").write_text(HEADER + f'\n# %% tags=["parameters"]\n{params}\n\n# %%\n' + textwrap.dedent(body))


def _left_behind(out: Path) -> list[str]:
    """Temporaries anywhere under a run folder (a dot name with tmp-, building- or old-)."""
    return [str(p) for p in out.rglob(".*") if any(k in p.name for k in (".tmp", ".building-", ".old-"))]


def _wait(cond, seconds: float = 30.0) -> None:
    t0 = time.monotonic()
    while not cond():
        assert time.monotonic() - t0 < seconds, "timed out"
        time.sleep(0.1)


def _status(out: Path, name: str) -> str | None:
    return ((read_run(out) or {}).get("notebooks") or {}).get(name, {}).get("status")


def _start(*args: str) -> subprocess.Popen:
    """``python -m talklib ARGS`` in its own process group (as a terminal's foreground job is)."""
    return subprocess.Popen([sys.executable, "-m", "talklib", *args], cwd=ROOT, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, start_new_session=True)


# --- parameters: ranges and forms, before anything runs -----------------------------------------

def test_every_parameter_has_a_rule_that_both_presets_satisfy():
    assert set(config.RULES) == set(config.names())
    for preset in config.PRESETS:
        values = config.preset(preset)
        for name, value in values.items():
            assert config.rule(name).ok(value), f"{preset} preset: {name} = {value!r} breaks {config.rule(name).form}"
        config.check_together(values)
        assert config.validate(values) == values


def test_the_view_names_are_the_speakers():
    from talklib.speaker.clip import VIEW_ANGLES

    assert set(config.VIEW_NAMES) == set(VIEW_ANGLES)


@pytest.mark.parametrize(
    "pair, words",
    [
        ("nerf_steps=-5", ["parameter nerf_steps must be a whole number from 1 to", "not -5"]),
        ("nerf_size=100000", ["parameter nerf_size must be a whole number from 16 to 2048", "not 100000"]),
        ("nerf_plane_res=abc", ["parameter nerf_plane_res must be 1 to 8 comma-separated whole numbers", "'abc'"]),
        ("nerf_plane_res=16,0,64", ["parameter nerf_plane_res must be", "'16,0,64'"]),
        ("nerf_upsample=3", ["parameter nerf_upsample must be one of 1, 2, 4, 8, 16", "not 3"]),
        ("nerf_size=65", ["nerf_size (65) must be a multiple of nerf_upsample (2)"]),
        ("nerf_lr=nan", ["parameter nerf_lr must be a number from", "not nan"]),
        ("seed=-3", ["parameter seed must be a whole number from 0 to", "not -3"]),
        ("sync_loss=l2", ["parameter sync_loss must be one of cosine, triplet, both", "'l2'"]),
        ("synth_views=yaw_m30,sideways", ["parameter synth_views must be", "yaw_m30", "'yaw_m30,sideways'"]),
        ("sync_eval_shifts=3,,5", ["parameter sync_eval_shifts must be", "'3,,5'"]),
        ("device=gpu", ["parameter device must be auto, cpu, cuda or cuda:N", "'gpu'"]),
        ("audio_f0_min=500", ["audio_f0_min (500) must be below audio_f0_max (400)"]),
        ("data_dir=", ["parameter data_dir must be a folder path"]),
        ("resume=true", ["parameter resume is set with --resume"]),
    ],
)
def test_parameters_out_of_range_are_refused_in_one_line_before_a_run_folder_is_made(tmp_path, pair, words):
    out = tmp_path / "run"
    line = one_line_error(talklib("reproduce", "--out", str(out), "-p", pair))
    for w in words:
        assert w in line, line
    assert not out.exists()


def test_yaml_values_are_range_checked_too(tmp_path):
    f = tmp_path / "p.yaml"
    f.write_text("nerf_occ_res: 100000\n")
    out = tmp_path / "run"
    assert "parameter nerf_occ_res must be a whole number from 4 to 512" in one_line_error(
        talklib("reproduce", "--out", str(out), "-f", str(f)))
    assert not out.exists()


# --- the run folder ------------------------------------------------------------------------------

def test_out_naming_a_file_is_refused_and_the_file_kept(tmp_path):
    f = tmp_path / "notes.txt"
    f.write_text("mine\n")
    assert "--out" in one_line_error(talklib("reproduce", "--out", str(f))) and "is a file" in \
        one_line_error(talklib("reproduce", "--out", str(f)))
    assert "which is a file" in one_line_error(talklib("reproduce", "--out", str(f / "sub")))
    assert f.read_text() == "mine\n" and sorted(tmp_path.iterdir()) == [f]


def test_resume_needs_a_run_and_the_same_settings(tmp_path):
    out = tmp_path / "run"
    assert "nothing to resume" in one_line_error(talklib("reproduce", "--resume", "--out", str(out)))
    assert not out.exists()
    out.mkdir()
    meta = {"preset": "small", "overrides": {"seed": 1}, "state": "interrupted",
            "notebooks": {"01_a": {"status": "ok"}, "02_b": {"status": "interrupted"}}}
    (out / "run.json").write_text(json.dumps(meta))
    before = sorted(out.rglob("*"))
    line = one_line_error(talklib("reproduce", "--resume", "--out", str(out), "-p", "seed=2"))
    assert "was made with -p seed=1, not -p seed=2" in line
    assert "was made with --preset small, not full" in one_line_error(
        talklib("reproduce", "--resume", "--out", str(out), "--preset", "full"))
    assert "ran notebooks 01, 02" in one_line_error(talklib("reproduce", "--resume", "--out", str(out), "--only", "02"))
    assert sorted(out.rglob("*")) == before and json.loads((out / "run.json").read_text()) == meta


def test_stale_temporaries_of_dead_writers_are_removed_and_live_ones_kept(tmp_path):
    gone = subprocess.Popen([sys.executable, "-c", "pass"])
    gone.wait()
    (tmp_path / "notebooks").mkdir()
    (tmp_path / "checkpoints" / "nerf03").mkdir(parents=True)
    dead = [tmp_path / "notebooks" / f".03_x.ipynb.tmp-{gone.pid}-run.ipynb",
            tmp_path / "checkpoints" / "nerf03" / f".nerf.pt.tmp-{gone.pid}-abcd1234",
            tmp_path / ".run.json.k2j4h5g6.tmp"]
    live = [tmp_path / f".report.md.tmp-{os.getpid()}-zzzz", tmp_path / "notebooks" / "03_x.ipynb"]
    for p in dead + live:
        p.write_text("x")
    (tmp_path / f".frames.building-{gone.pid}").mkdir()
    removed = clean_stale(tmp_path)
    assert sorted(removed) == sorted(dead + [tmp_path / f".frames.building-{gone.pid}"])
    assert all(p.exists() for p in live) and not any(p.exists() for p in dead)


# --- Ctrl-C and kill -9 ---------------------------------------------------------------------------

def test_ctrl_c_gives_one_line_and_marks_the_run_interrupted(tmp_path):
    nbs, out = tmp_path / "nbs", tmp_path / "run"
    _nb(nbs, "01_slow", 'run_dir = "x"', 'import time\nopen(run_dir + "/in_cell", "w").close()\ntime.sleep(120)\n')
    _nb(nbs, "02_after", 'run_dir = "x"', "a = 1\n")
    job = _start("reproduce", "--notebooks", str(nbs), "--out", str(out))
    try:
        # wait until the kernel is inside the slow cell (on a busy machine it can take long to start)
        _wait(lambda: _status(out, "01_slow") == "running" and (out / "in_cell").is_file(), 120)
        time.sleep(0.5)
        line = one_line_error(talklib("reproduce", "--notebooks", str(nbs), "--out", str(out)))
        assert f"run folder {out} is in use by another reproduce (pid {job.pid})" in line
        os.killpg(job.pid, signal.SIGINT)
        _, err = job.communicate(timeout=120)
    finally:
        if job.poll() is None:
            os.killpg(job.pid, signal.SIGKILL)
    assert job.returncode == 130, err
    lines = [ln for ln in err.splitlines() if ln.strip()]
    assert len(lines) == 1 and lines[0].startswith("error: interrupted in 01_slow"), err
    assert "--resume" in lines[0]
    meta = read_run(out)
    assert meta["state"] == "interrupted"
    assert meta["notebooks"]["01_slow"]["status"] == "interrupted"
    assert meta["notebooks"]["02_after"]["status"] == "not run"
    assert "INTERRUPTED" in (out / "report.md").read_text()
    assert (out / "notebooks" / "01_slow.ipynb").is_file() and not _left_behind(out)
    _wait(lambda: not in_use(out), 30)  # the kernel is gone too


def test_kill_9_is_detected_and_resume_continues_from_the_unfinished_notebook(tmp_path):
    nbs, out = tmp_path / "nbs", tmp_path / "run"
    _nb(nbs, "01_first", 'run_dir = "x"', 'open(run_dir + "/ran01", "a").write("x")\n')
    _nb(nbs, "02_train", 'run_dir = "x"\nresume = False', '''\
        import pathlib, time
        ck = pathlib.Path(run_dir, "ckpt")
        if ck.exists() and not resume:
            ck.unlink()  # a fresh run starts fresh
        start = int(ck.read_text()) if ck.exists() else 0
        pathlib.Path(run_dir, "started_at").write_text(str(start))
        for step in range(start, 3):
            ck.write_text(str(step + 1))
            time.sleep(0 if resume else 60)
        ''')
    _nb(nbs, "03_last", 'run_dir = "x"', 'open(run_dir + "/ran03", "a").write("x")\n')
    job = _start("reproduce", "--notebooks", str(nbs), "--out", str(out), "-p", "seed=4")
    try:
        _wait(lambda: (out / "ckpt").is_file())
        os.kill(job.pid, signal.SIGKILL)
        job.communicate(timeout=30)
    finally:
        if job.poll() is None:
            os.killpg(job.pid, signal.SIGKILL)
    assert read_run(out)["state"] == "running" and _status(out, "02_train") == "running"
    assert _left_behind(out), "the killed run's executed notebook is still under its temporary name"
    _wait(lambda: not in_use(out), 15)  # its kernel notices its parent is gone within a second or two
    done = talklib("reproduce", "--notebooks", str(nbs), "--out", str(out), "--resume")
    assert done.returncode == 0, done.stderr + done.stdout
    assert "stopped before it finished (killed?): marked interrupted" in done.stdout
    assert "01_first finished in the run before: kept" in done.stdout
    assert (out / "ran01").read_text() == "x", "notebook 01 is not run again"
    assert (out / "started_at").read_text() == "1", "notebook 02 continued from its checkpoint"
    assert (out / "ran03").read_text() == "x"
    meta = read_run(out)
    assert meta["state"] == "complete" and meta["overrides"] == {"seed": 4} and len(meta["resumed"]) == 1
    assert all(nb["status"] == "ok" for nb in meta["notebooks"].values())
    assert not _left_behind(out)
    again = talklib("reproduce", "--notebooks", str(nbs), "--out", str(out), "--resume")
    assert again.returncode == 0 and "nothing to resume" in again.stdout
    assert read_run(out)["resumed"] == meta["resumed"] and read_run(out)["state"] == "complete"


def test_a_fresh_run_after_a_kill_says_so_and_starts_afresh(tmp_path):
    out = tmp_path / "run"
    nbs = tmp_path / "nbs"
    _nb(nbs, "01_a", 'run_dir = "x"\nresume = False', 'open(run_dir + "/resume", "w").write(str(resume))\n')
    out.mkdir()
    (out / "run.json").write_text(json.dumps({"preset": "small", "overrides": {}, "state": "running", "pid": 2**22 + 7,
                                              "notebooks": {"01_a": {"status": "running"}}}))
    done = talklib("reproduce", "--notebooks", str(nbs), "--out", str(out))
    assert done.returncode == 0, done.stderr
    assert "(pid 4194311) stopped before it finished" in done.stdout and "--resume would have continued it" in done.stdout
    assert (out / "resume").read_text() == "False" and read_run(out)["state"] == "complete"


# --- the book ----------------------------------------------------------------------------------------

def test_book_of_a_missing_run_is_refused_in_one_line(tmp_path):
    missing = tmp_path / "runs" / "smal"
    line = one_line_error(talklib("book", "--run", str(missing)))
    assert f"no run folder {missing}" in line
    assert not (tmp_path / "runs").exists()
    plain = tmp_path / "plain"
    plain.mkdir()
    assert "is not a run folder" in one_line_error(talklib("book", "--run", str(plain)))


def _fake_run(tmp_path: Path, statuses: dict[str, str]) -> Path:
    run = tmp_path / "run"
    (run / "notebooks").mkdir(parents=True)
    nbs = {}
    for nb in discover():
        status = statuses.get(nb.name, "ok")
        nbs[nb.name] = {"status": status, "error": "cell 14 (assert x) raised AssertionError: " if status == "failed" else None}
        if status in ("ok", "failed"):
            (run / "notebooks" / f"{nb.name}.ipynb").write_text(json.dumps({"cells": [], "metadata": {}}))
    (run / "run.json").write_text(json.dumps({"preset": "small", "overrides": {}, "state": "FAILED", "notebooks": nbs}))
    return run


def test_book_builds_only_from_finished_notebooks_or_says_which_failed(tmp_path):
    names = [nb.name for nb in discover()]
    run = _fake_run(tmp_path, {names[2]: "failed", names[3]: "not run"})
    book = tmp_path / "book"
    with pytest.raises(UserError, match=rf"did not finish {names[2][:2]} \(failed: cell 14 .*\), {names[3][:2]} \(not run\)"):
        stage(run, book)
    assert not book.exists()
    line = one_line_error(talklib("book", "--run", str(run)))
    assert "did not finish" in line and "--partial" in line
    staged = stage(run, book, partial=True)
    assert staged == [n for n in names if n not in (names[2], names[3])]
    toc = (book / "_toc.yml").read_text()
    assert names[2] not in toc and names[0] in toc
    assert sorted(p.stem for p in (book / "notebooks").iterdir()) == sorted(staged)


def test_book_judges_notebooks_without_a_run_json_by_their_errors(tmp_path):
    run = tmp_path / "nbval"
    (run / "notebooks").mkdir(parents=True)
    names = [nb.name for nb in discover()]
    for n in names:
        outputs = [{"output_type": "error", "ename": "AssertionError"}] if n == names[1] else []
        (run / "notebooks" / f"{n}.ipynb").write_text(json.dumps({"cells": [{"cell_type": "code", "outputs": outputs}],
                                                                 "metadata": {}}))
    done, left = finished(run)
    assert left == {names[1]: "failed"} and done == [n for n in names if n != names[1]]
