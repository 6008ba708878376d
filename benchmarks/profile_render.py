"""Where a fast-path render spends its time: sample counts per pass, FPS by frames per call, the
field alone on packed samples, H_u alone, and the top operators under torch.profiler.

    python benchmarks/profile_render.py --data data/synthetic/gpu_short --size 512 --fit-steps 2000

The model is the full preset's (benchmarks/profile_step.py's baseline, trained with the 3DMM depth
prior) fitted for ``--fit-steps`` on the clip, or read from ``--ckpt`` when that file exists; with
``--save DIR`` the weights and a few held-out render inputs are written there, so the same renders can
be replayed elsewhere (``--replay DIR``, no clip needed). Prints a table and writes JSON (``--out-json``).
"""

from __future__ import annotations

import argparse
import datetime
import json
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks.profile_step import BASE_FIELD, BASE_MODEL  # noqa: E402
from benchmarks.render import timed  # noqa: E402
from talklib.nerf.renderer import default_window  # noqa: E402
from talklib.nerf.train import fit, load_checkpoint, model_for_scene, model_from_checkpoint, save_checkpoint  # noqa: E402


def render_inputs(args, dev):
    """-> (model, inputs): inputs = dict(cond, c2w, focal, cx, cy, H, W, bg) of held-out frames."""
    if args.replay:
        blob = load_checkpoint(Path(args.replay) / "nerf.pt")
        model = model_from_checkpoint(blob).to(dev)
        inp = torch.load(Path(args.replay) / "inputs.pt", weights_only=True)
        return model, {k: (v.to(dev) if torch.is_tensor(v) else v) for k, v in inp.items()}
    from talklib.data.dataset import load_dataset
    from talklib.nerf.scene import from_clip

    clip = load_dataset(args.data)
    scene = from_clip(clip, size=args.size, conditions="f_exp:12,f_illu", depth=True,
                      box_scale=1.2, device=dev).to(dev)
    torch.manual_seed(0)
    model = model_for_scene(scene, **BASE_MODEL, field=dict(BASE_FIELD)).to(dev)
    t = time.perf_counter()
    fit(model, scene, steps=args.fit_steps, lr=5e-3, frames_per_step=2, occ_every=100, occ_conds=16,
        depth_weight=1.0, progress=False)
    print(f"fit {args.fit_steps} steps in {time.perf_counter() - t:.0f}s", flush=True)
    model.eval()
    with torch.no_grad():
        model.update_occupancy(scene.cond[torch.as_tensor(scene.train_idx)[:64].to(dev)])
    test = torch.as_tensor(scene.test_idx)[:64].to(dev)
    inp = dict(cond=scene.cond[test], c2w=scene.c2w[test], focal=scene.focal, cx=scene.cx, cy=scene.cy,
               H=scene.H, W=scene.W, bg=scene.bg)
    if args.save:
        out = Path(args.save)
        out.mkdir(parents=True, exist_ok=True)
        save_checkpoint(out / "nerf.pt", model)
        torch.save({k: (v.cpu() if torch.is_tensor(v) else v) for k, v in inp.items()}, out / "inputs.pt")
    return model, inp


