"""``python -m talklib train``: a NeRF on any dataset folder, conditioned on what you name, resumable.

    python -m talklib train --data DIR --conditions a_content,a_rhythm,a_pitch,f_illu --out runs/NAME/ckpt \
        [--preset small|full] [-p name=value ...] [--resume | --force] [--device auto]

DIR is a clip folder in talklib's AD-NeRF layout (``transforms_*.json``, ``ori_imgs/``, ``aud_*.npy``) or a
corpus (its training clip is used). The conditions are ``talklib.condition`` names (the error lists
them); the sizes and steps come from the preset's ``nerf_*`` (and the audio net's ``cond_audio_dim``,
``cond_frames``; ``cond_focus_every``: an audio-conditioned field trains mostly on the lower face, as
AD-NeRF does) parameters, overridden with ``-p``.
Training shows a tqdm bar with the held-out PSNR, writes an atomic checkpoint (``nerf.pt``) every
``--ckpt-every`` steps and at the end, and ``--resume`` continues after a crash or ``kill -9`` from the
last one. A finished folder (``train.json`` says so) is refused unless ``--resume`` (nothing to do) or
``--force`` (start over). The checkpoint renders from audio alone: ``python -m talklib render``.
The fitting loop itself is ``talklib.nerf.train.fit``; this module is the command around it.
"""

from __future__ import annotations

import argparse
import json
import shutil
import time
from pathlib import Path

from talklib.errors import UserError

SUMMARY = "train.json"


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--data", required=True, help="clip folder (AD-NeRF layout) or corpus folder (its train clip)")
    p.add_argument("--conditions", required=True,
                   help="comma-separated conditions, e.g. a_content,a_rhythm,a_pitch,f_illu or f_exp:12,f_illu")
    p.add_argument("--out", required=True, help="checkpoint folder to write (nerf.pt, train.json)")
    p.add_argument("--preset", default="small", help="parameter preset: small (CPU) or full (GPU)")
    p.add_argument("-p", dest="pairs", action="append", metavar="NAME=VALUE", help="override a nerf_* parameter (or seed)")
    p.add_argument("--resume", action="store_true", help="continue an interrupted run from its last checkpoint")
    p.add_argument("--force", action="store_true", help="delete what --out holds and train afresh")
    p.add_argument("--device", default="auto", help="torch device: auto, cpu, cuda")
    p.add_argument("--ckpt-every", type=int, default=100, help="steps between checkpoints (>= 1)")
    p.add_argument("--eval-every", type=int, default=100, help="steps between held-out PSNR readings (>= 1)")


def parameters(preset: str, pairs: list[str] | None) -> dict:
    """The preset's parameters with ``-p`` overrides, checked (``talklib.config``)."""
    from talklib import config
    from talklib.pipeline import parse_overrides

    params = config.preset(preset)
    params.update(parse_overrides(pairs, None))
    config.check_together(params)
    return params


def open_clip(path: str):
    """The clip to train on: ``path`` itself, or a corpus's training clip; anything else is refused."""
    from talklib.data.dataset import Clip, Corpus, load_dataset

    p = Path(path)
    if not p.is_dir():
        raise UserError(f"--data {path} is not a folder: give a clip folder (AD-NeRF layout) or a corpus folder")
    if not ((p / "corpus.json").is_file() or (p / "dataset.json").is_file()):
        raise UserError(f"--data {path} is not a talklib dataset (no corpus.json or dataset.json): make one with "
                        "`python -m talklib synth --out DIR` or give a clip folder")
    ds = load_dataset(p)
    if isinstance(ds, Corpus):
        clip = ds.clip(split="train")
        print(f"corpus {p}: training on its clip {clip.name}", flush=True)
        return clip, ds
    if not isinstance(ds, Clip):
        raise UserError(f"--data {path} is a speech-only clip (no video): give a rendered clip or a corpus")
    return ds, None


