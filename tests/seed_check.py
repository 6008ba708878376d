"""The asserted claims of notebooks 02 to 06 hold for a second seed too (not only the preset's seed 0).

Run by ``make test`` after the notebook tests (not collected with the unit tests: it trains for minutes).
Seed 1 is another synthetic speaker (built in ``data/synthetic/small-seed1`` when missing) and another
initialisation of every network, so a change that leaves a claim depending on luck fails here in CI instead of
on a user's machine. The figures of all seeds are in ``benchmarks/small_preset_seeds.md``. Notebooks 08 and 09
are not re-run here, to keep ``make test`` within its 30 minutes: their asserts hold over seeds 0-4 (08) and
0-2 (09) with wide margins there (08's smallest is +0.28 on a ratio; 09's are geometry and identity, not
training luck); ``python benchmarks/small_preset_seeds.py --seeds 1`` re-runs every notebook with seed 1.
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


def test_notebooks_02_to_06_hold_for_another_seed():
    shutil.rmtree(RUN, ignore_errors=True)
    cmd = [sys.executable, "-m", "talklib", "reproduce", "--preset", "small", "--only", "02", "03", "04", "05", "06",
           "--out", str(RUN), "-p", f"seed={SEED}"]
    done = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True)
    assert done.returncode == 0, f"seed {SEED}: {' '.join(cmd[2:])} failed:\n{done.stdout[-3000:]}\n{done.stderr[-3000:]}"
    run = json.loads((RUN / "run.json").read_text())
    assert [nb["status"] for nb in run["notebooks"].values()] == ["ok"] * 5, run["notebooks"]
