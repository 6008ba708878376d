"""Where a NeRF training step spends its time: milliseconds per step for model/fit variants, and
the top operators of the baseline under torch.profiler.

    python benchmarks/profile_step.py --data data/synthetic/gpu_short --size 512 --steps 200

The baseline is the full preset's model (benchmarks/render.py's recorded command) fitted with the
16-sample window, as when the numbers in RESULTS.md were taken; each variant changes one thing. Steps after the occupancy grid is on (step 100) are timed. Prints a table and
writes JSON (``--out-json``); results go to benchmarks/RESULTS.md.
"""

from __future__ import annotations

import argparse
import datetime
import json
import sys
import tempfile
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from talklib.data.dataset import load_dataset  # noqa: E402
from talklib.nerf.scene import from_clip  # noqa: E402
from talklib.nerf.train import fit, model_for_scene  # noqa: E402

BASE_MODEL = dict(upsample=4, n_samples=48, occ_res=128)
BASE_FIELD = dict(feat_dim=16, plane_res=[64, 128, 256], plane_channels=8, hidden=64, cond_code=32, deform=True,
                  view_dir=False)
BASE_FIT = dict(lr=5e-3, frames_per_step=2, occ_every=100, occ_conds=16, depth_weight=1.0, window=16)

VARIANTS = {
    "baseline": ({}, {}, {}),
    "window0": ({}, {}, {"window": 0}),
    "no_depth": ({}, {}, {"depth_weight": 0.0}),
    "no_deform": ({}, {"deform": False}, {}),
    "1_frame": ({}, {}, {"frames_per_step": 1}),
    "32_samples": ({"n_samples": 32}, {}, {}),
}


def step_ms(scene, model_kw, field_kw, fit_kw, steps, profile_steps=0):
    torch.manual_seed(0)
    model = model_for_scene(scene, **{**BASE_MODEL, **model_kw}, field={**BASE_FIELD, **field_kw}).to(scene.images.device)
    kw = {**BASE_FIT, **fit_kw}
    with tempfile.TemporaryDirectory() as ck:
        h = fit(model, scene, steps=steps, ckpt_dir=ck, ckpt_every=10 ** 9, progress=False, **kw)
        lo = min(120, steps // 2)
        ms = 1000.0 * (h[-1]["time_s"] - h[lo - 1]["time_s"]) / (steps - lo)
        table = None
        if profile_steps:
            from torch.profiler import ProfilerActivity, profile
            with profile(activities=[ProfilerActivity.CPU, ProfilerActivity.CUDA]) as prof:
                fit(model, scene, steps=steps + profile_steps, ckpt_dir=ck, ckpt_every=10 ** 9, progress=False, **kw)
                torch.cuda.synchronize()
            table = prof.key_averages().table(sort_by="cuda_time_total", row_limit=30)
    return ms, h[-1]["psnr"], table


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--data", required=True, help="a clip folder (e.g. synth --train-clip output)")
    ap.add_argument("--size", type=int, default=512)
    ap.add_argument("--box-scale", type=float, default=1.2)
    ap.add_argument("--steps", type=int, default=220)
    ap.add_argument("--variants", default=",".join(VARIANTS))
    ap.add_argument("--profile-steps", type=int, default=10)
    ap.add_argument("--out-json", default="")
    args = ap.parse_args()
    dev = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    torch.backends.cuda.matmul.allow_tf32 = True
    torch.backends.cudnn.allow_tf32 = True
    clip = load_dataset(args.data)
    scene = from_clip(clip, size=args.size, conditions="f_exp:12,f_illu", depth=True,
                      box_scale=args.box_scale, device=dev).to(dev)
    rows = {}
    for name in args.variants.split(","):
        m, f, k = VARIANTS[name]
        ms, ps, table = step_ms(scene, m, f, k, args.steps,
                                args.profile_steps if name == "baseline" and dev.type == "cuda" else 0)
        rows[name] = {"ms_per_step": ms, "train_psnr": ps}
        print(f"{name:12s} {ms:8.1f} ms/step  train PSNR {ps:.2f}", flush=True)
        if table:
            print(table, flush=True)
    info = {"date": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
            "gpu": torch.cuda.get_device_name(dev) if dev.type == "cuda" else "cpu", "torch": torch.__version__,
            "command": " ".join(sys.argv), "frames": int(scene.images.shape[0]), "size": scene.H, "rows": rows}
    if args.out_json:
        Path(args.out_json).write_text(json.dumps(info, indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
