"""``python -m talklib render``: a talking-head video from a trained NeRF and a driving audio, with the render
options of the layers above ``nerf``.

    python -m talklib render --checkpoint DIR --audio WAV --out talk.mp4 [--yaw DEG] [--pitch DEG] [--batch N]
        [--standardize SPACE] [--motion CKPT [--motion-seed N]] [--device auto] [--force]

``talklib.nerf.command`` renders (its options, checks and messages are this command's); two later layers add
an option each, and ``nerf`` may not import them (``tests/test_layering.py``), so the command is composed here,
at the top: ``--standardize`` (``talklib.codebook.command``: every frame through NeRF-3DTalker's standardized
space, a frame stage) and ``--motion`` (``talklib.motion.command``: DFA-NeRF's generated head pose and eye-blink
embedding f_e per frame, a drive hook). Both may be given together.
"""

from __future__ import annotations

import argparse

from talklib.codebook import command as codebook_command
from talklib.motion import command as motion_command
from talklib.nerf import command as nerf_command


def add_arguments(parser: argparse.ArgumentParser) -> None:
    nerf_command.add_arguments(parser)
    codebook_command.add_arguments(parser)
    motion_command.add_arguments(parser)


def run(args: argparse.Namespace) -> int:
    drive = motion_command.drive_for(args)
    stage = codebook_command.stage_for(args)
    code = nerf_command.run(args, post=stage[0] if stage else None, drive=drive)
    if drive is not None:
        print(drive.summary())
    if stage is not None:
        print(stage[1])
    return code
