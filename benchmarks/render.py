"""Benchmark of the conditional NeRF on one GPU: fit time, held-out / novel-view quality, and
rendering speed of the reference path against the fast path at 512 x 512: on CUDA the fused
renderer (``talklib.nerf.march_triton``: marching, field and compositing fused), with and without
H_u through torch.compile, and the PyTorch fast path (occupancy skipping, bf16 field, Triton
compositing) it replaces.

    python benchmarks/render.py --data data/synthetic/full            # a corpus (first train clip) or a clip
    python benchmarks/render.py --toy --size 512                       # the analytic toy head

Prints a table and writes JSON (``--out-json``). Results are recorded in benchmarks/RESULTS.md.
With ``--ckpt DIR`` on a clip (not ``--toy``, which has no audio) the checkpoint is renderable by
``python -m talklib render --checkpoint DIR``: before the fit an audio -> expression network is
trained on the clip's speech (``--a2e-steps``) and saved with the render settings (``render_extra``).
"""

from __future__ import annotations

import argparse
import datetime
import json
import platform
import sys
import time
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from talklib.nerf.scene import toy_scene  # noqa: E402
from talklib.metrics.image import psnr  # noqa: E402
from talklib.nerf.train import evaluate, fit, model_for_scene  # noqa: E402


def ssim(a: torch.Tensor, b: torch.Tensor) -> float:
    try:
        from talklib.metrics.image import ssim as _ssim
        return float(_ssim(a.cpu().numpy(), b.cpu().numpy(), data_range=1.0))
    except ImportError:
        from skimage.metrics import structural_similarity
        return float(np.mean([structural_similarity(x, y, channel_axis=-1, data_range=1.0)
                              for x, y in zip(a.cpu().numpy(), b.cpu().numpy())]))


def load_scene(args, dev):
    if args.toy:
        t = time.perf_counter()
        s = toy_scene(args.frames, args.size, seed=0, head_yaw_deg=15.0, test_every=11, device=dev)
        print(f"toy scene {args.frames} frames {args.size}^2 in {time.perf_counter() - t:.1f}s", flush=True)
        return s, "toy", None
    from talklib.data.dataset import load_dataset
    from talklib.nerf.scene import from_clip

    ds = load_dataset(args.data)
    clip = ds.clip(split="train") if hasattr(ds, "clip") else ds
    t = time.perf_counter()
    s = from_clip(clip, size=args.size, max_frames=args.frames or None, conditions=args.conditions,
                  masks=args.mask_weight > 0, depth=args.depth_weight > 0, box_scale=args.box_scale, device=dev)
    print(f"loaded {clip.path}: {s.images.shape[0]} frames {s.H}x{s.W}, novel {sorted(s.novel)} "
          f"in {time.perf_counter() - t:.1f}s", flush=True)
    return s.to(dev), f"{clip.path} ({clip.n_frames} frames, {clip.size[1]}x{clip.size[0]})", clip


def render_settings(args, scene, clip, dev) -> dict | None:
    """What ``python -m talklib render`` needs with the checkpoint (``render_extra``): the camera, the
    background, the mean condition, and an audio -> f_exp network trained on the clip's speech and
    ground-truth expression (as notebook 03 does, on this one clip). None for the toy head (no audio)
    or when f_exp is not a condition part."""
    if clip is None or "f_exp" not in scene.cond_parts:
        print("checkpoint: no render settings (the toy head has no audio, or f_exp is not conditioned on): "
              "`talklib render` cannot use it", flush=True)
        return None
    from talklib.nerf.audio2exp import Audio2Exp, fit_audio2exp, mel_windows
    from talklib.nerf.talk import render_extra

    names = list(scene.cond_parts)
    s0 = sum(scene.cond_parts[k] for k in names[:names.index("f_exp")])
    k = scene.cond_parts["f_exp"]
    try:
        win = clip.audio_features("mel_win")
    except Exception:  # noqa: BLE001 - features not written yet: compute them
        win = mel_windows(clip.audio(), clip.n_frames)
    exp = clip.exp()[: len(win), :k]
    t = time.perf_counter()
    torch.manual_seed(0)
    a2e = Audio2Exp(out_dim=k).to(dev)
    fit_audio2exp(a2e, [win[: len(exp)]], [exp], steps=args.a2e_steps, seed=0, progress=False)
    print(f"audio -> expression network: {args.a2e_steps} steps in {time.perf_counter() - t:.1f}s", flush=True)
    default = scene.cond[torch.as_tensor(scene.train_idx).to(scene.cond.device)].mean(0)
    return render_extra(scene, a2e.eval(), (s0, s0 + k), default)


