"""How much training SpeechSplit's content/rhythm split needs: notebook 02's probes along a long GPU run.

At the small preset (600 steps on 2 CPU cores) the content code A_c carries phones no better than the 2-d
rhythm code A_r (benchmarks/RESULTS.md, "SpeechSplit at the small preset"). SpeechSplit's own recipe
trains for 1M steps. This script trains the same model on the same utterances for many more steps on a
GPU and runs notebook 02's linear probes (``talklib.audio.corpus.probe_tables``) every ``--probe-every``
steps, so the gap A_c - A_r (phone accuracy) and R²(A_p) - R²(A_c) (F0) can be read against training length.

Two steps, because the GPU machine has no pysptk (RAPT F0) or TTS:

    python benchmarks/speechsplit_steps.py dump --data data/synthetic/small --out .gpucarry/ss_utts.pkl   # CPU
    python benchmarks/speechsplit_steps.py train --utts .gpucarry/ss_utts.pkl --steps 20000 --widths full \
        --out-json $OUT/speechsplit_steps.json                                                          # GPU

``--widths small|full``: the preset's SpeechSplit sizes (talklib/config.py, audio_ss_*).
"""

from __future__ import annotations

import argparse
import json
import pickle
import sys
import time
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

WIDTHS = {  # conv_content, conv_pitch, conv_rhythm, dec_dim, dec_layers, lr, batch, crop (talklib/config.py)
    "small": dict(conv_content=64, conv_pitch=32, conv_rhythm=32, dec_dim=96, dec_layers=1, lr=3e-3, batch=8, crop=128),
    "full": dict(conv_content=512, conv_pitch=256, conv_rhythm=128, dec_dim=512, dec_layers=3, lr=1e-4, batch=16, crop=192),
}


def dump(args) -> None:
    from talklib.audio import corpus as AC
    from talklib.speaker.build import ensure_corpus

    corpus = ensure_corpus(args.data, "small", args.seed)
    utts = AC.utterances_from_corpus(corpus, test_every=args.test_every)
    info = AC.analyse(utts)
    for u in utts:
        u.audio = np.zeros(0, np.float32)    # not needed for training or probing
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_bytes(pickle.dumps({"utts": utts, "voices": info["voices"]}))
    print(f"{len(utts)} utterances -> {args.out} ({Path(args.out).stat().st_size / 1e6:.1f} MB)")


def probe(model, utts, dev) -> dict:
    from talklib.audio import corpus as AC
    from talklib.audio import speechsplit as SS

    model.eval()
    for u in utts:
        u.data["codes"] = SS.codes_per_frame(SS.codes_of(model, u.data["ss"]["mel"], u.data["ss"]["f0_onehot"], dev),
                                             u.n_frames)
    train, test = AC.split(utts)
    reps = {k: (lambda u, k=k: u.data["codes"][k]) for k in ("content", "rhythm", "pitch")}
    p = AC.probe_tables(train, test, reps)
    model.train()
    return {"phone_acc": p["phone_acc"], "f0_r2": p["f0_r2"], "majority": p["majority"],
            "content_minus_rhythm": p["phone_acc"]["content"] - p["phone_acc"]["rhythm"],
            "pitch_minus_content_r2": p["f0_r2"]["pitch"] - p["f0_r2"]["content"]}


def train(args) -> None:
    from talklib.audio import speechsplit as SS

    blob = pickle.loads(Path(args.utts).read_bytes())
    utts, voices = blob["utts"], blob["voices"]
    w = dict(WIDTHS[args.widths])
    lr, batch, crop = w.pop("lr"), w.pop("batch"), w.pop("crop")
    dev = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    torch.manual_seed(args.seed)
    model = SS.SpeechSplit(SS.SpeechSplitConfig(**w, n_speakers=len(voices))).to(dev)
    items = [u.data["ss"] for u in utts if u.split == "train"]
    rows, t0, done = [], time.perf_counter(), 0
    print(f"{len(items)} training utterances, widths {args.widths}, lr {lr}, batch {batch}, crop {crop}, {dev}",
          flush=True)
    while done < args.steps:
        n = min(args.probe_every, args.steps - done)
        # one call per segment: a constant learning rate (lr_final 1.0), as SpeechSplit's recipe
        losses = SS.train_speechsplit(model, items, n, batch, crop, lr, args.seed + done, dev, progress=False)
        done += n
        r = {"step": done, "time_s": round(time.perf_counter() - t0, 1), "loss": float(np.mean(losses[-50:])),
             **probe(model, utts, dev)}
        rows.append(r)
        print(json.dumps({k: (round(v, 4) if isinstance(v, float) else v) for k, v in r.items()
                          if not isinstance(v, dict)}), flush=True)
        if args.out_json:
            Path(args.out_json).write_text(json.dumps({"args": vars(args), "rows": rows}, indent=1))


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    sub = ap.add_subparsers(dest="cmd", required=True)
    d = sub.add_parser("dump")
    d.add_argument("--data", default="data/synthetic/small")
    d.add_argument("--seed", type=int, default=0)
    d.add_argument("--test-every", type=int, default=3)
    d.add_argument("--out", required=True)
    t = sub.add_parser("train")
    t.add_argument("--utts", required=True)
    t.add_argument("--steps", type=int, default=20000)
    t.add_argument("--probe-every", type=int, default=2500)
    t.add_argument("--widths", choices=sorted(WIDTHS), default="full")
    t.add_argument("--seed", type=int, default=0)
    t.add_argument("--out-json", default=None)
    a = ap.parse_args(argv)
    (dump if a.cmd == "dump" else train)(a)


if __name__ == "__main__":
    main()
