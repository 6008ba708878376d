"""Fitting the conditional NeRF to a speaker: photometric loss Eq. (6), resumable checkpoints.

    L_pho = || H_u(F(r; theta, condition)) + (1 - A) * background - I ||^2       (NeRF-3DTalker Eq. (6))

Each step renders ``frames_per_step`` whole training frames at the low resolution (H_u needs whole
images), with jittered samples and occupancy-grid skipping once the grid has been computed, and
takes one Adam step. A checkpoint (model config, weights, optimiser, step, loss history, random
state) is written atomically every ``ckpt_every`` steps and at the end; calling ``fit`` again with
the same checkpoint folder continues from the last one. Loading checks the file's checksums and that
every tensor is finite, so damaged bytes are refused instead of rendering garbage.
"""

from __future__ import annotations

import time
from pathlib import Path

import torch
from tqdm.auto import tqdm

from talklib import checkpoint
from talklib.errors import UserError
from talklib.nerf.model import NeRFConfig, TalkingNeRF
from talklib.nerf.scene import SceneData

CKPT_NAME = "nerf.pt"


def model_settings(params: dict) -> dict:
    """NeRFConfig settings (``field=`` the FieldConfig ones) from the papermill parameters ``nerf_*``
    (a notebook's parameters, a preset, ``train``'s ``-p``), the one path from parameters to the model."""
    need = ("nerf_samples", "nerf_upsample", "nerf_occ_res", "nerf_plane_res", "nerf_hidden", "nerf_feat_dim",
            "nerf_cond_code", "nerf_deform", "nerf_view_dir")
    missing = [k for k in need if k not in params]
    if missing:
        raise ValueError(f"model_settings needs the parameters {', '.join(missing)} (talklib.config)")
    p = {k: params[k] for k in need}
    plane = p["nerf_plane_res"]
    plane = [int(x) for x in plane.split(",")] if isinstance(plane, str) else [int(x) for x in plane]
    return {"n_samples": int(p["nerf_samples"]), "upsample": int(p["nerf_upsample"]), "occ_res": int(p["nerf_occ_res"]),
            "field": {"plane_res": plane, "hidden": int(p["nerf_hidden"]), "feat_dim": int(p["nerf_feat_dim"]),
                      "cond_code": int(p["nerf_cond_code"]), "deform": bool(p["nerf_deform"]),
                      "view_dir": bool(p["nerf_view_dir"])}}


def model_for_scene(scene: SceneData, **settings) -> TalkingNeRF:
    """A model sized for ``scene`` (its conditions and head box); ``settings`` are NeRFConfig fields
    (``model_settings`` makes them from the parameters), ``field=dict(...)`` the FieldConfig ones."""
    try:
        cfg = NeRFConfig(cond_parts=dict(scene.cond_parts), center=tuple(float(c) for c in scene.center),
                         radius=float(scene.radius), near=float(scene.near), far=float(scene.far),
                         conditions=dict(scene.conditions), **settings)
    except TypeError as e:
        raise ValueError(f"unknown NeRF setting: {e}") from None
    model = TalkingNeRF(cfg)
    model.set_condition_stats(scene.cond[torch.as_tensor(scene.train_idx, dtype=torch.long).to(scene.cond.device)].cpu())
    return model


def save_checkpoint(path: str | Path, model: TalkingNeRF, extra: dict | None = None,
                    optimizer: torch.optim.Optimizer | None = None, step: int = 0,
                    history: list | None = None, rng: dict | None = None) -> Path:
    """Write model config + weights (+ optimiser/step/history/random-generator states for resuming)
    atomically (``talklib.checkpoint``)."""
    blob = {"config": model.config(), "state": {k: v.detach().cpu() for k, v in model.state_dict().items()},
            "step": int(step), "history": list(history or []), "extra": extra or {}}
    if optimizer is not None:
        blob["optimizer"] = optimizer.state_dict()
    if rng is not None:
        blob["rng"] = {k: v.get_state().cpu() for k, v in rng.items()}
    return checkpoint.save(path, blob)


