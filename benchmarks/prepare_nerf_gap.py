"""Issue 19's "within 1 dB" check as one command: a NeRF trained on a prepared phone video against one trained on
the ground-truth clip it was made from.

    python benchmarks/prepare_nerf_gap.py [--clip data/synthetic/small/clips/id00_train] [--seeds 0,1,2]
        [--out /tmp/prep_gap] [-p name=value ...]

The clip's frames and sound become a phone-style video (``phone_style``: 30 fps, 720x1280 portrait, letterboxed,
H.264 CRF 28 + AAC), ``prepare`` turns it back into a dataset, and for each seed ``train --conditions f_exp:12,f_illu
--preset small`` fits one NeRF on each folder. Each is scored by ``train`` on its own folder's held-out frames (the
last 1/11). Prints one JSON line per seed (both PSNRs and the gap) and the mean gap; the target is a gap <= 1 dB.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np

CONDITIONS = "f_exp:12,f_illu"


def train(data: Path, out: Path, seed: int, pairs: list[str]) -> float:
    """Held-out PSNR (dB) of a NeRF ``train`` fits on the dataset folder ``data``."""
    from talklib.cli import main as cli
    from talklib.train import SUMMARY

    args = ["train", "--data", str(data), "--conditions", CONDITIONS, "--out", str(out), "--preset", "small",
            "-p", f"seed={seed}", "--force"]
    for pair in pairs:
        args += ["-p", pair]
    assert cli(args) == 0, f"train failed on {data}"
    return float(json.loads((out / SUMMARY).read_text())["heldout_psnr"])


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--clip", default="data/synthetic/small/clips/id00_train")
    ap.add_argument("--seeds", default="0,1,2")
    ap.add_argument("--out", default="/tmp/prep_gap")
    ap.add_argument("-p", dest="pairs", action="append", default=[], metavar="NAME=VALUE",
                    help="a parameter for both trainings, e.g. nerf_steps=600")
    args = ap.parse_args()
    from talklib.cli import main as cli
    from talklib.data.dataset import load_clip
    from talklib.prepare.video import phone_style

    truth = load_clip(args.clip)
    root = Path(args.out)
    video = phone_style(truth.frames(), truth.audio(), root / "phone.mp4")
    prepared = root / "prepared"
    assert cli(["prepare", "--video", str(video), "--out", str(prepared), "--size", str(truth.size[0]), "--force",
                "--quiet"]) == 0
    gaps = []
    for seed in (int(s) for s in args.seeds.split(",")):
        gt = train(truth.path, root / f"gt{seed}", seed, args.pairs)
        prep = train(prepared, root / f"prep{seed}", seed, args.pairs)
        gaps.append(gt - prep)
        print(json.dumps({"seed": seed, "ground_truth_db": round(gt, 2), "prepared_db": round(prep, 2),
                          "gap_db": round(gt - prep, 2)}), flush=True)
    print(json.dumps({"clip": str(truth.path), "seeds": args.seeds, "mean_gap_db": round(float(np.mean(gaps)), 2),
                      "max_gap_db": round(float(np.max(gaps)), 2), "target_db": 1.0}))


if __name__ == "__main__":
    main()
