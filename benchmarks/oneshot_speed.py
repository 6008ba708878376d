"""How fast S3D-NeRF's single shot is: encoding a new identity, and rendering talking frames from it.

    python benchmarks/oneshot_speed.py [--preset small|full] [--repeats 5] [--batches 1,8] [--half] [--device auto]
        [--train-steps N]

Builds ``talklib.oneshot.model.S3DNeRF`` at the preset's sizes (``s3d_*`` of ``talklib/config.py``; untrained
weights: the time does not depend on them), encodes a photo-sized image (Eq. 1 + slot attention) and renders
frames driven by mel windows (Eq. 3-5 + super-resolution), one frame per call and ``b`` frames per call, after a
warm-up. Prints one JSON line. The issue's targets (one GPU, 256²): >= 100 FPS, encoding <= 1 s; the paper:
9.5 FPS. ``--train-steps N`` also times N training steps of ``talklib.oneshot.train.train_s3d`` (every loss of
Eq. 9, the discriminator from the first step, the sync window every ``s3d_sync_every``-th step) on random
identities of the preset's size, with an untrained expert and perceptual network: the step time, so a full
preset's training can be planned against a GPU lease.
"""

from __future__ import annotations

import argparse
import json
import platform
import statistics
import time

import torch

from talklib import config
from talklib.oneshot.model import S3DConfig, S3DNeRF, expand_identity


def _sync(dev: torch.device) -> None:
    if dev.type == "cuda":
        torch.cuda.synchronize(dev)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--preset", default="small", choices=("small", "full"))
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--frames", type=int, default=64, help="frames rendered per timing")
    ap.add_argument("--batches", default="1,8", help="frames per render call, comma-separated")
    ap.add_argument("--half", action="store_true", help="render under bfloat16 autocast (CUDA)")
    ap.add_argument("--device", default="auto")
    ap.add_argument("--train-steps", type=int, default=0, help="also time this many training steps (0: no)")
    a = ap.parse_args()
    from talklib.runtime import pick_device

    dev = pick_device(a.device)
    p = config.preset(a.preset)
    cfg = S3DConfig.sized(size=p["s3d_size"], sr_factor=p["s3d_sr_factor"], samples=p["s3d_samples"],
                          window=p["s3d_window"], plane_channels=p["s3d_plane_channels"],
                          width=p["s3d_width"])
    torch.manual_seed(0)
    model = S3DNeRF(cfg).to(dev).eval()
    s = cfg.size
    img, mask = torch.rand(1, 3, s, s, device=dev), torch.ones(1, 1, s, s, device=dev)
    c2w = torch.eye(4, device=dev)[None]
    c2w[0, 2, 3] = 0.6
    focal = s / (2 * 0.19438)                      # FOV 22 deg, as the synthetic speaker's camera
    amp = torch.autocast("cuda", dtype=torch.bfloat16) if (a.half and dev.type == "cuda") else torch.autocast(
        "cpu", enabled=False)

    def encode():
        return model.encode(img, mask, c2w, focal)

    with torch.no_grad(), amp:
        encode()
        enc_t = []
        for _ in range(a.repeats):
            _sync(dev)
            t0 = time.perf_counter()
            ident = encode()
            _sync(dev)
            enc_t.append(time.perf_counter() - t0)
        fps = {}
        for b in (int(x) for x in a.batches.split(",")):
            one = expand_identity(ident, b)
            mel = torch.rand(b, cfg.mel_steps, 80, device=dev)
            cams = c2w.expand(b, 4, 4)
            model.render(one, model.drive(one, mel), cams)
            runs = []
            for _ in range(a.repeats):
                _sync(dev)
                t0 = time.perf_counter()
                for _ in range(max(1, a.frames // b)):
                    model.render(one, model.drive(one, mel), cams)
                _sync(dev)
                runs.append(max(1, a.frames // b) * b / (time.perf_counter() - t0))
            fps[f"batch_{b}"] = {"median": round(statistics.median(runs), 1), "max": round(max(runs), 1)}
    train = time_training(cfg, p, a.train_steps, dev) if a.train_steps else None
    gpu = torch.cuda.get_device_name(dev) if dev.type == "cuda" else None
    print(json.dumps({"benchmark": "oneshot_speed", "preset": a.preset, "size": s, "coarse": s // cfg.sr_factor,
                      "samples": cfg.samples, "half": a.half, "device": gpu or platform.processor() or "cpu",
                      "threads": torch.get_num_threads(), "encode_s": {"median": round(statistics.median(enc_t), 4),
                                                                       "max": round(max(enc_t), 4)},
                      "fps": fps, "train_step_s": train, "torch": torch.__version__}))


def time_training(cfg: S3DConfig, p: dict, steps: int, dev: torch.device) -> dict:
    """Seconds per training step (median over the steps after 3 warm-up steps) on random identities."""
    import numpy as np

    from talklib.codebook.au import AUEncoder
    from talklib.oneshot.data import FaceSet
    from talklib.oneshot.train import PerceptualLoss, TrainConfig, train_s3d
    from talklib.sync.model import SyncNet

    s, n = cfg.size, 40
    sets = []
    for k in range(4):
        g = torch.Generator().manual_seed(k)
        c2w = torch.eye(4).expand(n, 4, 4).clone()
        c2w[:, 2, 3] = 0.6
        inner = torch.zeros(n, 1, s, s, dtype=torch.uint8)
        inner[:, :, s // 6: -s // 8, s // 5: -s // 5] = 255
        lm = np.random.default_rng(k).uniform(0.35 * s, 0.65 * s, (n, 478, 2)).astype(np.float32)
        sets.append(FaceSet(f"r{k}", torch.randint(0, 256, (n, 3, s, s), dtype=torch.uint8, generator=g).to(dev),
                            inner.to(dev), c2w.to(dev), np.random.default_rng(k).random((2 * n, 80)).astype(np.float32),
                            lm, s / (2 * 0.19438), np.zeros(n * 640, np.float32)))
    model = S3DNeRF(cfg).to(dev)
    per = PerceptualLoss(AUEncoder()).to(dev)
    expert = SyncNet().to(dev)
    times = []

    def tick(*_a, **_k):
        _sync(dev)
        times.append(time.perf_counter())

    import talklib.oneshot.train as OT

    real = OT.sample_batch

    def timed(*a, **k):
        tick()
        return real(*a, **k)

    OT.sample_batch = timed
    try:
        train_s3d(model, sets, TrainConfig(steps=steps + 3, batch=p["s3d_batch"], adv_from=0.0,
                                           sync_every=p["s3d_sync_every"], disc_width=max(16, p["s3d_width"] // 2)),
                  per, expert, progress=False)
    finally:
        OT.sample_batch = real
    tick()
    d = [b - a for a, b in zip(times[3:], times[4:])]
    return {"median": round(statistics.median(d), 4), "max": round(max(d), 4), "steps": len(d),
            "batch": p["s3d_batch"]}


if __name__ == "__main__":
    main()