def state_of(out: Path) -> str:
    """``empty`` (nothing there), ``unfinished`` (a checkpoint but no finished summary), ``finished``."""
    if (out / SUMMARY).is_file():
        try:
            if json.loads((out / SUMMARY).read_text()).get("status") == "finished":
                return "finished"
        except (OSError, ValueError):
            pass
    return "unfinished" if (out / "nerf.pt").is_file() else "empty"


def check_out(out: Path, resume: bool, force: bool) -> str:
    if resume and force:
        raise UserError("--resume and --force contradict each other: resume a run, or start it over")
    if out.exists() and not out.is_dir():
        raise UserError(f"--out {out} is a file: give a folder for the checkpoint")
    state = state_of(out) if out.is_dir() else "empty"
    if state == "empty" and out.is_dir() and any(out.iterdir()) and not force:
        raise UserError(f"--out {out} holds other files, not a training run: give an empty or new folder "
                        "(or --force to empty it)")
    if state != "empty" and not (resume or force):
        what = "a finished run" if state == "finished" else "an interrupted run"
        raise UserError(f"--out {out} holds {what}: --resume to continue it, --force to start over, or give another folder")
    return state


def audio2exp_for(clip, corpus, exp_dims: int, steps: int, seed: int, dev):
    """The audio -> expression network a 3DMM-expression-conditioned field needs to be driven by audio
    (notebook 03's route): fitted on the clip's audio and, in a corpus, its speech-only clips too."""
    import torch

    from talklib.nerf.audio2exp import Audio2Exp, fit_audio2exp, mel_windows

    sources = ([*corpus.speech()] if corpus is not None else []) + [clip]
    wins = [mel_windows(c.audio(), c.n_frames) for c in sources]
    exps = [c.exp()[: len(w), :exp_dims] for c, w in zip(sources, wins)]
    torch.manual_seed(seed)
    a2e = Audio2Exp(out_dim=exp_dims).to(dev)
    fit_audio2exp(a2e, wins, exps, steps=steps, seed=seed)
    return a2e.eval()


def render_settings(scene, clip, corpus, params: dict, dev, networks: dict) -> dict:
    """What the checkpoint needs so that ``render`` drives it from audio alone."""
    import torch

    from talklib.nerf.talk import render_extra

    from talklib.condition.spec import CONDITIONS

    default = scene.cond[torch.as_tensor(scene.train_idx)].mean(0)
    if scene.conditions or any(n in CONDITIONS and CONDITIONS[n].source == "prior" for n in scene.cond_parts):
        return render_extra(scene, None, None, default, features=networks)
    if "f_exp" in scene.cond_parts:
        k = scene.cond_parts["f_exp"]
        start = 0
        for name, d in scene.cond_parts.items():
            if name == "f_exp":
                break
            start += d
        a2e = audio2exp_for(clip, corpus, k, params["nerf_a2e_steps"], params["seed"], dev)
        return render_extra(scene, a2e, (start, start + k), default)
    eyes = " (f_e is not made from audio: pair it with f_a, as DFA-NeRF does)" if "f_e" in scene.cond_parts else ""
    raise UserError(f"these conditions hold nothing audio can drive (no audio part, no f_exp_aud, no f_exp){eyes}: "
                    "add an audio condition such as a_content or deepspeech, f_exp_aud, or f_exp")


def heldout_reader(scene, frames: int = 8):
    """A ``fit`` callback: the held-out PSNR (``talklib.metrics.image.psnr``, per-frame mean) of up to
    ``frames`` held-out frames."""
    import numpy as np
    import torch

    from talklib.metrics.image import psnr
    from talklib.nerf.train import evaluate

    idx = np.asarray(scene.test_idx)[:frames]
    gt = scene.images[torch.as_tensor(idx).to(scene.images.device)].cpu().numpy()

    def read(step, model, row):
        if len(idx) == 0:
            return {}
        with torch.no_grad():
            pred = evaluate(model, scene, idx, mode="fast").cpu().numpy()
        return {"heldout_psnr": psnr(pred, gt)}

    return read


