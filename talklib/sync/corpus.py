"""Training and test material for the lip-sync expert from the synthetic speaker's corpus.

- Rendered clips: their frontal frames, ground-truth 2D landmarks (``gt/lmk2d_front.npy``) and audio.
- Speech-only clips (many voices and texts, no frames): we render their ground-truth expression curves
  with ``talklib.face3d.render`` on a training identity — the head pose and lighting of that identity's
  training clip, cycled — so the expert sees far more speech than the few rendered clips hold.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from talklib import checkpoint
from talklib.sync.model import SyncConfig
from talklib.sync.train import SyncClip, prepare_clip


def clip_sync_data(clip, cfg: SyncConfig) -> SyncClip:
    """A rendered ``talklib.data.dataset.Clip`` (front view) -> ``SyncClip`` with ground-truth landmarks."""
    return prepare_clip(clip.frames("front"), clip.landmarks2d("front"), clip.audio(), cfg)


def render_speech(speech, identity_clip, device=None, batch: int = 32, start: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Render a speech-only clip's ``exp`` (T, 79) frontally on ``identity_clip``'s identity, with that
    clip's head pose and lighting cycled. Returns frames (T, H, W, 3) uint8 and landmarks (T, 478, 2)."""
    return render_expressions(speech.exp(), identity_clip, device, batch, start)


