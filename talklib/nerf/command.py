"""``python -m talklib render``: a talking-head video from a trained NeRF and a driving audio.

    python -m talklib render --checkpoint DIR --audio WAV --out talk.mp4 [--yaw DEG] [--pitch DEG] [--force]

One frame per 40 ms of audio (25 fps), the audio muxed in; the camera is the recorded one turned by
yaw/pitch around the head. Frames stream to the encoder batch by batch, so memory does not grow with
the audio's length. Nothing is written unless every frame rendered (the mp4 is written to a
temporary name and renamed); an existing --out is replaced only with --force.

``run(args, post=...)`` takes an optional frame stage, for a later layer to hook in without this one
importing it: the command line's ``render`` is registered from ``talklib.codebook.command``, which adds
``--standardize`` (NeRF-3DTalker's standardized space) and passes its stage here.
"""

from __future__ import annotations

import argparse
import os
import tempfile
from pathlib import Path
from typing import Callable

from talklib.errors import UserError

#: ``run``'s optional frame stage: called once with the checkpoint's frame size (H, W), after the checkpoint
#: is loaded and before any frame renders (so it can refuse a size it does not fit with a ``UserError``), it
#: returns the function applied to every batch of rendered frames, (b, H, W, 3) uint8 -> (b, H, W, 3) uint8.
FrameStage = Callable[[int, int], Callable]


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--checkpoint", required=True, help="folder holding nerf.pt (written by `train` or notebook 03)")
    parser.add_argument("--audio", required=True, help="driving audio (wav, flac, mp3, ...), any rate")
    parser.add_argument("--out", required=True, help="output .mp4 path")
    parser.add_argument("--yaw", type=float, default=0.0, help="degrees left/right of the recorded view (|yaw| <= 45)")
    parser.add_argument("--pitch", type=float, default=0.0, help="degrees up/down (|pitch| <= 30)")
    parser.add_argument("--device", default="auto", help="torch device: auto, cpu, cuda")
    parser.add_argument("--batch", type=int, default=8, help="frames rendered together (>= 1)")
    parser.add_argument("--force", action="store_true", help="replace an existing --out file")


def _check_output(out: Path, force: bool = False) -> None:
    if out.suffix.lower() != ".mp4":
        raise UserError(f"output {out} does not end in .mp4: give a path such as talk.mp4")
    parent = out.parent if str(out.parent) else Path(".")
    if out.is_dir():
        raise UserError(f"output {out} is a folder: give a file path such as {out / 'talk.mp4'}")
    if out.exists() and not force:
        raise UserError(f"output {out} already exists: pass --force to replace it or choose another --out")
    if not parent.is_dir():
        raise UserError(f"output folder {parent} does not exist: create it or choose another --out")
    try:
        fd, tmp = tempfile.mkstemp(prefix=".talklib-write-test.", dir=parent)
        os.close(fd)
        os.unlink(tmp)
    except OSError:
        raise UserError(f"output folder {parent} is not writable: choose another --out") from None


def run(args: argparse.Namespace, post: FrameStage | None = None) -> int:
    """Render ``args`` (``add_arguments``' options) to the video; ``post``: a ``FrameStage`` applied to the
    rendered frames before they are encoded (None: the frames as rendered)."""
    import torch

    from talklib.audio.io import load_audio
    from talklib.data.video import write_video
    from talklib.nerf.talk import check_batch, check_view, conditions_from_audio, iter_frames, load_talker
    from talklib.runtime import pick_device

    out = Path(args.out)
    check_view(args.yaw, args.pitch)
    try:
        check_batch(args.batch)
    except UserError:
        raise UserError(f"--batch {args.batch}: give a positive number of frames per render call, "
                        "e.g. 8 (fewer if memory is short)") from None
    _check_output(out, args.force)
    audio = load_audio(args.audio)
    if len(audio) < 640:
        raise UserError(f"audio {args.audio} is {1000 * len(audio) / 16000:.1f} ms long, shorter than one "
                        "video frame (40 ms): give a longer recording")
    try:
        dev = pick_device(args.device)
    except ValueError as e:
        raise UserError(str(e)) from None
    model, a2e, extra = load_talker(args.checkpoint, dev)
    with torch.no_grad():
        cond = conditions_from_audio(a2e, extra, audio, model)
    n = cond.shape[0]
    cam = extra["camera"]
    stage = post(int(cam["H"]), int(cam["W"])) if post is not None else None
    print(f"rendering {n} frames ({n / 25:.2f} s of audio) at {cam['W']}x{cam['H']} on {dev}", flush=True)
    frames = iter_frames(model, extra, cond, args.yaw, args.pitch, batch=args.batch, half=dev.type == "cuda")
    if stage is not None:
        frames = (stage(f) for f in frames)
    write_video(out, frames, fps=25, audio=audio[: n * 640], sample_rate=16000)
    print(f"wrote {out}: {n} frames at 25 fps ({n / 25:.2f} s), {cam['W']}x{cam['H']}, "
          f"yaw {args.yaw:g}, pitch {args.pitch:g}")
    return 0
