"""``python -m talklib render``: a talking-head video from a trained NeRF and a driving audio, with the render
options of the layers above ``nerf``.

    python -m talklib render --checkpoint DIR --audio WAV --out talk.mp4 [--yaw DEG] [--pitch DEG] [--batch N]
        [--standardize SPACE] [--motion CKPT [--motion-seed N]] [--device auto] [--force]
    python -m talklib render --source-image PHOTO --checkpoint S3D_CKPT --audio WAV --out talk.mp4 [--yaw DEG] ...

``talklib.nerf.command`` renders (its options, checks and messages are this command's); two later layers add
an option each, and ``nerf`` may not import them (``tests/test_layering.py``), so the command is composed here,
at the top: ``--standardize`` (``talklib.codebook.command``: every frame through NeRF-3DTalker's standardized
space, a frame stage) and ``--motion`` (``talklib.motion.command``: DFA-NeRF's generated head pose and eye-blink
embedding f_e per frame, a drive hook). Both may be given together. ``--source-image`` (``talklib.oneshot.command``)
renders with S3D-NeRF's single-shot model instead of a per-speaker NeRF: one photo, no fitting.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from talklib.codebook import command as codebook_command
from talklib.errors import UserError
from talklib.motion import command as motion_command
from talklib.nerf import command as nerf_command
from talklib.oneshot import command as oneshot_command


def add_arguments(parser: argparse.ArgumentParser) -> None:
    nerf_command.add_arguments(parser)
    codebook_command.add_arguments(parser)
    motion_command.add_arguments(parser)
    oneshot_command.add_arguments(parser)


def run(args: argparse.Namespace, scene: nerf_command.DriveHook | None = None, shot: dict | None = None) -> int:
    """The command. ``scene``: an optional drive hook giving a recorded head pose and condition parts (e.g. a test
    clip's lighting) for every frame, as the benchmark of notebook 10 renders; ``--motion``'s generated pose and
    parts take precedence over it. ``shot``: with ``--source-image``, a dict ``oneshot.command.run`` fills with the
    photo's face box and its encoding time."""
    if getattr(args, "source_image", None):
        other = [o for o, v in (("--standardize", args.standardize), ("--motion", args.motion)) if v]
        if other:
            raise UserError(f"{' and '.join(other)} work with a per-speaker NeRF checkpoint, not with --source-image "
                            "(S3D-NeRF): leave them out, or drop --source-image")
        return oneshot_command.run(args, report=shot)
    ckpt = Path(args.checkpoint)
    s3d_only = (ckpt / oneshot_command.CKPT_NAME).is_file() and not (ckpt / "nerf.pt").is_file()
    if ckpt.name == oneshot_command.CKPT_NAME or s3d_only:
        raise UserError(f"{ckpt} is an S3D-NeRF (single-shot) checkpoint: pass the photo to animate with "
                        "--source-image PHOTO")
    drive = _merged(scene, motion_command.drive_for(args))
    stage = codebook_command.stage_for(args)
    code = nerf_command.run(args, post=stage[0] if stage else None, drive=drive)
    if hasattr(drive, "summary"):
        print(drive.summary())
    if stage is not None:
        print(stage[1])
    return code


def _merged(scene, motion):
    """One drive hook from a recorded scene's and a motion generator's (either may be None): the generator's
    head pose and parts win where both give one."""
    if scene is None or motion is None:
        return motion if motion is not None else scene

    def drive(audio, n):
        base, gen = scene(audio, n), motion(audio, n)
        pose = gen.get("pose") if gen.get("pose") is not None else base.get("pose")
        return {"pose": pose, "parts": {**(base.get("parts") or {}), **(gen.get("parts") or {})}}

    drive.summary = motion.summary
    return drive
