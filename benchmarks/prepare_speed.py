"""How fast and how right ``python -m talklib prepare`` is, on a phone-style video of the synthetic speaker.

    taskset -c 0,1 python benchmarks/prepare_speed.py [--identities 0,2] [--sizes 128,512] [--loops 1]
        [--out /tmp/prep_bench]

For each identity: renders a synthetic clip (``synth --text``, 128 px, about 8 s), turns it into a phone-style
video (30 fps, 720x1280 portrait, the picture letterboxed, H.264 at CRF 28, AAC), prepares it at each size,
and scores the result against the ground truth (``talklib.prepare.accuracy.compare``). Prints one JSON line per
run: frames, seconds (the whole command, imports included), frames per second, and the accuracy figures.
The issue's targets: >= 25 frames/s at 512² on 2 CPU cores; rotation error median <= 1.5 deg.
"""

from __future__ import annotations

import argparse
import json
import platform
import time
from pathlib import Path

import numpy as np
import torch

TEXT = ("The quick brown fox jumps over the lazy dog. A stitch in time saves nine, "
        "and the early bird catches the worm today.")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--identities", default="0,2")
    ap.add_argument("--sizes", default="128,512")
    ap.add_argument("--out", default="/tmp/prep_bench")
    ap.add_argument("--loops", type=int, default=1,
                    help="play the clip this many times in a row (a longer video: the fixed costs spread thinner)")
    args = ap.parse_args()
    from talklib.cli import main as cli
    from talklib.data.dataset import load_clip
    from talklib.prepare.accuracy import compare, letterbox_of
    from talklib.prepare.video import phone_style

    root = Path(args.out)
    root.mkdir(parents=True, exist_ok=True)
    for ident in (int(s) for s in args.identities.split(",")):
        truth = root / f"truth{ident}"
        if not (truth / "dataset.json").is_file():
            assert cli(["synth", "--out", str(truth), "--text", TEXT, "--identity", str(ident), "--seed", "3"]) == 0
        clip = load_clip(truth)
        video = phone_style(np.concatenate([clip.frames()] * args.loops), np.tile(clip.audio(), args.loops),
                            root / f"phone{ident}x{args.loops}.mp4")
        for size in (int(s) for s in args.sizes.split(",")):
            out = root / f"me{ident}_{size}x{args.loops}"
            t0 = time.perf_counter()
            assert cli(["prepare", "--video", str(video), "--out", str(out), "--size", str(size), "--force",
                        "--quiet"]) == 0
            dt = time.perf_counter() - t0
            r = compare(load_clip(out), clip, letterbox_of(clip.size[1]))   # the first loop
            n = load_clip(out).n_frames
            print(json.dumps({"identity": ident, "size": size, "loops": args.loops, "frames": n, "seconds": round(dt, 2),
                              "fps": round(n / dt, 1), "cpus": torch.get_num_threads(),
                              "cpu": platform.processor() or platform.machine(),
                              **{k: (round(v, 4) if isinstance(v, float) else v) for k, v in r.items()
                                 if k not in ("exp_corr", "frames")},
                              "exp_corr": {k: round(v, 3) for k, v in r["exp_corr"].items()}}), flush=True)


if __name__ == "__main__":
    main()
