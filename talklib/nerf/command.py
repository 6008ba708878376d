"""``python -m talklib render``: a talking-head video from a trained NeRF and a driving audio.

    python -m talklib render --checkpoint DIR --audio WAV --out talk.mp4 [--yaw DEG] [--pitch DEG] [--force]

One frame per 40 ms of audio (25 fps), the audio muxed in; the camera is the recorded one turned by
yaw/pitch around the head. Frames stream to the encoder batch by batch, so memory does not grow with
the audio's length. Nothing is written unless every frame rendered (the mp4 is written to a
temporary name and renamed); an existing --out is replaced only with --force.

``run(args, post=..., drive=...)`` takes two optional hooks, for later layers to hook in without this one
importing them: a frame stage (``FrameStage``; ``talklib.codebook.command``'s ``--standardize``, NeRF-3DTalker's
standardized space) and a drive hook (``DriveHook``; ``talklib.motion.command``'s ``--motion``, DFA-NeRF's
generated head pose and eye blinks). The command line's ``render`` is registered from ``talklib.render``, the
top layer, which composes both.
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

#: ``run``'s optional drive hook: called once, after the checkpoint is loaded and the conditions are made from the
#: audio, as ``drive(audio, n_frames)`` (16 kHz mono float32, the number of frames to render); it returns
#: ``{"pose": (n, 6) head pose or None, "parts": {condition name: (n, dim) array}}``. The parts replace those
#: columns of the conditions for every frame (``talklib.nerf.talk.replace_parts``: a part the field does not have
#: is ignored, one of another width refused); the pose moves the head (``talklib.nerf.talk.pose_cameras``).
DriveHook = Callable[[object, int], dict]


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--checkpoint", required=True, help="folder holding nerf.pt (written by `train` or notebook 03)")
    parser.add_argument("--audio", required=True, help="driving audio (wav, flac, mp3, ...), any rate")
    parser.add_argument("--out", required=True, help="output .mp4 path")
    parser.add_argument("--yaw", type=float, default=0.0, help="degrees left/right of the recorded view (|yaw| <= 45)")
    parser.add_argument("--pitch", type=float, default=0.0, help="degrees up/down (|pitch| <= 30)")
    parser.add_argument("--device", default="auto", help="torch device: auto, cpu, cuda")
    parser.add_argument("--batch", type=int, default=8, help="frames rendered together (>= 1)")
    parser.add_argument("--force", action="store_true", help="replace an existing --out file")


def check_output(out: Path, force: bool = False) -> None:
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


def run(args: argparse.Namespace, post: FrameStage | None = None, drive: DriveHook | None = None) -> int:
    """Render ``args`` (``add_arguments``' options) to the video; ``post``: a ``FrameStage`` applied to the
    rendered frames before they are encoded (None: the frames as rendered); ``drive``: a ``DriveHook`` that
    gives a head pose and condition parts per frame (None: the recorded head pose, the parts audio gives)."""
    import torch

    from talklib.audio.io import load_audio
    from talklib.data.video import write_video
    from talklib.nerf.talk import check_batch, check_view, conditions_from_audio, iter_frames, load_talker, replace_parts
    from talklib.runtime import pick_device

    out = Path(args.out)
    check_view(args.yaw, args.pitch)
    try:
        check_batch(args.batch)
    except UserError:
        raise UserError(f"--batch {args.batch}: give a positive number of frames per render call, "
                        "e.g. 8 (fewer if memory is short)") from None
    check_output(out, args.force)
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
    pose = None
    if drive is not None:
        motion = drive(audio, n)
        cond, ignored = replace_parts(model, cond, motion.get("parts") or {})
        pose = motion.get("pose")
        if ignored:
            print(f"the checkpoint's field is not conditioned on {', '.join(ignored)}: the driving values are not used",
                  flush=True)
    cam = extra["camera"]
    stage = post(int(cam["H"]), int(cam["W"])) if post is not None else None
    frames = iter_frames(model, extra, cond, args.yaw, args.pitch, batch=args.batch, half=dev.type == "cuda",
                         pose=pose)
    print(f"rendering {n} frames ({n / 25:.2f} s of audio) at {cam['W']}x{cam['H']} on {dev}", flush=True)
    if stage is not None:
        frames = (stage(f) for f in frames)
    write_video(out, frames, fps=25, audio=audio[: n * 640], sample_rate=16000)
    print(f"wrote {out}: {n} frames at 25 fps ({n / 25:.2f} s), {cam['W']}x{cam['H']}, "
          f"yaw {args.yaw:g}, pitch {args.pitch:g}")
    return 0