def load_checkpoint(path: str | Path, map_location="cpu") -> dict:
    """Read a checkpoint written by ``save_checkpoint`` (a file, or the folder holding ``nerf.pt``),
    checked by ``talklib.checkpoint.load``: CRC-32 of every part, every floating-point tensor finite."""
    path = Path(path)
    if path.is_dir():
        path = path / CKPT_NAME
    return checkpoint.load(path, "NeRF checkpoint", map_location, required_keys=("config", "state"),
                           fix=f"pass the folder a talklib NeRF training run wrote (it holds {CKPT_NAME}), or retrain")


def model_from_checkpoint(blob: dict, expect: dict | None = None) -> TalkingNeRF:
    """Rebuild the model of a checkpoint; ``expect`` (a config dict) must match when given."""
    cfg = blob["config"]
    if expect is not None and cfg != expect:
        diff = sorted(k for k in set(cfg) | set(expect) if cfg.get(k) != expect.get(k))
        raise UserError(f"checkpoint was trained with another configuration (differs in {', '.join(diff)}): "
                        "use a fresh checkpoint folder or the settings it was trained with")
    try:
        model = TalkingNeRF(NeRFConfig.from_dict(cfg))
    except (TypeError, ValueError, KeyError, AttributeError):
        raise UserError("checkpoint configuration is not one of a talklib NeRF: the file is damaged, retrain") from None
    try:
        model.load_state_dict(blob["state"])
    except RuntimeError:
        raise UserError("checkpoint weights do not fit its configuration: the file is damaged, retrain") from None
    return model


def warm_start(model: TalkingNeRF, source: dict) -> list[str]:
    """Copy into ``model`` every weight of ``source`` (a checkpoint's ``state``) whose name and shape match;
    returns the names left at their initialisation. Used to start the rows of an ablation from one trained
    head (notebook 05: each audio embedding starts from notebook 03's field and gets the same steps); the
    occupancy grid is copied too, so training starts on the fast path."""
    own = model.state_dict()
    take = {k: v for k, v in source.items() if k in own and own[k].shape == v.shape
            and k not in ("cond_mean", "cond_std")}
    model.load_state_dict({**own, **take})
    return sorted(k for k in own if k not in take)


