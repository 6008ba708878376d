"""``python -m talklib synth``: render the ground-truth synthetic speaker to a dataset folder.

Without ``--text``/``--audio`` it builds the whole corpus of the preset (identities, train/testA/testB
clips, novel views, speech-only clips). With ``--text "..."`` (espeak) or ``--audio WAV`` (any speech;
phones by pocketsphinx) it renders one clip folder driven by that speech, for identity ``--identity``.
"""

from __future__ import annotations

import argparse
from pathlib import Path


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--preset", default="small", help="small (CPU, ~1 minute) or full (512 px, minutes of speech)")
    parser.add_argument("--out", required=True, help="output folder (a corpus, or one clip with --text/--audio)")
    parser.add_argument("--seed", type=int, default=0, help="random seed (same seed -> byte-identical files)")
    src = parser.add_mutually_exclusive_group()
    src.add_argument("--text", help="speak this text with espeak and render one clip")
    src.add_argument("--audio", help="drive one clip with this speech file (wav, flac, mp3, ...)")
    parser.add_argument("--identity", type=int, default=0, help="identity index K (0 = the photo's own face)")
    parser.add_argument("--voice", default=None, help="espeak voice for --text (us_f, us_m, gb_m, gb_f, us_m2, sc_m)")
    parser.add_argument("--force", action="store_true", help="replace an existing output folder")
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
    if args.identity < 0:
        raise UserError(f"--identity {args.identity} is negative: pass 0, 1, 2 ...")
    if args.text is not None and not args.text.strip():
        raise UserError("--text is empty: pass some words to speak, e.g. --text \"Hello there.\"")
    out = Path(args.out)
    if out.exists() and (not out.is_dir() or any(out.iterdir())) and not args.force:
        raise UserError(f"output folder {out} already exists: pass --force to replace it or choose another --out")
    if args.text is None and args.audio is None:
        from talklib.speaker.build import ensure_corpus

        c = ensure_corpus(out, args.preset, args.seed, force=True, **overrides)
        print(f"wrote corpus {out}: {len(c.identities)} identities, {len(c.meta['clips'])} clips, "
              f"{len(c.meta['speech'])} speech-only clips")
        return 0
    from talklib.speaker.single import synth_clip

    clip = synth_clip(out, args.preset, args.seed, text=args.text, audio=args.audio, identity=args.identity,
                      voice=args.voice, overrides=overrides)
    print(f"wrote clip {out}: {clip.n_frames} frames, views {', '.join(clip.views)}")
    return 0
