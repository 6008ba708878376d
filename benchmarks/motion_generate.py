"""How long DFA-NeRF's motion branch takes to generate head pose and blinks for a minute of audio.

    python benchmarks/motion_generate.py [--preset small|full] [--seconds 60] [--repeats 5] [--threads N]

Times ``talklib.motion.generator.drive`` (mel -> E_a -> cross-modal encoder -> frozen GP-VAE decoder, window
after window) on synthetic speech at the preset's sizes (``vae_*``, ``cme_bop``, ``msync_dim``,
``attr_eye_dim`` of ``talklib/config.py``). The weights are untrained: the time does not depend on them.
Prints one JSON line: the median and minimum of ``--repeats`` runs after one warm-up, and the mel / E_a part
alone. The issue's target: 60 s of pose and blinks in under a second.
"""

from __future__ import annotations

import argparse
import json
import platform
import statistics
import time

import numpy as np
import torch

from talklib import config
from talklib.audio.contrastive import AudioEncoder
from talklib.motion import generator as G
from talklib.motion import vae as V


def build(p: dict) -> G.MotionGenerator:
    d = 6 + p["attr_eye_dim"]
    cfg = V.VAEConfig(d_in=d, kind="gp_transformer", z_dim=p["vae_z"], width=p["vae_width"],
                      seq_len=p["vae_window"], length_scale=p["vae_length"], beta=p["vae_beta"])
    vae = V.MotionVAE(cfg).eval()
    cme = V.CrossModalEncoder(V.CMEConfig.for_vae(cfg, a_dim=p["msync_dim"])).eval()
    enc = AudioEncoder(dim=p["msync_dim"]).eval()
    rng = np.random.default_rng(0)
    return G.MotionGenerator(enc, vae, cme, np.zeros(d), np.ones(d), rng.normal(size=(p["cme_bop"], d)),
                             p["vae_window"], "benchmark")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--preset", default="small", choices=("small", "full"))
    ap.add_argument("--seconds", type=float, default=60.0)
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--threads", type=int, default=0, help="torch threads (0: torch's default)")
    a = ap.parse_args()
    if a.threads:
        torch.set_num_threads(a.threads)
    gen = build(config.preset(a.preset))
    t = np.arange(int(16000 * a.seconds)) / 16000
    audio = (0.1 * np.sin(2 * np.pi * 140 * t) * (1 + np.sin(2 * np.pi * 3 * t))).astype(np.float32)
    G.drive(gen, audio[:32000])                                     # warm-up
    runs, feats = [], []
    for r in range(a.repeats):
        t0 = time.perf_counter()
        out = G.drive(gen, audio, seed=r)
        runs.append(time.perf_counter() - t0)
        t0 = time.perf_counter()
        G.audio_features(gen.audio_encoder, audio, len(out["pose"]))
        feats.append(time.perf_counter() - t0)
    print(json.dumps({"preset": a.preset, "seconds_of_audio": a.seconds, "frames": len(out["pose"]),
                      "median_s": round(statistics.median(runs), 4), "min_s": round(min(runs), 4),
                      "audio_features_median_s": round(statistics.median(feats), 4),
                      "threads": torch.get_num_threads(), "cpu": platform.processor() or platform.machine(),
                      "torch": torch.__version__}))


if __name__ == "__main__":
    main()