def timed(fn, reps: int, dev) -> float:
    fn()
    torch.cuda.synchronize(dev) if dev.type == "cuda" else None
    t = time.perf_counter()
    for _ in range(reps):
        fn()
    torch.cuda.synchronize(dev) if dev.type == "cuda" else None
    return (time.perf_counter() - t) / reps


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--data", default="data/synthetic/full")
    ap.add_argument("--toy", action="store_true")
    ap.add_argument("--size", type=int, default=512)
    ap.add_argument("--frames", type=int, default=0, help="use the first N frames (0: all; toy: default 220)")
    ap.add_argument("--fit-seconds", type=float, default=300.0)
    ap.add_argument("--steps", type=int, default=20000)
    ap.add_argument("--target-psnr", type=float, default=32.0)
    ap.add_argument("--upsample", type=int, default=4)
    ap.add_argument("--samples", type=int, default=64)
    ap.add_argument("--batch", type=int, default=8, help="frames per fast-path render call")
    ap.add_argument("--big-batch", type=int, default=64, help="frames per call of the long-render speed")
    ap.add_argument("--occ-res", type=int, default=128)
    ap.add_argument("--speed-size", type=int, default=512, help="image size the speed is measured at")
    ap.add_argument("--lr", type=float, default=5e-3)
    ap.add_argument("--conditions", default="f_exp:12,f_illu",
                    help="what the field is conditioned on, a talklib.condition list (default: the first 12 "
                         "expression numbers and the SH lighting, as notebook 03)")
    ap.add_argument("--mask-weight", type=float, default=0.0, help="opacity-vs-head-mask loss weight (clips)")
    ap.add_argument("--depth-weight", type=float, default=0.0, help="3DMM depth-prior loss weight (clips)")
    ap.add_argument("--box-scale", type=float, default=2.0, help="head box half-size / landmark half-extent / 1.25")
    ap.add_argument("--view-dir", type=int, default=1, help="1: colour depends on the view direction")
    ap.add_argument("--planes", default="64,128,256", help="tri-plane resolutions")
    ap.add_argument("--hidden", type=int, default=64)
    ap.add_argument("--feat-dim", type=int, default=16)
    ap.add_argument("--deform", type=int, default=1)
    ap.add_argument("--frames-per-step", type=int, default=2)
    ap.add_argument("--train-window", type=int, default=0, help="early-termination window while fitting (0: off)")
    ap.add_argument("--eval-every", type=int, default=500)
    ap.add_argument("--eval-frames", type=int, default=0, help="score N evenly spaced held-out frames (0: all)")
    ap.add_argument("--out-json", default="")
    ap.add_argument("--ckpt", default="", help="checkpoint folder: training resumes from DIR/nerf.pt when it is there; "
                    "on a clip it is renderable by `python -m talklib render`")
    ap.add_argument("--a2e-steps", type=int, default=1000, help="with --ckpt: steps of the audio -> expression network")
    ap.add_argument("--half-train", type=int, default=0, help="1: bf16 autocast in the field while training")
    args = ap.parse_args()
    if args.toy and not args.frames:
        args.frames = 220
    dev = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    torch.backends.cuda.matmul.allow_tf32 = True
    torch.backends.cudnn.allow_tf32 = True
    scene, source, clip = load_scene(args, dev)
    test = torch.as_tensor(scene.test_idx)
    pick = slice(None)
    if args.eval_frames and args.eval_frames < len(test):   # evenly spaced held-out frames (and their novel views)
        pick = torch.linspace(0, len(test) - 1, args.eval_frames).round().long()
    extra = render_settings(args, scene, clip, dev) if args.ckpt else None   # before the seed: the model is as without
    torch.manual_seed(0)
    model = model_for_scene(scene, upsample=args.upsample, n_samples=args.samples, occ_res=args.occ_res,
                            field=dict(feat_dim=args.feat_dim if args.upsample > 1 else 3,
                                       plane_res=[int(x) for x in args.planes.split(",")], plane_channels=8,
                                       hidden=args.hidden, cond_code=32, deform=bool(args.deform),
                                       view_dir=bool(args.view_dir))).to(dev)
    curve, reached = [], {}

    def cb(step, m, row):
        with torch.no_grad():
            p = psnr(evaluate(m, scene, test[:8], mode="fast", half=False), scene.images[test[:8]])
        t = row["time_s"]
        curve.append({"step": step, "fit_s": t, "heldout_psnr8": p})
        print(f"  step {step} fit {t:.0f}s held-out PSNR(8) {p:.2f}", flush=True)
        if p >= args.target_psnr and "time_s" not in reached:
            reached.update(step=step, time_s=t)
        return False

    hist: list = []
    t_fit = time.perf_counter()
    hist.extend(fit(model, scene, steps=args.steps, lr=args.lr, frames_per_step=args.frames_per_step, occ_every=100,
                    occ_conds=16, progress=False, time_budget_s=args.fit_seconds, callback=cb,
                    mask_weight=args.mask_weight, depth_weight=args.depth_weight, callback_every=args.eval_every,
                    ckpt_dir=args.ckpt or None, half=bool(args.half_train),
                    window=args.train_window, extra=extra))
    fit_wall = time.perf_counter() - t_fit
    model.eval()
    with torch.no_grad():
        model.update_occupancy(scene.cond[torch.as_tensor(scene.train_idx)[:64].to(dev)])
        ev = test[pick]
        pred = evaluate(model, scene, ev, mode="fast")
        res = {"heldout_psnr": psnr(pred, scene.images[ev]), "heldout_ssim": ssim(pred, scene.images[ev]),
               "scored_heldout_frames": int(len(ev))}
        for yaw, nv in sorted(scene.novel.items()):
            fr = torch.as_tensor(nv["frames"])[pick]
            pn = evaluate(model, scene, fr, c2w=nv["c2w"][pick], mode="fast")
            res[f"novel_yaw{yaw:+g}_psnr"] = psnr(pn, nv["images"][pick])
            res[f"novel_yaw{yaw:+g}_ssim"] = ssim(pn, nv["images"][pick])
        # speed at the scene's resolution: reference (fp32, dense samples, PyTorch compositing, 1 frame/call)
        H = W = args.speed_size
        k = H / scene.H
        fo, cx, cy = scene.focal * k, scene.cx * k, scene.cy * k
        bgs = torch.nn.functional.interpolate(scene.bg.permute(2, 0, 1)[None], size=(H, W), mode="bilinear")[0]
        bgs = bgs.permute(1, 2, 0).contiguous()
        cond, cams = scene.cond[test], scene.c2w[test]
        b, big = args.batch, args.big_batch
        reps_c = cond[:big] if len(cond) >= big else cond[:1].expand(big, -1)
        reps_w = cams[:big] if len(cams) >= big else cams[:1].expand(big, -1, -1)
        fu = model.cfg.upsample

        def call(n, **kw):
            return lambda: model.render(reps_c[:n], reps_w[:n], fo, cx, cy, H, W, bgs, **kw)

        # reference: fp32, every sample in the box, PyTorch compositing; its best of 1 and 4 frames per call
        t_ref1, t_ref4 = timed(call(1, mode="reference"), 20, dev), timed(call(4, mode="reference"), 5, dev) / 4
        t_ref = min(t_ref1, t_ref4)
        fast = {n: timed(call(n, mode="fast", half=True, fused=False), 20 if n == 1 else 10, dev) / n for n in (1, b)}
        fused = model.can_fuse(dev)
        t = {n: timed(call(n, mode="fast", half=True), 20 if n == 1 else 10, dev) / n for n in (1, b, big)}
        t_comp = {}
        if fused:    # the same with H_u through torch.compile (each batch size compiles once, untimed)
            model.compile_upsampler()
            for n in (b, big):
                call(n, mode="fast", half=True)()
                t_comp[n] = timed(call(n, mode="fast", half=True), 10, dev) / n
        # H_u alone, on the feature image the field renders: what is left if field + compositing cost nothing
        feat = torch.rand(b, model.field.cfg.feat_dim, H // fu, W // fu, device=dev)

        def up(n, half):
            def go():
                with torch.autocast(dev.type, dtype=torch.bfloat16, enabled=half):
                    model.upsampler(feat[:n])
            return go

        t_up1 = timed(up(1, False), 20, dev)
        t_upb = timed(up(b, True), 10, dev) / b
        par = test[torch.linspace(0, len(test) - 1, min(16, len(test))).round().long()]
        pr = evaluate(model, scene, par, mode="reference", batch=1)
        pf = evaluate(model, scene, par, mode="fast", half=True, batch=b)
        with torch.no_grad():
            pu = torch.cat([model.render(scene.cond[i.to(dev)], scene.c2w[i.to(dev)], scene.focal, scene.cx, scene.cy,
                                         scene.H, scene.W, scene.bg, mode="fast", half=True,
                                         fused=False)["rgb"].clamp(0, 1) for i in par.split(b)])
        best = t_comp.get(big, t[big])
        res.update({
            "renderer": "fused Triton kernel (march_triton)" if fused else "PyTorch fast path",
            "fps_reference": 1.0 / t_ref, "fps_reference_batch1": 1.0 / t_ref1, "fps_reference_batch4": 1.0 / t_ref4,
            "fps_fast_unfused_batch1": 1.0 / fast[1], f"fps_fast_unfused_batch{b}": 1.0 / fast[b],
            "fps_fast_batch1": 1.0 / t[1], f"fps_fast_batch{b}": 1.0 / t[b], f"fps_fast_batch{big}": 1.0 / t[big],
            **{f"fps_fast_compiled_upsampler_batch{n}": 1.0 / v for n, v in t_comp.items()},
            "speedup": t_ref / best, f"speedup_batch{b}": t_ref / t_comp.get(b, t[b]),
            "speedup_batch1": t_ref / t[1], "speedup_unfused": t_ref / fast[b],
            "ms_upsampler_fp32_batch1": 1000.0 * t_up1, f"ms_upsampler_bf16_per_frame_batch{b}": 1000.0 * t_upb,
            "speedup_bound_if_field_free": t_ref / t_upb,
            "psnr_reference_path": psnr(pr, scene.images[par]),
            "psnr_fast_path": psnr(pf, scene.images[par]), "psnr_fast_vs_reference": psnr(pf, pr),
            "psnr_unfused_vs_reference": psnr(pu, pr),
            "occupied_fraction": float(model.occupancy.occupied.float().mean()),
        })
    info = {
        "date": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
        "gpu": torch.cuda.get_device_name(dev) if dev.type == "cuda" else platform.processor(),
        "torch": torch.__version__, "command": " ".join(sys.argv), "source": source,
        "size": [scene.H, scene.W], "speed_size": [H, W], "train_frames": int(len(scene.train_idx)), "test_frames": int(len(test)),
        "fit_steps": hist[-1]["step"], "fit_s": hist[-1]["time_s"], "fit_wall_s": fit_wall,
        "time_to_target_s": reached.get("time_s"), "target_psnr": args.target_psnr,
        "model": model.config(), "curve": curve, "results": res,
    }
    print(json.dumps({k: v for k, v in info.items() if k not in ("model", "curve")}, indent=1))
    if args.out_json:
        Path(args.out_json).write_text(json.dumps(info, indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
