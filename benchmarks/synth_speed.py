"""How fast the synthetic speaker's frames are rendered and written, by render slots and batch size (GPU machine).

    python benchmarks/synth_speed.py [--seconds 8] [--slots 2,4,8] [--batches 32,64] [--device cuda]

Builds the full preset's training clip of identity 0 (``build_training_clip``, 512², front + 3 novel views) for
``--seconds`` of speech once per (slots, batch) setting, after one warm-up build, and prints one JSON line each:
frames (views x frames), seconds, frames per second. ``talklib.speaker.clip.render_slots`` decides how many batches
render at once (2 on a GPU when this was written); the rest of the worker threads encode PNGs.
"""

from __future__ import annotations

import argparse
import json
import shutil
import time

import talklib.speaker.clip as C
from talklib.speaker.build import build_training_clip


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seconds", type=float, default=8.0)
    ap.add_argument("--slots", default="2,4,8")
    ap.add_argument("--batches", default="32,64")
    ap.add_argument("--device", default="cuda")
    ap.add_argument("--out", default="/tmp/synth_speed")
    args = ap.parse_args()
    write_clip = C.write_clip
    configs = [(None, 32)] + [(int(s), int(b)) for s in args.slots.split(",") for b in args.batches.split(",")]
    for slots, batch in configs:          # the first: warm-up at the defaults, not reported
        if slots is not None:
            C.render_slots = lambda *a, _s=slots: _s
        C.write_clip = lambda *a, _b=batch, **k: write_clip(*a, **{**k, "batch": _b})
        shutil.rmtree(args.out, ignore_errors=True)
        t0 = time.perf_counter()
        clip = build_training_clip(args.out, preset="full", device=args.device, progress=False,
                                   train_seconds=args.seconds)
        dt = time.perf_counter() - t0
        n = clip.n_frames * (1 + len(clip.novel_views))
        if slots is not None:
            print(json.dumps({"slots": slots, "batch": batch, "frames": n, "seconds": round(dt, 2),
                              "fps": round(n / dt, 1), "workers": C.default_workers()}), flush=True)


if __name__ == "__main__":
    main()
