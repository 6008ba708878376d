"""``python -m talklib prepare --video talk.mp4 --out data/me``: your own video as a training set.

    python -m talklib prepare --video talk.mp4 --out data/me [--preset small|full | --size N]
        [--audio speech.wav] [--extractors data/synthetic/small/clips/id00_train/aud_extractors.pt] [--force]

Any video ffmpeg reads (mp4, mov, webm, mkv; any frame rate, portrait or landscape, any size) becomes a
clip folder in talklib's AD-NeRF layout that ``train``, ``render --checkpoint``, ``eval`` and the
notebooks (``-p data_dir=...``) read. What it does and writes: ``talklib.prepare.build``. The frame size
is the preset's ``synth_size`` (128 small, 512 full) unless ``--size`` is given.
"""

from __future__ import annotations

import argparse

from talklib.errors import UserError


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--video", required=True, help="the talking-face video (mp4, mov, webm, mkv, ...)")
    p.add_argument("--out", required=True, help="dataset folder to write (refused if it exists, unless --force)")
    p.add_argument("--preset", default="small", help="small (128 px frames) or full (512 px)")
    p.add_argument("--size", type=int, default=None, help="frame size in pixels (overrides the preset's)")
    p.add_argument("--audio", default=None, help="the speech as a separate file, for a video without sound")
    p.add_argument("--extractors", default=None,
                   help="aud_extractors.pt that notebook 02 wrote into a clip folder (e.g. "
                        "data/synthetic/small/clips/id00_train): also write SpeechSplit codes, "
                        "recogniser posteriors and f_a, so a_content / deepspeech / f_a conditions can train")
    p.add_argument("--max-gap", type=int, default=5,
                   help="face lost for at most this many frames: interpolated; longer: those frames are dropped")
    p.add_argument("--smooth", type=float, default=1.5, help="temporal smoothing of the head pose (Gaussian sigma, frames)")
    p.add_argument("--fov", type=float, default=22.0, help="horizontal field of view of the crop, degrees")
    p.add_argument("--min-seconds", type=float, default=5.0, help="refuse videos with less face than this")
    p.add_argument("--force", action="store_true", help="replace --out if it exists")
    p.add_argument("--quiet", action="store_true", help="no progress bars")


def run(args: argparse.Namespace) -> int:
    from talklib import config
    from talklib.prepare.build import prepare_video

    if args.size is None:
        try:
            size = int(config.preset(args.preset)["synth_size"])
        except (KeyError, ValueError) as e:
            raise UserError(f"--preset {args.preset}: choose small or full ({e})") from None
    else:
        size = args.size
    for flag, v, lo in (("--max-gap", args.max_gap, 0), ("--smooth", args.smooth, 0), ("--min-seconds", args.min_seconds, 1)):
        if v < lo:
            raise UserError(f"{flag} {v}: give a number >= {lo}")
    if not 5.0 <= args.fov <= 120.0:
        raise UserError(f"--fov {args.fov}: give a field of view between 5 and 120 degrees")
    out = prepare_video(args.video, args.out, size=size, audio=args.audio, force=args.force, max_gap=args.max_gap,
                        smooth=args.smooth, fov_deg=args.fov, min_seconds=args.min_seconds,
                        extractors=args.extractors, progress=not args.quiet)
    import json

    info = json.loads((out / "dataset.json").read_text())["prepare"]
    dropped = sum(g["frames"] for g in info["gaps"] if g["action"] == "dropped")
    bridged = sum(g["frames"] for g in info["gaps"] if g["action"] == "interpolated")
    for note in info["notes"]:
        print(f"note: {note}")
    print(f"{out}: {info['kept_frames']} frames ({info['kept_frames'] / 25:.1f} s) at {size}x{size}; face lost in "
          f"{bridged + dropped} frames ({bridged} interpolated, {dropped} dropped with their sound); "
          f"median fit error {info['fit_err_px_median']:.2f} px; {info['seconds_taken']:.0f} s. "
          f"Check {out / 'prepare_report.html'}, then: python -m talklib train --data {out} --conditions ... --out runs/me/ckpt")
    return 0