def fit(model: TalkingNeRF, scene: SceneData, steps: int, ckpt_dir: str | Path | None = None,
        lr: float = 1e-2, frames_per_step: int = 1, ckpt_every: int = 200, occ_every: int = 100,
        occ_conds: int = 16, tv_weight: float = 1e-4, mask_weight: float = 0.0, depth_weight: float = 0.0,
        seed: int = 0, half: bool = False, window: int = 0,
        progress: bool = True, extra: dict | None = None, time_budget_s: float | None = None,
        callback=None, callback_every: int = 0, focus: tuple[int, int, int, int] | None = None,
        focus_every: int = 0) -> list[dict]:
    """Train ``model`` on ``scene`` (same device) for ``steps`` steps; returns the loss history.

    History rows: {"step", "loss", "psnr", "occupied", "time_s"} ("psnr": -10 log10 of the step's MSE, a readout
    of the loss; held-out PSNR is ``talklib.metrics.image.psnr``). With ``ckpt_dir``, resumes from
    ``ckpt_dir/nerf.pt`` when it exists (same configuration required) and saves there; the checkpoint
    holds the optimiser and the random generators' states, so a resumed run takes the very steps the
    uninterrupted one would have (on the same device).
    ``callback(step, model, row)`` runs every ``callback_every`` steps (time outside it is not counted in
    ``time_s``); it returns True to stop training, or a dict of numbers to add to the row and show on the
    progress bar (``{"heldout_psnr": ...}``; ``"stop": True`` in it stops too). ``time_budget_s`` stops after that much
    training time.
    ``mask_weight`` > 0 with ``scene.alpha``: add mask_weight * ||A - alpha||^2, the rendered opacity
    against the head masks (at the rendering resolution). ``depth_weight`` > 0 with
    ``scene.depth`` (the 3DMM prior, ``scene.prior_depth``): add depth_weight * mean((E[t] - t_prior) / radius)^2
    over the pixels the prior's surface covers (E[t] = sum_i w_i t_i), and as much opacity-vs-coverage
    loss; beyond Eq. (6), it pins the geometry that novel views need.
    ``focus`` (row0, row1, col0, col1) in pixels, multiples of the upsampling factor, with ``focus_every`` = k:
    of every k steps, k - 1 render only that window of the frame (the lower face, say) and one the whole
    frame. AD-NeRF samples most of its rays inside the face box for the same reason: the audio moves a
    few per cent of the pixels, and whole frames bury that signal under the still head.
    ``window``: the fast path's early-termination window once the occupancy grid is on (0, the
    default: off, which trained as fast or faster on a GPU: benchmarks/RESULTS.md, section "The
    training step").
    """
    dev = scene.images.device
    opt = torch.optim.Adam(model.param_groups(lr), betas=(0.9, 0.99), eps=1e-12)
    sched = lambda s: 0.1 ** (s / max(steps, 1))  # noqa: E731  exponential decay to lr/10
    start, history = 0, []
    ckpt = Path(ckpt_dir) / CKPT_NAME if ckpt_dir is not None else None
    if ckpt is not None and ckpt.is_file():
        blob = load_checkpoint(ckpt, map_location=dev)
        if blob["config"] != model.config():
            model_from_checkpoint(blob, expect=model.config())   # raises the configuration error
        try:
            model.load_state_dict(blob["state"])
        except RuntimeError:
            raise UserError(f"checkpoint {ckpt} weights do not fit its configuration: the file is damaged, "
                            "delete it to train afresh") from None
        if "optimizer" in blob:
            opt.load_state_dict(blob["optimizer"])
        start, history = int(blob["step"]), list(blob["history"])
    g = torch.Generator(device=dev).manual_seed(seed * 1000 + start)
    gcpu = torch.Generator().manual_seed(seed * 1000 + 7 + start)
    exact = bool(start) and "rng" in blob
    if exact:   # resume exactly where the run stopped: the same frames and jitter follow
        g.set_state(blob["rng"]["g"].cpu())
        gcpu.set_state(blob["rng"]["gcpu"].cpu())
    train_idx = torch.as_tensor(scene.train_idx, dtype=torch.long)
    use_grid = start >= occ_every
    if use_grid and not exact:   # (an exact resume has the saved occupancy grid already)
        model.update_occupancy(_occ_conditions(scene, occ_conds, gcpu), generator=g)
    t0 = time.perf_counter() - (history[-1]["time_s"] if history else 0.0)
    bar = tqdm(range(start, steps), initial=start, total=steps, desc="fit NeRF", disable=not progress)
    occupied = float(model.occupancy.occupied.float().mean())
    shown = {}     # what the callback reported last, kept on the bar
    for step in bar:
        for pg in opt.param_groups:
            pg["lr"] = pg.setdefault("base_lr", pg["lr"]) * sched(step)
        pick = train_idx[torch.randint(len(train_idx), (frames_per_step,), generator=gcpu)].to(dev)
        use_depth = depth_weight > 0 and scene.depth is not None
        y0, y1, x0, x1 = (0, scene.H, 0, scene.W)
        if focus is not None and focus_every > 1 and step % focus_every:
            y0, y1, x0, x1 = focus        # a window of the frame: the same camera, its principal point shifted
        out = model.render(scene.cond[pick], scene.c2w[pick], scene.focal, scene.cx - x0, scene.cy - y0, y1 - y0,
                           x1 - x0, scene.bg[y0:y1, x0:x1], mode="fast" if use_grid else "reference", perturb=True,
                           generator=g, half=half, depth=use_depth, window=window)
        mse = torch.mean((out["rgb"] - scene.images[pick][:, y0:y1, x0:x1]) ** 2)
        loss = mse + tv_weight * model.regularizer()
        if mask_weight > 0 and scene.alpha is not None:
            f = model.cfg.upsample
            a = scene.alpha[pick][:, None, y0:y1, x0:x1]
            a = a if f == 1 else torch.nn.functional.avg_pool2d(a, f)
            loss = loss + mask_weight * torch.mean((out["acc"] - a[:, 0]) ** 2)
        if use_depth:
            loss = loss + depth_weight * _depth_loss(out, scene.depth[pick][:, y0:y1, x0:x1], model.cfg.upsample,
                                                     model.cfg.radius)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        if (step + 1) % occ_every == 0:
            occupied = model.update_occupancy(_occ_conditions(scene, occ_conds, gcpu), generator=g)
            use_grid = True
        row = {"step": step + 1, "loss": float(mse.detach()), "psnr": -10.0 * float(torch.log10(mse.detach())),
               "occupied": occupied, "time_s": time.perf_counter() - t0, "whole_frame": (y1 - y0, x1 - x0) == (scene.H, scene.W)}
        history.append(row)
        if step % 10 == 0:
            bar.set_postfix(psnr=f"{row['psnr']:.1f}", occ=f"{occupied:.2f}", **shown)
        stop = False
        if callback is not None and callback_every and (step + 1) % callback_every == 0:
            tc = time.perf_counter()
            model.eval()
            res = callback(step + 1, model, row)
            model.train()
            if isinstance(res, dict):
                stop = bool(res.pop("stop", False))
                row.update(res)
                shown.update({k: f"{v:.2f}" for k, v in res.items()})
                bar.set_postfix(psnr=f"{row['psnr']:.1f}", occ=f"{occupied:.2f}", **shown)
            else:
                stop = bool(res)
            t0 += time.perf_counter() - tc
        last = stop or step + 1 == steps or (time_budget_s is not None and row["time_s"] > time_budget_s)
        if ckpt is not None and ((step + 1) % ckpt_every == 0 or last):
            save_checkpoint(ckpt, model, extra, opt, step + 1, history, rng={"g": g, "gcpu": gcpu})
        if last:
            break
    for pg in opt.param_groups:
        pg.pop("base_lr", None)
    return history


