"""The asserted claims of notebooks 02 and 04 hold for a second seed too (not only the preset's seed 0).

Run by ``make test`` after the notebook tests (not collected with the unit tests: it trains for minutes).
Seed 1 is another synthetic speaker (built in ``data/synthetic/small-seed1`` when missing) and another
initialisation of every network, so a change that leaves a claim depending on luck fails here in CI instead of
on a user's machine. The figures of all seeds are in ``benchmarks/small_preset_seeds.md``. 02 and 04 are the
notebooks whose claims once failed on another machine (issue 13). Notebook 03 was re-run here too until notebook
10, the live tests and the book's browser checks brought ``make test`` to its 30 minutes (2026-12-07); its asserts
hold over seeds 0-4 with the margins recorded there, as do those of 06 to 09 (09: 0-2; 06's smallest +0.10, 08's
+0.28; 09's are geometry and identity); 05 and 10 assert no trained figure.
``python benchmarks/small_preset_seeds.py --seeds 1`` re-runs every notebook.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys

from talklib.pipeline import ROOT

SEED = int(os.environ.get("TALKLIB_CHECK_SEED", "1"))
RUN = ROOT / "runs" / f"seedcheck{SEED}"


def test_notebooks_02_and_04_hold_for_another_seed():
    shutil.rmtree(RUN, ignore_errors=True)
    cmd = [sys.executable, "-m", "talklib", "reproduce", "--preset", "small", "--only", "02", "04",
           "--out", str(RUN), "-p", f"seed={SEED}"]
    done = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True)
    assert done.returncode == 0, f"seed {SEED}: {' '.join(cmd[2:])} failed:\n{done.stdout[-3000:]}\n{done.stderr[-3000:]}"
    run = json.loads((RUN / "run.json").read_text())
    assert [nb["status"] for nb in run["notebooks"].values()] == ["ok"] * 2, run["notebooks"]
