"""How many samples a ray needs before it is done, and how much of a program's work is useful when
rays are marched in fixed blocks (why ``march_triton`` hands rays out from a queue instead).

    python benchmarks/lane_use.py --replay DIR      # DIR written by profile_render.py --save

On one frame of the saved model: per ray, the occupied samples and the samples marched until the
ray is done (T <= T_MIN or no occupied sample left); then, for blocks of 16 and 32 rays in three
orders, lane-rounds (block size x the longest ray of the block, summed) against the samples needed.
Runs on a CPU (the field in PyTorch).
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from talklib.nerf.rays import camera_rays  # noqa: E402
from talklib.nerf.sampling import ray_box, stratified_samples  # noqa: E402
from talklib.nerf.train import load_checkpoint, model_from_checkpoint  # noqa: E402

T_MIN = 1e-4


@torch.no_grad()
def needed_samples(model, inp) -> tuple[torch.Tensor, torch.Tensor]:
    """(occupied samples, samples marched until done) per ray of the first frame."""
    f = model.cfg.upsample
    h = inp["H"] // f
    o, d = camera_rays(inp["c2w"][:1], inp["focal"] / f, inp["cx"] / f, inp["cy"] / f, h, h)
    o, d = o.reshape(-1, 3), d.reshape(-1, 3)
    S = model.cfg.n_samples
    tn, tf = ray_box(o, d, model.center, model.cfg.radius, model.cfg.near, model.cfg.far)
    t, dl = stratified_samples(tn, tf, S)
    u = (o[:, None] + t[..., None] * d[:, None] - model.center) / model.cfg.radius
    occ = model.occupancy.query(u) & (dl > 0) & (u.abs() <= 1).all(-1)
    sel = occ.reshape(-1).nonzero().squeeze(1)
    codes = model.codes(inp["cond"][:1])
    sigma = torch.zeros(occ.shape)
    sigma.view(-1)[sel] = model.field(u.reshape(-1, 3)[sel], d[sel // S], codes.expand(len(sel), -1))[1]
    T = torch.exp(-torch.cumsum(sigma * dl / model.cfg.radius, 1))   # transmittance after each sample
    count = occ.sum(1)
    stop = (T <= T_MIN) & occ
    first = stop.int().argmax(1)
    rank = torch.cumsum(occ.int(), 1).gather(1, first[:, None])[:, 0]
    return count, torch.where(stop.any(1), rank, count)


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--replay", required=True, help="folder with nerf.pt and inputs.pt (profile_render.py --save)")
    args = ap.parse_args()
    model = model_from_checkpoint(load_checkpoint(Path(args.replay) / "nerf.pt")).eval()
    inp = torch.load(Path(args.replay) / "inputs.pt", weights_only=True)
    count, need = needed_samples(model, inp)
    hit = count > 0
    res = {"rays": int(len(count)), "rays_with_occupied_samples": int(hit.sum()),
           "occupied_samples": int(count.sum()), "samples_needed": int(need.sum()),
           "needed_percentiles_10_50_90_99": np.percentile(need[hit].numpy(), [10, 50, 90, 99]).tolist(),
           "occupied_percentiles_10_50_90_99": np.percentile(count[hit].numpy(), [10, 50, 90, 99]).tolist()}
    orders = {"pixel": torch.arange(len(need)), "by_count": torch.argsort(count, descending=True),
              "by_need_oracle": torch.argsort(need, descending=True)}
    for name, key in orders.items():
        for b in (16, 32):
            rounds = need[key].view(-1, b).max(1).values.sum() * b
            res[f"useful_fraction_{name}_block{b}"] = float(need.sum() / rounds)
    print(json.dumps(res, indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
