"""NeRF-3DTalker's Lip-wav generation (Section II.B, Eq. 2): identity image + speech -> lip-region images.

The paper feeds the identity image I_id and the audio to SadTalker's pre-trained LipNet and supervises
the generated "Lip-wav" images with a frozen SyncNet, Eq. (2):

    L_lip = 1/B sum_i -log( f_lip_i . f_a_i / max(|f_lip_i| |f_a_i|, eps) )

with f_lip the face encoder's embedding of the generated images and f_a the audio encoder's of the
matching speech. **Stand-in**: no pre-trained LipNet can be downloaded here, so ``LipWavGenerator`` is a
compact Wav2Lip-style generator (the paper's ref. [19]) trained on the synthetic corpus: a U-Net whose
encoder sees the identity's mouth crop (a frame of the same clip at another time, as Wav2Lip's reference
frame) and whose bottleneck gets a code of the mel window around the target frame; it draws the mouth
crop (the lip region, ``talklib.sync.crops``) at that frame. Unlike Wav2Lip it gets no masked copy of the
target frame: the crops are aligned by landmarks, so there is no pose to copy. The SyncNet of Eq. (2) is
notebook 04's lip-sync expert (``talklib.sync``), frozen; it scores T consecutive generated crops against
their 0.2 s of audio.

Training (``train_lipwav``) minimises |crop_hat - crop|_1 + lip_weight * L_lip, resumably
(``talklib.checkpoint.save_training``). ``lipwav_clip`` turns any audio into a Lip-wav ``SyncClip``, which
the expert scores (LSE-C / LSE-D) like any video.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor, nn
from tqdm.auto import tqdm

from talklib import checkpoint
from talklib.errors import UserError
from talklib.runtime import cosine_lr
from talklib.sync.losses import cosine_sync_loss
from talklib.sync.model import SyncNet
from talklib.sync.train import SyncClip, crop_margins


#: the generator's convolutions run a quarter faster on CPU with NHWC tensors (measured on 2 cores, batch 80)
CHANNELS_LAST = torch.channels_last


@dataclass(frozen=True)
class LipWavConfig:
    crop_h: int = 24        # the lip-sync expert's mouth crop (SyncConfig.crop_h / crop_w)
    crop_w: int = 40
    n_mels: int = 80
    mel_steps: int = 10     # 50 Hz mel steps around each target frame (0.2 s)
    width: int = 32         # channels of the first conv layer (doubling per stage)
    audio_dim: int = 64     # the mel window's code at the bottleneck

    def check(self) -> None:
        if self.crop_h % 4 or self.crop_w % 4:
            raise ValueError(f"crop {self.crop_h}x{self.crop_w}: both sides must be multiples of 4 (two down-samplings)")
        if self.mel_steps < 2 or self.mel_steps % 2:
            raise ValueError(f"mel_steps {self.mel_steps}: an even number >= 2")


def _conv(cin: int, cout: int, stride: int = 1) -> nn.Sequential:
    return nn.Sequential(nn.Conv2d(cin, cout, 3, stride=stride, padding=1), nn.BatchNorm2d(cout), nn.ReLU())


class LipWavGenerator(nn.Module):
    """(reference crop (B, 3, h, w) in [0, 1], mel window (B, mel_steps, 80)) -> lip crop (B, 3, h, w)."""

    def __init__(self, cfg: LipWavConfig | None = None):
        super().__init__()
        cfg = cfg or LipWavConfig()
        cfg.check()
        self.cfg = cfg
        w, a = cfg.width, cfg.audio_dim
        self.enc1, self.enc2, self.enc3 = _conv(3, w), _conv(w, 2 * w, 2), _conv(2 * w, 4 * w, 2)
        self.audio = nn.Sequential(nn.Conv1d(cfg.n_mels, a, 3, padding=1), nn.ReLU(),
                                   nn.Conv1d(a, a, 3, stride=2, padding=1), nn.ReLU(),
                                   nn.AdaptiveAvgPool1d(1), nn.Flatten(), nn.Linear(a, a), nn.ReLU())
        self.mid = nn.Sequential(_conv(4 * w + a, 4 * w), _conv(4 * w, 4 * w))
        self.dec2 = _conv(4 * w + 2 * w, 2 * w)
        self.dec1 = _conv(2 * w + w, w)
        self.out = nn.Conv2d(w, 3, 1)

    def forward(self, ref: Tensor, mel: Tensor) -> Tensor:
        e1 = self.enc1(ref * 2.0 - 1.0)
        e2 = self.enc2(e1)
        e3 = self.enc3(e2)
        code = self.audio(mel.transpose(1, 2) * 2.0 - 1.0)           # (B, audio_dim)
        x = self.mid(torch.cat([e3, code[:, :, None, None].expand(-1, -1, *e3.shape[2:])], 1))
        x = self.dec2(torch.cat([F.interpolate(x, size=e2.shape[2:], mode="nearest"), e2], 1))
        x = self.dec1(torch.cat([F.interpolate(x, size=e1.shape[2:], mode="nearest"), e1], 1))
        return torch.sigmoid(self.out(x))


def frame_mel_windows(mel: np.ndarray, frames: np.ndarray, steps: int) -> np.ndarray:
    """The mel window around each video frame: mel (2N, 80) at 50 Hz, frames (K,) -> (K, steps, 80).

    Frame t covers mel steps 2t, 2t + 1; its window is steps 2t + 1 - steps/2 .. 2t + steps/2, the
    stream's first and last rows repeated past its ends."""
    pad = steps
    m = np.pad(np.asarray(mel, np.float32), ((pad, pad), (0, 0)), mode="edge")
    start = 2 * np.asarray(frames) + 1 - steps // 2 + pad
    return m[start[:, None] + np.arange(steps)[None, :]]