def sample_counts(model, inp, n: int) -> dict:
    """Rays and samples of one fast render of n frames, pass by pass (the renderer's window)."""
    from talklib.nerf.rays import camera_rays
    from talklib.nerf.sampling import ray_box, stratified_samples

    f = model.cfg.upsample
    h, w = inp["H"] // f, inp["W"] // f
    o, d = camera_rays(inp["c2w"][:n], inp["focal"] / f, inp["cx"] / f, inp["cy"] / f, h, w)
    o, d = o.reshape(-1, 3), d.reshape(-1, 3)
    S = model.cfg.n_samples
    tn, tf = ray_box(o, d, model.center, model.cfg.radius, model.cfg.near, model.cfg.far)
    t, dl = stratified_samples(tn, tf, S)
    u = (o[:, None] + t[..., None] * d[:, None] - model.center) / model.cfg.radius
    valid = (dl > 0) & (u.abs() <= 1).all(-1)
    occ = model.occupancy.query(u) & valid
    win = default_window(o.shape[0])
    idx = torch.arange(S, device=o.device)
    first = torch.where(occ.any(1), occ.to(torch.uint8).argmax(1), S)
    front = occ & (idx < first[:, None] + win) if win else occ
    return {"frames": n, "rays": o.shape[0], "rays_in_box": int((valid.any(1)).sum()),
            "rays_occupied": int(occ.any(1).sum()), "box_samples": int(valid.sum()), "occupied_samples": int(occ.sum()),
            "window": win, "front_samples": int(front.sum()), "back_samples_max": int((occ & ~front).sum())}


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--data", default="data/synthetic/gpu_short")
    ap.add_argument("--size", type=int, default=512)
    ap.add_argument("--fit-steps", type=int, default=2000)
    ap.add_argument("--save", default="", help="write the model and render inputs here")
    ap.add_argument("--replay", default="", help="read the model and render inputs from here (no clip)")
    ap.add_argument("--batches", default="1,8,16,32")
    ap.add_argument("--compile", action="store_true", help="also time the field under torch.compile")
    ap.add_argument("--out-json", default="")
    args = ap.parse_args()
    dev = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    torch.backends.cuda.matmul.allow_tf32 = True
    model, inp = render_inputs(args, dev)
    cond, c2w = inp["cond"], inp["c2w"]
    geo = (inp["focal"], inp["cx"], inp["cy"], inp["H"], inp["W"], inp["bg"])
    res: dict = {"counts": [sample_counts(model, inp, n) for n in (1, 8)]}
    print(json.dumps(res["counts"]), flush=True)
    with torch.no_grad():
        res["fps_reference_batch1"] = 1.0 / timed(lambda: model.render(cond[:1], c2w[:1], *geo, mode="reference"), 20, dev)
        res["fps_reference_batch4"] = 4.0 / timed(lambda: model.render(cond[:4], c2w[:4], *geo, mode="reference"), 5, dev)
        print(f"reference: {res['fps_reference_batch1']:.1f} FPS at 1 frame per call, "
              f"{res['fps_reference_batch4']:.1f} at 4", flush=True)
        fuse = [False, True] if model.can_fuse(dev) else [False]
        for n in (int(b) for b in args.batches.split(",")):
            for fu in fuse:
                s = timed(lambda: model.render(cond[:n], c2w[:n], *geo, mode="fast", half=True, fused=fu), 10, dev)
                res[f"fps_{'fused' if fu else 'fast'}_batch{n}"] = n / s
                print(f"{'fused' if fu else 'fast'}, {n} frames per call: {n / s:.1f} FPS", flush=True)
        if True in fuse:   # image parity of the fused renderer with the reference, 8 frames
            from talklib.metrics.image import psnr

            ref = model.render(cond[:8], c2w[:8], *geo, mode="reference")["rgb"].clamp(0, 1)
            fus = model.render(cond[:8], c2w[:8], *geo, mode="fast", half=True, fused=True)["rgb"].clamp(0, 1)
            res["psnr_fused_vs_reference"] = psnr(fus, ref)
            res["max_abs_fused_vs_reference"] = float((fus - ref).abs().max())
            print(f"fused vs reference: {res['psnr_fused_vs_reference']:.1f} dB, max {res['max_abs_fused_vs_reference']:.4f}")
        if True in fuse:   # the fused renderer alone, by rays per program and warps (8 frames)
            from talklib.nerf.march_triton import march
            from talklib.nerf.rays import camera_rays

            f = model.cfg.upsample
            o, d = camera_rays(c2w[:8], inp["focal"] / f, inp["cx"] / f, inp["cy"] / f, inp["H"] // f, inp["W"] // f)
            o, d = o.reshape(-1, 3), d.reshape(-1, 3)
            codes = model.codes(cond[:8])
            for blk, nw, ps in ((16, 2, 4), (16, 2, 8), (16, 2, 16), (16, 1, 16), (8, 1, 16), (32, 2, 8), (32, 4, 8)):
                ms = 1000 * timed(lambda: march(model, o, d, codes, o.shape[0] // 8, block=blk, num_warps=nw,
                                                programs_per_sm=ps), 10, dev)
                res[f"ms_march_batch8_block{blk}_warps{nw}_per_sm{ps}"] = ms
                print(f"march 8 frames, block {blk}, {nw} warps, {ps} programs per SM: {ms:.2f} ms", flush=True)
            model.compile_upsampler()
            for n in (int(b) for b in args.batches.split(",")):
                model.render(cond[:n], c2w[:n], *geo, mode="fast", half=True)   # compiles for this batch size
                s = timed(lambda: model.render(cond[:n], c2w[:n], *geo, mode="fast", half=True), 10, dev)
                res[f"fps_fused_compiled_upsampler_batch{n}"] = n / s
                print(f"fused + compiled H_u, {n} frames per call: {n / s:.1f} FPS", flush=True)
        # the field alone on the front pass's packed samples of 8 frames (bf16), and H_u alone
        c8 = res["counts"][1]["front_samples"]
        x = torch.rand(c8, 3, device=dev) * 2 - 1
        dd = torch.nn.functional.normalize(torch.randn(c8, 3, device=dev), dim=-1)
        code = model.codes(cond[:8])[torch.arange(8, device=dev).repeat_interleave(c8 // 8 + 1)[:c8]]

        def field():
            with torch.autocast(dev.type, dtype=torch.bfloat16):
                model.field(x, dd, code)
        res["ms_field_front_samples_batch8"] = 1000 * timed(field, 10, dev)
        if args.compile:   # the same field through torch.compile (Inductor's Triton kernels), fixed shapes
            cf = torch.compile(model.field)

            def cfield():
                with torch.autocast(dev.type, dtype=torch.bfloat16):
                    cf(x, dd, code)
            t0 = time.perf_counter()
            cfield()
            res["s_compile_field"] = time.perf_counter() - t0
            res["ms_field_front_samples_batch8_compiled"] = 1000 * timed(cfield, 10, dev)
        feat = torch.rand(8, model.field.cfg.feat_dim, inp["H"] // model.cfg.upsample, inp["W"] // model.cfg.upsample,
                          device=dev)

        def up():
            with torch.autocast(dev.type, dtype=torch.bfloat16):
                model.upsampler(feat)
        res["ms_upsampler_batch8"] = 1000 * timed(up, 10, dev)
        featcl = feat.to(memory_format=torch.channels_last)

        def up_cl():
            with torch.autocast(dev.type, dtype=torch.bfloat16):
                model.upsampler(featcl)
        res["ms_upsampler_batch8_channels_last"] = 1000 * timed(up_cl, 10, dev)
        if args.compile:
            cu = torch.compile(model.upsampler)

            def up_c():
                with torch.autocast(dev.type, dtype=torch.bfloat16):
                    cu(feat)
            up_c()
            res["ms_upsampler_batch8_compiled"] = 1000 * timed(up_c, 10, dev)
        print({k: v for k, v in res.items() if k != "counts"}, flush=True)
        if dev.type == "cuda":
            from torch.profiler import ProfilerActivity, profile
            for fu in fuse:
                with profile(activities=[ProfilerActivity.CPU, ProfilerActivity.CUDA]) as prof:
                    for _ in range(3):
                        model.render(cond[:8], c2w[:8], *geo, mode="fast", half=True, fused=fu)
                    torch.cuda.synchronize()
                ka = prof.key_averages()
                name = "fused" if fu else "fast"
                res[f"kernels_per_call_{name}"] = sum(e.count for e in ka if e.device_type.name == "CUDA") / 3
                print(f"--- {name}, 8 frames per call, 3 calls", flush=True)
                print(ka.table(sort_by="cuda_time_total", row_limit=40 if not fu else 20), flush=True)
    info = {"date": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
            "gpu": torch.cuda.get_device_name(dev) if dev.type == "cuda" else "cpu", "torch": torch.__version__,
            "command": " ".join(sys.argv), "results": res}
    print(json.dumps(info, indent=1))
    if args.out_json:
        Path(args.out_json).write_text(json.dumps(info, indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
