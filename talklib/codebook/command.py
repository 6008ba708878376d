"""``render --standardize SPACE``: NeRF-3DTalker's standardized space as a render option (Section II.D).

    python -m talklib render --checkpoint DIR --audio WAV --out talk.mp4 --standardize SPACE [...]

Every rendered frame passes through a standardized space saved by ``talklib.codebook.space.save_space``
(notebook 07 writes ``RUN/models/standardized_space.pt``) before it is encoded, the paper's \\hat F_t+ of the
render in place of the render itself. The space is trained on frames of one size: a checkpoint that renders
another size is refused, in one line naming both, before any frame is rendered.

**Where the command lives.** Imports flow down the layers (``tests/test_layering.py``): ``nerf`` renders,
``codebook`` (a later layer) standardizes, and ``nerf`` may not import ``codebook``. So the rendering stays in
``talklib.nerf.command``, whose ``run`` takes an optional frame stage (``FrameStage``: told the frame size once,
then applied to each rendered batch); this module holds the option and builds the stage from the space
(``add_arguments``, ``stage_for``). ``motion`` (the same layer) adds ``--motion`` the same way
(``talklib.motion.command``), and ``talklib.render``, the top layer, composes both into the ``render`` command.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from talklib.errors import UserError
from talklib.nerf import command as nerf_command


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """The ``--standardize`` option (the render command's own options are ``talklib.nerf.command``'s)."""
    parser.add_argument("--standardize", metavar="SPACE", default=None,
                        help="pass every rendered frame through this standardized space (NeRF-3DTalker Eq. 9-11; "
                             "a file saved by talklib.codebook.space.save_space, e.g. RUN/models/standardized_space.pt)")


def size_check(space_path: str | Path, size: int, ckpt: str | Path, H: int, W: int) -> None:
    """A one-line ``UserError`` unless the checkpoint's H x W frames are the space's size x size."""
    if (H, W) != (size, size):
        raise UserError(f"--standardize {space_path} works on {size}x{size} frames but checkpoint {ckpt} renders "
                        f"{W}x{H}: give a space trained at the checkpoint's frame size (notebook 07 trains one at "
                        f"nerf_size), or render without --standardize")


def standardize_stage(space, space_path: str | Path, ckpt: str | Path, batch: int) -> nerf_command.FrameStage:
    """The ``FrameStage`` of a loaded standardized space: checks the frame size, then maps each rendered batch
    (b, H, W, 3) uint8 to its standardized frames \\hat F_t+ (``talklib.codebook.space.standardize``)."""
    from talklib.codebook.space import standardize

    def stage(H: int, W: int):
        size_check(space_path, space.cfg.image_size, ckpt, H, W)
        return lambda frames: standardize(space, frames, batch=batch)

    return stage


def stage_for(args: argparse.Namespace) -> tuple[nerf_command.FrameStage, str] | None:
    """The frame stage of ``--standardize`` (the space loaded on ``--device``) and the line that says what it did
    once the video is written; None without ``--standardize``. A missing or foreign space is a one-line error."""
    if args.standardize is None:
        return None
    from talklib.codebook.space import load_space
    from talklib.runtime import pick_device

    try:
        dev = pick_device(args.device)
    except ValueError as e:
        raise UserError(str(e)) from None
    space = load_space(args.standardize).to(dev)
    said = (f"every frame passed through the standardized space {args.standardize} "
            f"(AU branch {'on' if space.cfg.use_au else 'off'}, global branch {'on' if space.cfg.use_global else 'off'})")
    return standardize_stage(space, args.standardize, args.checkpoint, max(1, int(args.batch))), said
