"""``python -m talklib render --source-image PHOTO --checkpoint S3D_CKPT --audio WAV --out talk.mp4``.

S3D-NeRF's single shot from the command line: a photo of anyone (never seen in training) and any speech
-> a talking-head video, frontal (the photo's own view) or turned by ``--yaw`` / ``--pitch``, with no
fitting. The checkpoint is the ``s3d_nerf.pt`` notebook 09 writes (a file, or a folder holding it). The
output checks, the view limits and the batching are ``render``'s (``talklib.nerf.command``); the photo's
framing and pose are ``talklib.oneshot.drive.frame_photo``'s.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from talklib.errors import UserError

CKPT_NAME = "s3d_nerf.pt"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--source-image", default=None, metavar="PHOTO",
                        help="S3D-NeRF: one photo of the person to animate (png/jpg); --checkpoint is then the "
                             f"{CKPT_NAME} notebook 09 writes")


def checkpoint_file(path: str | Path) -> Path:
    """``--checkpoint`` as the S3D-NeRF file: the file itself, or ``s3d_nerf.pt`` in the folder."""
    p = Path(path)
    if p.is_dir():
        if not (p / CKPT_NAME).is_file():
            raise UserError(f"folder {p} holds no {CKPT_NAME}: with --source-image, --checkpoint is the S3D-NeRF "
                            f"checkpoint notebook 09 writes (RUN/models/{CKPT_NAME})")
        return p / CKPT_NAME
    return p


def read_photo(path: str | Path):
    """The photo as (H, W, 3) uint8 RGB; one-line errors for a missing or unreadable file."""
    import numpy as np
    from PIL import Image, UnidentifiedImageError

    p = Path(path)
    if not p.is_file():
        raise UserError(f"no photo at {p}: pass an existing image file to --source-image")
    try:
        with Image.open(p) as im:
            return np.asarray(im.convert("RGB"))
    except (UnidentifiedImageError, OSError):
        raise UserError(f"{p} is not an image talklib can read: pass a png or jpg photo") from None


def run(args: argparse.Namespace, report: dict | None = None) -> int:
    """The single-shot render. ``report``: a dict filled with the photo's face square ``box`` (x, y, side in the
    photo's pixels) and ``encode_s``, the seconds from loading the checkpoint to the photo's tri-planes (what
    S3D-NeRF has instead of a per-speaker fit; notebook 10's benchmark reads both)."""
    import time

    import torch

    from talklib.audio.io import load_audio
    from talklib.data.video import write_video
    from talklib.nerf.command import check_output
    from talklib.nerf.rays import orbit
    from talklib.nerf.talk import check_batch, check_view
    from talklib.oneshot.drive import encode_shot, frame_photo, talk
    from talklib.oneshot.train import load_s3d
    from talklib.runtime import pick_device

    out = Path(args.out)
    check_view(args.yaw, args.pitch)
    try:
        check_batch(args.batch)
    except UserError:
        raise UserError(f"--batch {args.batch}: give a positive number of frames per render call, e.g. 8") from None
    check_output(out, args.force)
    photo = read_photo(args.source_image)
    audio = load_audio(args.audio)
    if len(audio) < 640:
        raise UserError(f"audio {args.audio} is shorter than one video frame (40 ms): give a longer recording")
    try:
        dev = pick_device(args.device)
    except ValueError as e:
        raise UserError(str(e)) from None
    t0 = time.perf_counter()
    model, framing = load_s3d(checkpoint_file(args.checkpoint))
    model = model.to(dev)
    shot = frame_photo(photo, framing, model.cfg.size)
    ident = encode_shot(model, shot, dev)
    if report is not None:
        report.update(box=shot["box"], encode_s=time.perf_counter() - t0)
    c2w = orbit(torch.as_tensor(shot["c2w"])[None], args.yaw, args.pitch, model.center.cpu())[0]
    n = len(audio) // 640
    s = model.cfg.size
    print(f"single shot: face at yaw {shot['yaw']:+.1f}, pitch {shot['pitch']:+.1f} deg; rendering {n} frames "
          f"({n / 25:.2f} s) at {s}x{s} on {dev}", flush=True)
    write_video(out, talk(model, ident, audio, c2w, batch=args.batch), fps=25, audio=audio[: n * 640],
                sample_rate=16000)
    print(f"wrote {out}: {n} frames at 25 fps, {s}x{s}, yaw {args.yaw:g}, pitch {args.pitch:g}")
    return 0
