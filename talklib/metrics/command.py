"""``python -m talklib eval``: the evaluation suite for a predicted and a reference video.

    python -m talklib eval --pred VIDEO --ref VIDEO [--audio WAV] [--out metrics.json]
        [--sync-model sync.pt] [--syncnet-v2 syncnet_v2.model] [--lpips alex.pth [--lpips-backbone alexnet.pth]]

VIDEO is an mp4 or a folder of frame images (``--fps`` for folders, default 25). The audio comes from
``--audio``, else the sound track of ``--pred``, else of ``--ref``; it is needed for the lip-sync
metrics, which also need a sync model (talklib's, saved by notebook 04, and/or the official syncnet_v2
weights). Metrics whose weights are not given are written as null, never replaced by something else.
"""

from __future__ import annotations

import argparse
import json
import math
import os
from pathlib import Path


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--pred", required=True, help="predicted video: mp4 or folder of frames")
    p.add_argument("--ref", required=True, help="reference (ground-truth) video: mp4 or folder of frames")
    p.add_argument("--audio", default=None, help="16 kHz (or any rate) wav driving --pred; default: the videos' sound")
    p.add_argument("--out", default=None, help="write the metrics as JSON here (default: print only)")
    p.add_argument("--fps", type=float, default=25.0, help="frame rate of frames folders (default 25, > 0)")
    p.add_argument("--sync-model", default=None, help="talklib lip-sync expert (notebook 04: <run_dir>/models/sync.pt)")
    p.add_argument("--syncnet-v2", default=None, help="official syncnet_v2.model state dict, if you have it")
    p.add_argument("--lpips", default=None, help="LPIPS-Alex weights (full state dict, or lin layers + --lpips-backbone)")
    p.add_argument("--lpips-backbone", default=None, help="torchvision AlexNet state dict for --lpips lin weights")
    p.add_argument("--cpbd-every", type=int, default=1, help="CPBD on every k-th frame (default 1)")


def load_audio_for(args, pred_path: str, ref_path: str):
    """--audio, else the sound track of pred, else of ref; None if there is none."""
    from talklib.data.video import read_video_audio

    if args.audio is not None:
        from talklib.audio.io import load_audio

        return load_audio(args.audio)
    for path in (pred_path, ref_path):
        sound = read_video_audio(path, 16000)
        if sound is not None and len(sound) > 0:
            return sound
    return None


def run(args) -> int:
    from talklib.data.video import read_video
    from talklib.errors import UserError
    from talklib.metrics.suite import evaluate_videos
    from talklib.outputs import atomic_write_text

    if args.cpbd_every < 1:
        raise UserError(f"--cpbd-every {args.cpbd_every}: give a positive integer")
    if not (math.isfinite(args.fps) and args.fps > 0):
        raise UserError(f"--fps {args.fps:g} is not a positive frame rate: give the frames folders' rate, e.g. 25")
    if args.out:
        _check_out(Path(args.out))
    pred, fps_p = read_video(args.pred, folder_fps=args.fps)
    ref, _ = read_video(args.ref, folder_fps=args.fps)
    sync_model = v2 = lp = None
    if args.sync_model:
        from talklib.sync.model import load_sync

        sync_model = load_sync(args.sync_model)
    if args.syncnet_v2:
        from talklib.sync.syncnet_v2 import load_syncnet_v2

        v2 = load_syncnet_v2(args.syncnet_v2)
    if args.lpips:
        from talklib.metrics.lpips import load_lpips

        lp = load_lpips(args.lpips, args.lpips_backbone)
    audio = load_audio_for(args, args.pred, args.ref)
    if audio is None and (sync_model is not None or v2 is not None):
        raise UserError(f"no audio: {args.pred} and {args.ref} have no sound track; give --audio WAV")
    metrics = evaluate_videos(pred, ref, fps_p, audio, sync_model=sync_model, syncnet_v2=v2, lpips_model=lp,
                              cpbd_every=args.cpbd_every, pred_name=args.pred, ref_name=args.ref)
    notes = {}
    if lp is None:
        notes["lpips"] = "unavailable: no LPIPS weights given (--lpips)"
    if sync_model is None:
        notes["lse"] = "unavailable: no lip-sync expert given (--sync-model)"
    body = {"pred": str(args.pred), "ref": str(args.ref), "metrics": {k: _jsonable(v) for k, v in metrics.items()},
            "notes": notes}
    text = json.dumps(body, indent=2) + "\n"
    if args.out:
        atomic_write_text(args.out, text)
    print(text, end="")
    return 0


def _check_out(out: Path) -> None:
    """--out must name a file in a folder that exists (checked before anything is computed)."""
    from talklib.errors import UserError

    if out.is_dir():
        raise UserError(f"--out {out} is a folder: give a file path such as {out / 'metrics.json'}")
    parent = out.parent if str(out.parent) else Path(".")
    if not parent.is_dir():
        raise UserError(f"--out {out}: folder {parent} does not exist: create it or choose another --out")
    if not os.access(parent, os.W_OK):
        raise UserError(f"--out {out}: folder {parent} is not writable: choose another --out")


def _jsonable(v):
    """Numbers as plain Python; NaN / inf (e.g. PSNR of identical videos) as null."""
    import math

    if hasattr(v, "item"):
        v = v.item()
    if isinstance(v, float) and not math.isfinite(v):
        return None
    return v
