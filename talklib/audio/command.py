"""``python -m talklib audio-features AUDIO --out DIR``: frame-aligned features of any audio file.

Loads the file (any common format, rate, channel count), computes every kind of
:mod:`talklib.audio.features` at 25 fps and writes ``aud_<kind>.npy`` (with their shapes in
``dataset.json``) into ``--out``. Also runnable as ``python -m talklib.audio.command``.
"""

from __future__ import annotations

import argparse
import sys

from talklib.errors import UserError


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("audio", help="audio file: wav, flac, ogg, mp3 (any rate, any channels)")
    parser.add_argument("--out", required=True, help="folder to write aud_<kind>.npy and dataset.json into")
    parser.add_argument("--frames", type=int, default=None, help="video frames to cover (default: the audio's length at 25 fps)")
    parser.add_argument("--f0-min", type=float, default=60.0, help="lowest F0 searched, Hz")
    parser.add_argument("--f0-max", type=float, default=400.0, help="highest F0 searched, Hz")


def run(args: argparse.Namespace) -> int:
    from pathlib import Path

    from talklib.audio.features import compute_features, write_features
    from talklib.audio.io import load_audio

    audio = load_audio(args.audio)
    if args.frames is not None and args.frames < 1:
        raise UserError(f"--frames {args.frames}: give at least 1 video frame")
    feats = compute_features(audio, args.frames, f0_range=(args.f0_min, args.f0_max))
    out = Path(args.out)
    if out.exists() and not out.is_dir():
        raise UserError(f"--out {out} is a file: give a folder")
    out.mkdir(parents=True, exist_ok=True)
    for p in write_features(out, feats):
        print(p)
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m talklib.audio.command", description=__doc__.splitlines()[0])
    add_arguments(parser)
    args = parser.parse_args(argv)
    try:
        return run(args)
    except UserError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