def centre_crops(clip: SyncClip, margins: tuple[int, int], idx: np.ndarray, h: int, w: int) -> np.ndarray:
    """Crops (len(idx), 3, h, w) float32 in [0, 1] from the centre of a ``SyncClip``'s jitter-margin crops."""
    mh, mw = margins
    c = clip.crops[np.asarray(idx)][:, mh:mh + h, mw:mw + w]
    return np.ascontiguousarray(np.transpose(c, (0, 3, 1, 2)), np.float32) / 255.0


def _batch(clips: list[SyncClip], cfg: LipWavConfig, margins, frames: int, batch: int, rng: np.random.Generator):
    """B windows of T frames: targets (B, T, 3, h, w), references (B, T, 3, h, w) (one per window, a frame
    of the same clip), per-frame mel windows (B, T, steps, 80), and the expert's audio window (B, 2T, 80)."""
    ok = [i for i, c in enumerate(clips) if c.n_frames >= frames]
    ci = rng.choice(ok, size=batch)
    tgt, ref, mel, aud = [], [], [], []
    for i in ci:
        c = clips[i]
        s = int(rng.integers(0, c.n_frames - frames + 1))
        r = int(rng.integers(0, c.n_frames))
        idx = np.arange(s, s + frames)
        tgt.append(centre_crops(c, margins, idx, cfg.crop_h, cfg.crop_w))
        ref.append(np.repeat(centre_crops(c, margins, [r], cfg.crop_h, cfg.crop_w), frames, 0))
        mel.append(frame_mel_windows(c.mel, idx, cfg.mel_steps))
        aud.append(np.asarray(c.mel[2 * s:2 * s + 2 * frames], np.float32))
    return [torch.from_numpy(np.stack(x)) for x in (tgt, ref, mel, aud)]


def lip_loss(expert: SyncNet, crops: Tensor, audio: Tensor) -> Tensor:
    """NeRF-3DTalker Eq. (2) on generated windows: crops (B, T, 3, h, w), audio (B, 2T, 80), expert frozen."""
    return cosine_sync_loss(expert.mouth(crops), expert.audio(audio))


def train_lipwav(gen: LipWavGenerator, clips: list[SyncClip], expert: SyncNet | None, steps: int,
                 batch: int = 16, lr: float = 3e-3, lip_weight: float = 0.03, lip_from: float = 0.5, seed: int = 0,
                 ckpt: str | Path | None = None, ckpt_every: int = 100, progress: bool = True,
                 stop_at: int | None = None, branch: str | Path | None = None) -> list[dict]:
    """Train the Lip-wav generator: L1 reconstruction + lip_weight * L_lip (Eq. 2, frozen ``expert``; with
    lip_weight 0 or no expert, reconstruction only). L_lip joins after the first ``lip_from`` of the steps,
    as Wav2Lip switches its sync loss on only once the generator draws mouths: on the flat crops of an
    untrained generator the expert's cosine is near 0 and -log(cos) only adds noise. Crops come from ``clips`` (the expert's ``SyncClip``s:
    rendered clips and speech-only clips rendered on the speaker). Returns the history
    [{"step", "l1", "lip"}]. With ``ckpt`` it resumes from that file after a kill and saves to it every
    ``ckpt_every`` steps and at the end.

    Before L_lip joins, a run with L_lip takes the very steps of the run without (same seed, same batches):
    ``stop_at`` ends a run at that step (saved to ``ckpt``), and ``branch``, the ``ckpt`` of such an L1-only
    run stopped at ``lip_from``, starts this run from it instead of from step 0 (when ``ckpt`` holds nothing
    yet), so the pair of notebook 06 trains its shared first part once."""
    if expert is not None and (expert.cfg.crop_h, expert.cfg.crop_w) != (gen.cfg.crop_h, gen.cfg.crop_w):
        raise UserError(f"the expert scores {expert.cfg.crop_h}x{expert.cfg.crop_w} crops, the generator draws "
                        f"{gen.cfg.crop_h}x{gen.cfg.crop_w}: build LipWavConfig with the expert's crop size")
    frames = expert.cfg.frames if expert is not None else 5
    if not any(c.n_frames >= frames for c in clips):
        raise UserError(f"no clip has {frames} frames, one sync window: give longer clips")
    margins = crop_margins(expert.cfg) if expert is not None else (0, 0)
    if expert is not None:
        expert.eval().requires_grad_(False)
    use_lip = expert is not None and lip_weight > 0
    opt = torch.optim.Adam(gen.parameters(), lr=lr)
    rng = np.random.default_rng(seed)
    torch.manual_seed(seed)
    settings = {"gen": asdict(gen.cfg), "steps": steps, "batch": batch, "lr": lr, "lip_weight": lip_weight,
                "lip_from": lip_from, "seed": seed, "use_lip": use_lip}
    first_lip = int(round(lip_from * steps))
    start, history = (checkpoint.resume_training(ckpt, "Lip-wav training state", settings, gen, opt, {"rng": rng})
                      if ckpt is not None else (0, []))
    if start == 0 and branch is not None and Path(branch).is_file():
        shared = {**settings, "lip_weight": 0.0, "use_lip": False}     # the L1-only run's settings
        start, history = checkpoint.resume_training(branch, "Lip-wav training state", shared, gen, opt, {"rng": rng})
        if start > first_lip:
            raise UserError(f"{branch} is at step {start}, past the {first_lip} steps trained before L_lip joins: "
                            "branch from an L1-only run stopped at lip_from (train_lipwav(stop_at=...))")
    end = steps if stop_at is None else min(steps, stop_at)
    gen.to(memory_format=CHANNELS_LAST).train()
    for step in tqdm(range(start, end), initial=start, total=steps, desc="Lip-wav generator", disable=not progress):
        cosine_lr(opt, lr, step, steps)
        tgt, ref, mel, aud = _batch(clips, gen.cfg, margins, frames, batch, rng)
        B, T = tgt.shape[:2]
        out = gen(ref.flatten(0, 1).contiguous(memory_format=CHANNELS_LAST), mel.flatten(0, 1)).reshape(tgt.shape)
        l1 = (out - tgt).abs().mean()
        lip = lip_loss(expert, out, aud) if use_lip and step >= first_lip else torch.zeros(())
        loss = l1 + lip_weight * lip
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        history.append({"step": step + 1, "l1": float(l1.detach()), "lip": float(lip.detach())})
        if ckpt is not None and ((step + 1) % ckpt_every == 0 or step + 1 in (steps, end)):
            checkpoint.save_training(ckpt, settings, gen, opt, step + 1, history, {"rng": rng})
    gen.eval()
    return history


