"""``python -m talklib COMMAND``: the command line.

Each command lives in the module that owns its concept and exposes ``add_arguments(parser)`` and
``run(args) -> int``; heavy imports happen inside ``run`` so that ``--help`` and argument errors are
fast. A ``UserError`` becomes one line on stderr and exit status 2; Ctrl-C one line and status 130.
SIGTERM (``kill PID``) is handled as Ctrl-C, so a command stopped that way removes its temporaries too.
"""

from __future__ import annotations

import argparse
import importlib
import signal
import sys

from talklib.errors import UserError

COMMANDS = {
    "reproduce": ("talklib.pipeline", "run the notebooks as one pipeline and write a report"),
    "book": ("talklib.book", "build the Jupyter Book from a run's executed notebooks"),
    "audio-features": ("talklib.audio.command", "frame-aligned audio features (mel, MFCC, F0, windows) of any audio file"),
    "synth": ("talklib.speaker.command", "render the ground-truth synthetic speaker to a dataset folder"),
    "prepare": ("talklib.prepare.command", "turn your own talking-face video into a training set (mediapipe "
                "landmarks, 3DMM fit, masks, background, audio features)"),
    "train": ("talklib.train", "train a NeRF on a dataset folder, conditioned on audio features or 3DMM codes (resumable)"),
    # talklib.nerf.command renders; talklib.render adds codebook's --standardize and motion's --motion (later layers)
    "render": ("talklib.render", "render a talking-head video from a trained NeRF and a driving audio, optionally "
               "with generated head pose and blinks and through a standardized space"),
    "eval": ("talklib.metrics.command", "compute the evaluation suite for a predicted and a reference video"),
    "live": ("talklib.live.command", "serve a talking head that follows streaming audio (a wav or your microphone) "
             "in the browser"),
}


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m talklib", description="talklib: talking-head NeRFs, reproduced.")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for name, (module_name, help_text) in COMMANDS.items():
        try:
            module = importlib.import_module(module_name)
        except ModuleNotFoundError as e:  # a command whose module is not written yet
            if e.name and module_name.startswith(e.name):
                continue
            raise
        p = sub.add_parser(name, help=help_text, description=help_text)
        module.add_arguments(p)
        p.set_defaults(_run=module.run)
    return parser


def _terminated(signum, frame):
    raise KeyboardInterrupt("(terminated)")


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    if argv is None:   # run as the program, not from a test calling main(): SIGTERM behaves as Ctrl-C,
        signal.signal(signal.SIGTERM, _terminated)
        # and Ctrl-C works even when started from a shell's background job, which ignores SIGINT
        signal.signal(signal.SIGINT, signal.default_int_handler)
    try:
        return int(args._run(args) or 0)
    except UserError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    except KeyboardInterrupt as e:   # a command may say what was kept and how to go on (pipeline.RunInterrupted)
        print(f"error: interrupted{' ' + str(e) if str(e) else ''}", file=sys.stderr)
        return 130