def _depth_loss(out: dict, prior: torch.Tensor, f: int, radius: float) -> torch.Tensor:
    """Rendered depth and opacity against the prior's (B, H, W) ray depths, at the rendering resolution."""
    cover = (prior > 0).float()[:, None]
    d = prior[:, None]
    if f > 1:
        cover_lo = torch.nn.functional.avg_pool2d(cover, f)
        d = torch.nn.functional.avg_pool2d(d, f) / cover_lo.clamp(min=1e-6)
        cover = cover_lo
    inside = (cover[:, 0] > 0.999).float()
    err = ((out["depth"] - d[:, 0]) / radius) ** 2 * inside
    return err.sum() / inside.sum().clamp(min=1.0) + torch.mean((out["acc"] - cover[:, 0]) ** 2)


def _occ_conditions(scene: SceneData, k: int, gen: torch.Generator) -> torch.Tensor:
    idx = torch.as_tensor(scene.train_idx, dtype=torch.long)
    pick = idx[torch.randperm(len(idx), generator=gen)[:k]]
    return scene.cond[pick.to(scene.cond.device)]


@torch.no_grad()
def evaluate(model: TalkingNeRF, scene: SceneData, frames, c2w: torch.Tensor | None = None,
             mode: str = "fast", batch: int = 4, half: bool = False,
             window: int | None = None) -> torch.Tensor:
    """Render frames (indices into the scene, optionally with other cameras (M, 4, 4)) -> (M, H, W, 3)."""
    frames = torch.as_tensor(frames, dtype=torch.long)
    cams = scene.c2w[frames.to(scene.c2w.device)] if c2w is None else c2w
    out = []
    for s in range(0, len(frames), batch):
        f = frames[s:s + batch].to(scene.cond.device)
        out.append(model.render(scene.cond[f], cams[s:s + batch], scene.focal, scene.cx, scene.cy,
                                scene.H, scene.W, scene.bg, mode=mode, half=half, window=window)["rgb"].clamp(0, 1))
    return torch.cat(out)