@torch.no_grad()
def generate(gen: LipWavGenerator, ref_crop: np.ndarray, mel: np.ndarray, n_frames: int, batch: int = 256) -> np.ndarray:
    """Lip-wav crops (n_frames, h, w, 3) uint8 for a mel stream (2 n_frames, 80), all from one reference
    crop (h, w, 3) uint8 of the identity (the paper's I_id)."""
    if n_frames < 1:
        raise UserError("audio too short for one Lip-wav frame (40 ms): give longer audio")
    gen.to(memory_format=CHANNELS_LAST).eval()
    dev = next(gen.parameters()).device
    r = torch.from_numpy(np.ascontiguousarray(np.transpose(ref_crop, (2, 0, 1)), np.float32) / 255.0).to(dev)
    out = []
    for s in range(0, n_frames, batch):
        idx = np.arange(s, min(n_frames, s + batch))
        m = torch.from_numpy(frame_mel_windows(mel, idx, gen.cfg.mel_steps)).to(dev)
        out.append(gen(r[None].expand(len(idx), -1, -1, -1).contiguous(memory_format=CHANNELS_LAST), m).cpu())
    x = torch.cat(out).permute(0, 2, 3, 1).numpy()
    return (x * 255.0 + 0.5).astype(np.uint8)


def lipwav_clip(gen: LipWavGenerator, ref_crop: np.ndarray, mel: np.ndarray, margins: tuple[int, int]) -> SyncClip:
    """A ``SyncClip`` of the Lip-wav crops of a mel stream (edge-padded to the expert's jitter margins), so
    ``talklib.sync.train.score_clip`` scores it like a rendered video."""
    n = len(mel) // 2
    crops = generate(gen, ref_crop, mel, n)
    mh, mw = margins
    return SyncClip(crops=np.pad(crops, ((0, 0), (mh, mh), (mw, mw), (0, 0)), mode="edge"), mel=np.asarray(mel[:2 * n]))


def save_lipwav(gen: LipWavGenerator, path: str | Path) -> Path:
    """Config + weights, atomically (``talklib.checkpoint``)."""
    return checkpoint.save(path, {"config": asdict(gen.cfg), "state": gen.state_dict()})


def load_lipwav(path: str | Path) -> LipWavGenerator:
    """A generator written by ``save_lipwav``, in eval mode (one-line errors for a missing or foreign file)."""
    fix = "give a file written by talklib.condition.lipwav.save_lipwav (notebook 06 saves <run_dir>/models/lipwav.pt)"
    blob = checkpoint.load(path, "Lip-wav generator", required_keys=("config", "state"), fix=fix)
    try:
        gen = LipWavGenerator(LipWavConfig(**blob["config"]))
        gen.load_state_dict(blob["state"])
    except (TypeError, ValueError, RuntimeError):
        raise UserError(f"{path} does not fit talklib's Lip-wav generator: {fix}") from None
    return gen.eval()