def run(args: argparse.Namespace) -> int:
    import torch

    from talklib.condition.extract import clip_networks
    from talklib.condition.inputs import config_for
    from talklib.condition.spec import parse
    from talklib.nerf.scene import from_clip, lower_face_box
    from talklib.nerf.train import fit, model_for_scene, model_settings
    from talklib.outputs import atomic_write_text, output_lock, remove_stale
    from talklib.runtime import pick_device

    for flag, v in (("--ckpt-every", args.ckpt_every), ("--eval-every", args.eval_every)):
        if v < 1:
            raise UserError(f"{flag} {v}: give a positive number of steps")
    params = parameters(args.preset, args.pairs)
    parts = parse(args.conditions)
    out = Path(args.out)
    state = check_out(out, args.resume, args.force)
    clip, corpus = open_clip(args.data)
    try:
        dev = pick_device(args.device)
    except ValueError as e:
        raise UserError(str(e)) from None
    # a missing feature file or feature network is refused before anything is written
    ccfg = config_for(clip, parts, audio_dim=params["cond_audio_dim"], frames=params["cond_frames"])
    networks = clip_networks(clip, parts)
    if args.force and out.is_dir():
        shutil.rmtree(out)
    out.mkdir(parents=True, exist_ok=True)
    with output_lock(out):
        remove_stale(out / "nerf.pt")
        if state != "empty" and args.resume:
            print(f"resuming {out} ({state})", flush=True)
        if state == "finished" and args.resume:
            print(f"{out} is finished already: nothing to do (--force trains it again)")
            return 0
        if dev.type == "cpu":
            torch.set_num_threads(max(1, min(torch.get_num_threads(), 2)))
        torch.manual_seed(params["seed"])
        t0 = time.perf_counter()
        scene = from_clip(clip, size=params["nerf_size"], conditions=ccfg, masks=params["nerf_mask_weight"] > 0,
                          depth=params["nerf_depth_weight"] > 0, box_scale=params["nerf_box_scale"]).to(dev)
        print(f"{clip.path}: {scene.images.shape[0]} frames at {scene.W}x{scene.H}, conditions "
              f"{', '.join(str(p) for p in parts)} ({scene.cond.shape[1]} numbers per frame), "
              f"{len(scene.train_idx)} for training, {len(scene.test_idx)} held out", flush=True)
        model = model_for_scene(scene, **model_settings(params)).to(dev)
        extra = render_settings(scene, clip, corpus, params, dev, networks)
        history = fit(model, scene, steps=params["nerf_steps"], ckpt_dir=out, lr=params["nerf_lr"],
                      frames_per_step=params["nerf_frames_per_step"], ckpt_every=args.ckpt_every, occ_every=50,
                      mask_weight=params["nerf_mask_weight"], depth_weight=params["nerf_depth_weight"],
                      seed=params["seed"], extra=extra, time_budget_s=params["nerf_fit_seconds"],
                      callback=heldout_reader(scene), callback_every=args.eval_every,
                      focus=lower_face_box(clip, scene.H, model.cfg.upsample) if any(p.from_audio for p in ccfg.parts) else None,
                      focus_every=params["cond_focus_every"])
        last = history[-1]
        final = heldout_reader(scene, frames=len(scene.test_idx))(last["step"], model.eval(), last)
        summary = {"status": "finished" if last["step"] >= params["nerf_steps"] else "stopped by nerf_fit_seconds",
                   "steps": last["step"], "conditions": ",".join(str(p) for p in parts), "data": str(clip.path),
                   "preset": args.preset, "overrides": args.pairs or [], "train_psnr": last["psnr"],
                   "heldout_psnr": final.get("heldout_psnr"), "train_seconds": last["time_s"],
                   "wall_seconds": time.perf_counter() - t0}
        atomic_write_text(out / SUMMARY, json.dumps(summary, indent=1))
    print(f"{summary['status']}: {last['step']} steps, held-out PSNR {summary['heldout_psnr']:.2f} dB "
          f"-> {out / 'nerf.pt'} (render it: python -m talklib render --checkpoint {out} --audio WAV --out talk.mp4)")
    return 0
