"""``python -m talklib synth``: render the ground-truth synthetic speaker to a dataset folder.

Without ``--text``/``--audio``/``--train-clip`` it builds the whole corpus of the preset (identities,
train/testA/testB clips, novel views, speech-only clips). With ``--text "..."`` (espeak) or ``--audio WAV``
(any speech; phones by pocketsphinx) it renders one clip folder driven by that speech, for identity
``--identity``. With ``--train-clip`` it writes only identity ``--identity``'s training clip, byte for byte
the corpus's ``clips/idKK_train`` (no pocketsphinx or pysptk needed), e.g. on a GPU machine::

    python -m talklib synth --preset full --train-clip --out data/id00_train --device cuda

``--device`` (default cpu) is where the frames are rendered; PNG encoding runs on min(16, CPUs) threads.
A CUDA build is deterministic but not byte-identical to a CPU build (float rounding differs).

``--force`` replaces only a dataset talklib made (a corpus or a clip folder; ``build.check_output``), in
every mode. While it builds, the output is locked (``.NAME.lock`` beside it): a second ``synth`` into
the same folder is refused. A clip's length is printed before it renders, and a bar shows the frames.
"""

from __future__ import annotations

import argparse
from pathlib import Path


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--preset", default="small", help="small (CPU, ~1 minute) or full (512 px, minutes of speech)")
    parser.add_argument("--out", required=True,
                        help="output folder (a corpus, or one clip with --text/--audio/--train-clip)")
    parser.add_argument("--seed", type=int, default=0, help="random seed >= 0 (same seed -> byte-identical files)")
    src = parser.add_mutually_exclusive_group()
    src.add_argument("--text", help="speak this text with espeak and render one clip")
    src.add_argument("--audio", help="drive one clip with this speech file (wav, flac, mp3, ...)")
    src.add_argument("--train-clip", action="store_true",
                     help="write only identity --identity's training clip of the preset's corpus (same bytes)")
    parser.add_argument("--identity", type=int, default=None,
                        help="identity index K of one clip (--text/--audio/--train-clip; default 0 = the photo's "
                             "own face); a corpus holds identities 0..synth_identities-1")
    parser.add_argument("--voice", default=None, help="espeak voice for --text (us_f, us_m, gb_m, gb_f, us_m2, sc_m)")
    parser.add_argument("--force", action="store_true", help="replace an existing dataset that synth made")
    parser.add_argument("--device", default="cpu", help="where to render: cpu (default), cuda, cuda:N or auto")
    parser.add_argument("-p", "--param", action="append", default=[], metavar="NAME=VALUE",
                        help="override a synth_* parameter of the preset, e.g. -p synth_size=256")


def run(args: argparse.Namespace) -> int:
    from talklib import config
    from talklib.errors import UserError

    config.preset(args.preset)                      # unknown preset -> one-line error
    overrides = {}
    for item in args.param:
        if "=" not in item:
            raise UserError(f"parameter override {item!r} is not NAME=VALUE: write e.g. -p synth_size=256")
        k, v = item.split("=", 1)
        k = k.strip() if k.strip().startswith("synth_") else f"synth_{k.strip()}"
        overrides[k] = config.parse_value(k, v)
    corpus_mode = args.text is None and args.audio is None and not args.train_clip
    if corpus_mode and args.identity is not None:
        raise UserError(f"--identity {args.identity} applies to one clip (--text, --audio or --train-clip); a corpus "
                        "holds identities 0..N-1: drop --identity, or set N with -p synth_identities=N")
    if args.voice is not None and args.text is None:
        raise UserError(f"--voice {args.voice} applies to --text only: drop it (--audio brings its own voice; "
                        "a corpus and --train-clip use each identity's voice)")
    identity = 0 if args.identity is None else args.identity
    if identity < 0:
        raise UserError(f"--identity {identity} is negative: pass 0, 1, 2 ...")
    if args.seed < 0:
        raise UserError(f"--seed {args.seed} is negative: pass 0, 1, 2 ...")
    if args.text is not None and not args.text.strip():
        raise UserError("--text is empty: pass some words to speak, e.g. --text \"Hello there.\"")
    device = _device(args.device)
    from talklib.outputs import output_lock
    from talklib.speaker import build

    out = Path(args.out)
    build.check_output(out, args.force)
    with output_lock(out):
        build.check_output(out, args.force)      # again, now that no other synth can be writing it
        return _synth(args, out, identity, overrides, device)


def _synth(args: argparse.Namespace, out: Path, identity: int, overrides: dict, device) -> int:
    import time

    from talklib.speaker import build

    if args.train_clip:
        t0 = time.perf_counter()
        clip = build.build_training_clip(out, args.preset, args.seed, identity, device=device, **overrides)
        print(f"wrote clip {out}: {clip.n_frames} frames x {len(clip.views)} views ({', '.join(clip.views)}), "
              f"{clip.size[1]}x{clip.size[0]}, on {device} in {time.perf_counter() - t0:.0f} s")
        return 0
    if args.text is None and args.audio is None:
        c = build.ensure_corpus(out, args.preset, args.seed, force=True, device=device, **overrides)
        print(f"wrote corpus {out}: {len(c.identities)} identities, {len(c.meta['clips'])} clips, "
              f"{len(c.meta['speech'])} speech-only clips")
        return 0
    from talklib.speaker.clip import parse_views

    job = build.speech_clip_job(args.preset, args.seed, text=args.text, audio=args.audio, identity=identity,
                                voice=args.voice, overrides=overrides)
    views = parse_views(job["params"]["views"])
    size = job["params"]["size"]
    print(f"speech of {job['seconds']:.1f} s: rendering {job['n_frames']} frames x {len(views)} view(s) at "
          f"{size}x{size} on {device} (the bar shows the time left)", flush=True)
    t0 = time.perf_counter()
    clip = build.build_speech_clip(out, job, device=device)
    print(f"wrote clip {out}: {clip.n_frames} frames, views {', '.join(clip.views)}, "
          f"in {time.perf_counter() - t0:.0f} s")
    return 0


def _device(name: str):
    """The torch device named by ``--device`` (cpu, cuda, cuda:N or auto), checked: UserError otherwise."""
    import torch

    from talklib.errors import UserError

    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        dev = torch.device(name)
    except (RuntimeError, ValueError):
        dev = None
    if dev is None or dev.type not in ("cpu", "cuda"):
        raise UserError(f"unknown --device {name!r}: use cpu, cuda, cuda:N or auto")
    if dev.type == "cuda" and not torch.cuda.is_available():
        raise UserError(f"--device {name} asked for but no CUDA GPU is visible (torch.cuda.is_available() is "
                        f"false): use --device cpu")
    if dev.type == "cuda" and (dev.index or 0) >= torch.cuda.device_count():
        raise UserError(f"--device {name}: only {torch.cuda.device_count()} CUDA GPU(s) are visible: "
                        f"use cuda:0 .. cuda:{torch.cuda.device_count() - 1}")
    return dev
