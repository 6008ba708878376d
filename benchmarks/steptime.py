"""Seconds per training step of the conditional NeRF on a clip, with and without linear SH lighting
(a quick check of what a condition change costs; used for benchmarks/RESULTS.md).

    python benchmarks/steptime.py data/synthetic/small/clips/id00_train
"""
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from talklib.data.dataset import load_dataset  # noqa: E402
from talklib.nerf.scene import from_clip  # noqa: E402
from talklib.nerf.train import fit, model_for_scene  # noqa: E402

dev = torch.device("cuda" if torch.cuda.is_available() else "cpu")
clip = load_dataset(sys.argv[1])
for parts, ed in ((("f_exp",), None), (("f_exp", "f_illu"), 12)):
    s = from_clip(clip, size=128, parts=parts, exp_dims=ed).to(dev)
    torch.manual_seed(0)
    m = model_for_scene(s, upsample=1, n_samples=64, occ_res=128, field=dict(feat_dim=16, plane_res=[64, 128, 256],
                        hidden=64, cond_code=32)).to(dev)
    h = fit(m, s, steps=300, lr=5e-3, frames_per_step=2, occ_every=100, progress=False)
    per = (h[-1]["time_s"] - h[149]["time_s"]) / 150
    print(f"{'+'.join(parts)}: {per * 1000:.1f} ms/step (steps 150-300), train PSNR {h[-1]['psnr']:.2f}", flush=True)