def render_expressions(exp: np.ndarray, identity_clip, device=None, batch: int = 32,
                       start: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Render expressions (T, 79) frontally on ``identity_clip``'s identity, with that clip's head pose and
    lighting cycled from its frame ``start``. Returns frames (T, H, W, 3) uint8 and landmarks (T, 478, 2)."""
    import torch

    from talklib.face3d.model import MorphableModel
    from talklib.face3d.render import render

    exp = np.asarray(exp, np.float32)
    T = len(exp)
    cam = identity_clip.camera("front")
    pose = identity_clip.pose().astype(np.float32)
    illu = identity_clip.illu().astype(np.float32)
    cyc = (start + np.arange(T)) % len(pose)
    pose, illu = pose[cyc], illu[cyc]
    h, w = identity_clip.size
    t = MorphableModel.from_asset().tensors(device)
    bg = torch.as_tensor(identity_clip.background().astype(np.float32) / 255.0, device=device)
    id_c = torch.as_tensor(identity_clip.id_coeffs(), device=device)
    alb_c = torch.as_tensor(identity_clip.alb_coeffs(), device=device)
    c2w = torch.as_tensor(np.asarray(cam.c2w_world[0], np.float32), device=device)
    frames = np.empty((T, h, w, 3), np.uint8)
    lmk = np.empty((T, 478, 2), np.float32)
    with torch.no_grad():
        for b0 in range(0, T, batch):
            b1 = min(T, b0 + batch)
            n = b1 - b0
            out = render(t, id_c[None].expand(n, -1), torch.as_tensor(exp[b0:b1], device=device),
                         alb_c[None].expand(n, -1), torch.as_tensor(illu[b0:b1], device=device),
                         torch.as_tensor(pose[b0:b1], device=device), c2w[None].expand(n, -1, -1),
                         cam.focal, cam.cx, cam.cy, h, w, bg)
            frames[b0:b1] = (out["rgb"].cpu().numpy() * 255.0 + 0.5).astype(np.uint8)
            lmk[b0:b1] = out["lmk2d"].cpu().numpy()
    return frames, lmk


def speech_sync_data(speech, identity_clip, cfg: SyncConfig, device=None, start: int = 0) -> SyncClip:
    frames, lmk = render_speech(speech, identity_clip, device, start=start)
    return prepare_clip(frames, lmk, speech.audio(), cfg)


@dataclass
class Item:
    """One clip of the expert's material: its name, ``SyncClip``, ground-truth expression (T, 79) and audio."""
    name: str
    data: SyncClip
    exp: np.ndarray
    audio: np.ndarray

    def to_dict(self) -> dict:
        import torch

        return {"name": self.name, "crops": torch.from_numpy(self.data.crops), "mel": torch.from_numpy(self.data.mel),
                "exp": torch.from_numpy(np.ascontiguousarray(self.exp)), "audio": torch.from_numpy(np.ascontiguousarray(self.audio))}

    @classmethod
    def from_dict(cls, d: dict) -> "Item":
        return cls(d["name"], SyncClip(d["crops"].numpy(), d["mel"].numpy()), d["exp"].numpy(), d["audio"].numpy())


def expert_material(corpus, cfg: SyncConfig, speech_clips: int = -1, test_every: int = 3,
                    device=None, renders: int = 1, cache: str | Path | None = None) -> tuple[list[Item], list[Item]]:
    """The lip-sync expert's training and held-out clips (notebook 04's split, reused by notebook 06):
    training = the rendered train clips + the speech-only clips rendered on a training identity, except every
    ``test_every``-th speech-only clip, which is held out with the testA / testB clips. ``speech_clips`` >= 0
    keeps only the first ones. ``renders`` > 1 renders each training speech-only clip that many times, the
    head pose and lighting cycle starting at evenly spaced frames of the identity's clip: the same speech
    under other light, more material for an expert that must not read lighting as speech.

    ``cache``: a file keeping the material for the next caller with the same corpus and settings (notebook 04
    makes it, notebook 06 reads it: the renders are a third of notebook 06's time otherwise); a file of other
    settings or another corpus is replaced, never read."""
    key = _material_key(corpus, cfg, speech_clips, test_every, renders)
    if cache is not None and Path(cache).is_file():
        blob = checkpoint.load(cache, "lip-sync expert material cache", required_keys=("key", "train", "test"))
        if blob["key"] == key:
            return [Item.from_dict(d) for d in blob["train"]], [Item.from_dict(d) for d in blob["test"]]
    train, test = _material(corpus, cfg, speech_clips, test_every, device, renders)
    if cache is not None:
        checkpoint.save(cache, {"key": key, "train": [i.to_dict() for i in train], "test": [i.to_dict() for i in test]})
    return train, test


def _material_key(corpus, cfg: SyncConfig, speech_clips: int, test_every: int, renders: int) -> dict:
    """What the material depends on: the corpus (its fingerprint) and the crop and mel settings."""
    return {"corpus": corpus.fingerprint, "seed": corpus.seed, "path": str(Path(corpus.path).resolve()),
            "frames": cfg.frames, "crop_h": cfg.crop_h, "crop_w": cfg.crop_w, "n_mels": cfg.n_mels,
            "steps_per_frame": cfg.steps_per_frame, "speech_clips": speech_clips, "test_every": test_every,
            "renders": renders}


def _material(corpus, cfg: SyncConfig, speech_clips: int, test_every: int, device, renders: int):
    train_clips = corpus.clips(split="train")
    test_clips = corpus.clips(split="testA") + corpus.clips(split="testB")
    speech = corpus.speech()
    if speech_clips >= 0:
        speech = speech[:speech_clips]
    train = [Item(c.name, clip_sync_data(c, cfg), c.exp(), c.audio()) for c in train_clips]
    test = [Item(c.name, clip_sync_data(c, cfg), c.exp(), c.audio()) for c in test_clips]
    for i, s in enumerate(speech):
        ident = train_clips[i % len(train_clips)]
        d = speech_sync_data(s, ident, cfg, device)
        item = Item(s.name, d, s.exp()[:d.n_frames], s.audio())
        if test_every > 0 and i % test_every == test_every - 1:
            test.append(item)
            continue
        train.append(item)
        for k in range(1, renders):
            d = speech_sync_data(s, ident, cfg, device, start=k * ident.n_frames // renders)
            train.append(Item(f"{s.name}@{k}", d, item.exp, item.audio))
    return train, test
