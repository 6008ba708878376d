"""The pipeline: validation before running, failure reporting, determinism, the notebooks' parameters."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from talklib import config
from talklib.errors import UserError
from talklib.pipeline import ROOT, discover, parameters_cell, reproduce

HEADER = textwrap.dedent('''\
    # ---
    # jupyter:
    #   kernelspec:
    #     display_name: talklib
    #     language: python
    #     name: talklib
    # ---
    ''')


def talklib(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "talklib", *args], cwd=ROOT, capture_output=True, text=True)


def one_line_error(done: subprocess.CompletedProcess) -> str:
    assert done.returncode == 2, done.stderr
    lines = [ln for ln in done.stderr.splitlines() if ln.strip()]
    assert len(lines) == 1, done.stderr
    assert lines[0].startswith("error: ")
    return lines[0]


@pytest.mark.parametrize(
    "args, words",
    [
        (["--preset", "medium"], ["unknown preset 'medium'", "small", "full"]),
        (["-p", "no_such=1"], ["unknown parameter 'no_such'", "seed"]),
        (["-p", "seed=abc"], ["parameter seed takes a int", "'abc'"]),
        (["-p", "seed"], ["-p takes name=value"]),
        (["--only", "99"], ["unknown notebook 99", "00"]),
        (["-p", "preset=full"], ["parameter preset is set with --preset"]),
        (["-f", "no/such/file.yaml"], ["parameter file no/such/file.yaml does not exist"]),
    ],
)
def test_bad_input_is_refused_before_anything_runs(tmp_path, args, words):
    out = tmp_path / "run"
    line = one_line_error(talklib("reproduce", "--out", str(out), *args))
    for w in words:
        assert w in line
    assert not out.exists(), "nothing is written when the input is refused"


def test_yaml_parameter_files_are_checked(tmp_path):
    bad = tmp_path / "bad.yaml"
    bad.write_text("seed: [1, 2]\n")
    assert "parameter seed takes a int, not list" in one_line_error(talklib("reproduce", "-f", str(bad)))
    listy = tmp_path / "list.yaml"
    listy.write_text("- 1\n- 2\n")
    assert "must be a mapping" in one_line_error(talklib("reproduce", "-f", str(listy)))


def test_config_types_and_presets():
    assert config.preset("small")["preset"] == "small" and config.preset("full")["preset"] == "full"
    assert config.parse_value("seed", "3") == 3
    assert config.validate({"seed": 4}) == {"seed": 4}
    with pytest.raises(UserError):
        config.validate({"seed": True})
    with pytest.raises(UserError):
        config.preset("tiny")


def test_every_notebook_reads_only_schema_parameters_with_small_defaults():
    small = config.preset("small")
    notebooks = discover()
    assert notebooks[0].name == "00_overview"
    for nb in notebooks:
        for name, default in nb.defaults.items():
            assert name in small, f"{nb.name}: parameter {name} is not in talklib/config.py"
            if name not in ("run_dir", "data_dir"):
                assert default == small[name], f"{nb.name}: {name} = {default!r} but the small preset says {small[name]!r}"


def _write_nb(folder: Path, name: str, body: str) -> None:
    (folder / f"{name}.py").write_text(HEADER + '\n# %% tags=["parameters"]\nrun_dir = "x"\nseed = 0\n\n' + body)


def test_a_failing_notebook_stops_the_run_and_the_report_says_so(tmp_path):
    nbs = tmp_path / "nbs"
    nbs.mkdir()
    _write_nb(nbs, "01_fine", "# %%\nfrom talklib.outputs import write_metrics\nwrite_metrics(run_dir, '01_fine', {'x': 1})\n")
    _write_nb(nbs, "02_broken", "# %%\na = 1\n\n# %%\nraise ValueError('the model diverged')\n")
    _write_nb(nbs, "03_later", "# %%\nb = 2\n")
    out = tmp_path / "run"
    ok, report = reproduce("small", out, nb_dir=nbs)
    assert not ok
    meta = json.loads((out / "run.json").read_text())
    assert meta["state"] == "FAILED"
    assert meta["notebooks"]["01_fine"]["status"] == "ok"
    assert meta["notebooks"]["02_broken"]["status"] == "failed"
    assert "ValueError: the model diverged" in meta["notebooks"]["02_broken"]["error"]
    # execution count 4: parameters, injected parameters, `a = 1`, then the failing cell
    assert "cell 4 (raise ValueError('the model diverged'))" in meta["notebooks"]["02_broken"]["error"]
    assert meta["notebooks"]["03_later"]["status"] == "not run"
    html = report.read_text()
    assert "RUN FAILED" in html and "Run complete" not in html
    assert "RUN FAILED" in (out / "report.md").read_text()
    assert json.loads((out / "metrics" / "01_fine.json").read_text())["metrics"] == {"x": 1}


def test_a_bare_assert_that_fails_is_named_by_its_line(tmp_path):
    nbs = tmp_path / "nbs"
    nbs.mkdir()
    _write_nb(nbs, "01_bare", "# %%\nx = 0.2\nassert x > 0.3\n")
    ok, _ = reproduce("small", tmp_path / "run", nb_dir=nbs)
    assert not ok
    error = json.loads((tmp_path / "run" / "run.json").read_text())["notebooks"]["01_bare"]["error"]
    assert error.endswith("raised AssertionError: at `assert x > 0.3`"), error


def test_two_runs_with_one_seed_give_identical_metrics(tmp_path):
    nbs = tmp_path / "nbs"
    nbs.mkdir()
    _write_nb(nbs, "01_train", textwrap.dedent('''\
        # %%
        import torch
        from talklib.notebook import setup
        from talklib.outputs import write_metrics
        dev = setup(seed, "cpu", run_dir)
        x = torch.randn(256, 8)
        y = x @ torch.randn(8, 1) + 0.1 * torch.randn(256, 1)
        net = torch.nn.Sequential(torch.nn.Linear(8, 32), torch.nn.ReLU(), torch.nn.Linear(32, 1))
        opt = torch.optim.Adam(net.parameters(), 1e-2)
        for _ in range(50):
            loss = ((net(x) - y) ** 2).mean()
            opt.zero_grad(); loss.backward(); opt.step()
        write_metrics(run_dir, "01_train", {"loss": loss.item()})
        '''))
    runs = []
    for k in range(2):
        ok, _ = reproduce("small", tmp_path / f"run{k}", nb_dir=nbs, pairs=["seed=7"])
        assert ok
        runs.append(json.loads((tmp_path / f"run{k}" / "metrics" / "01_train.json").read_text())["metrics"])
    assert runs[0] == runs[1]
    ok, _ = reproduce("small", tmp_path / "run_other", nb_dir=nbs, pairs=["seed=8"])
    other = json.loads((tmp_path / "run_other" / "metrics" / "01_train.json").read_text())["metrics"]
    assert other != runs[0]


def test_parameters_cell_is_read_from_the_percent_file(tmp_path):
    f = tmp_path / "07_x.py"
    f.write_text(HEADER + '# %% [markdown]\n# hi\n\n# %% tags=["parameters"]\nseed = 3\nrun_dir = "a"\n\n# %%\nz = 1\n')
    assert parameters_cell(f) == {"seed": 3, "run_dir": "a"}
    g = tmp_path / "08_y.py"
    g.write_text(HEADER + "# %%\nseed = 3\n")
    with pytest.raises(UserError, match="no cell tagged parameters"):
        parameters_cell(g)


def test_the_kernel_is_registered_inside_the_venv():
    from jupyter_client.kernelspec import KernelSpecManager

    spec = KernelSpecManager().get_kernel_spec("talklib")
    assert Path(spec.resource_dir).resolve().is_relative_to(Path(sys.prefix).resolve())
    assert Path(spec.argv[0]).resolve() == Path(sys.executable).resolve()


def test_notebooks_pair_with_ipynb_and_use_the_talklib_kernel():
    for nb in discover():
        head = nb.path.read_text().split("# ---", 2)[1]
        assert "formats: ipynb,py:percent" in head, f"{nb.path.name}: pair with ipynb (jupytext.toml) for Lab"
        assert "name: talklib" in head, f"{nb.path.name}: the kernelspec must be talklib"
