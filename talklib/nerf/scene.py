"""Training data for the NeRF held in memory (``SceneData``), and a toy scene with known answers.

``SceneData`` is what ``talklib.nerf.train.fit`` consumes: frames, per-frame conditions and cameras,
intrinsics, the background, the canonical head box and the novel views of held-out frames. It is
built from a synthetic-speaker clip (``from_clip``, AD-NeRF layout through ``talklib.data.dataset``)
or made here (``toy_scene``): a head-like blob whose mouth opens with condition 0 and whose eyes
close with condition 1, rendered exactly (dense ray marching of the analytic density), so every
component can be tested before the speaker data exists.
"""

from __future__ import annotations

import math
import os
from dataclasses import dataclass, field

import numpy as np
import torch
from torch import Tensor

from talklib.nerf.composite import composite_reference
from talklib.nerf.rays import camera_rays, orbit
from talklib.nerf.sampling import ray_box, stratified_samples


@dataclass
class SceneData:
    images: Tensor            # (N, H, W, 3) float32 in [0, 1]
    cond: Tensor              # (N, cond_dim)
    c2w: Tensor               # (N, 4, 4) camera-to-world (head pose folded in, AD-NeRF style)
    focal: float
    cx: float
    cy: float
    bg: Tensor                # (H, W, 3)
    center: tuple[float, float, float]
    radius: float
    near: float
    far: float
    cond_parts: dict[str, int]
    train_idx: np.ndarray     # frame indices used for fitting
    test_idx: np.ndarray      # held-out frames (same view as recorded)
    novel: dict[float, dict] = field(default_factory=dict)   # yaw -> {"images", "c2w", "frames"}
    alpha: Tensor | None = None   # (N, H, W) head alpha masks in [0, 1] when known (opacity supervision)
    depth: Tensor | None = None   # (N, H, W) ray distance to the 3DMM surface (0 off the head), ``prior_depth``
    conditions: dict = field(default_factory=dict)   # ConditionConfig.to_dict() when audio parts need a Conditioner
    head_pose: Tensor | None = None   # (N, 4, 4) head-to-world of each frame when known: c2w = inv(head_pose) @ c2w_world

    @property
    def H(self) -> int:
        return int(self.images.shape[1])

    @property
    def W(self) -> int:
        return int(self.images.shape[2])

    def to(self, device) -> "SceneData":
        mv = lambda t: t.to(device)  # noqa: E731
        nov = {k: {**v, "images": mv(v["images"]), "c2w": mv(v["c2w"])} for k, v in self.novel.items()}
        return SceneData(mv(self.images), mv(self.cond), mv(self.c2w), self.focal, self.cx, self.cy, mv(self.bg),
                         self.center, self.radius, self.near, self.far, dict(self.cond_parts),
                         self.train_idx, self.test_idx, nov, None if self.alpha is None else mv(self.alpha),
                         None if self.depth is None else mv(self.depth), dict(self.conditions),
                         None if self.head_pose is None else mv(self.head_pose))


# ---- the toy scene ---------------------------------------------------------------------------------

def _smooth_inside(q: Tensor, sharp: float) -> Tensor:
    """1 inside the unit ball of q (..., 3), 0 outside, with a smooth edge."""
    return torch.sigmoid((1.0 - q.norm(dim=-1)) * sharp)


def toy_field(u: Tensor, cond: Tensor) -> tuple[Tensor, Tensor]:
    """Analytic density and colour of the toy head at unit points u (N, 3) under conditions (N, >=2).

    cond[:, 0] in [0, 1] opens the mouth, cond[:, 1] in [0, 1] closes the eyes.
    Returns rgb (N, 3) and sigma (N,).
    """
    jaw, blink = cond[:, 0:1], cond[:, 1:2]
    head = _smooth_inside(u / torch.tensor([0.55, 0.68, 0.55], device=u.device), 40.0)
    mouth_c = torch.tensor([0.0, -0.32, 0.48], device=u.device)
    mouth_r = torch.cat([torch.full_like(jaw, 0.2), 0.02 + 0.14 * jaw, torch.full_like(jaw, 0.2)], dim=-1)
    mouth = _smooth_inside((u - mouth_c) / mouth_r, 25.0)
    nose = _smooth_inside((u - torch.tensor([0.0, -0.05, 0.55], device=u.device)) / 0.09, 30.0)
    sigma = 60.0 * torch.clamp(head * (1.0 - mouth) + nose, 0.0, 1.0)
    # colour: skin with soft bands, dark mouth interior, eyes (white + pupil) that close with blink
    skin = torch.stack([0.85 + 0.08 * torch.sin(6 * u[:, 1]), 0.62 + 0.06 * torch.sin(5 * u[:, 0]),
                        0.52 + 0.05 * torch.cos(4 * u[:, 2])], dim=-1)
    inner = torch.tensor([0.35, 0.05, 0.08], device=u.device).expand_as(skin)
    depth_in = _smooth_inside(u / torch.tensor([0.5, 0.63, 0.5], device=u.device), 40.0)[:, None]
    rgb = skin * (1 - depth_in) + inner * depth_in
    lips = _smooth_inside((u - mouth_c) / (mouth_r * 1.5 + 0.03), 20.0)[:, None] * (1 - depth_in)
    rgb = rgb * (1 - lips) + torch.tensor([0.7, 0.2, 0.25], device=u.device) * lips
    for sx in (-0.2, 0.2):
        c = torch.tensor([sx, 0.16, 0.5], device=u.device)
        eye = _smooth_inside((u - c) / torch.tensor([0.1, 0.07, 0.1], device=u.device), 30.0)[:, None]
        pupil = _smooth_inside((u - c - torch.tensor([0.0, 0.0, 0.03], device=u.device)) / 0.045, 30.0)[:, None]
        open_ = (1.0 - blink)
        eye_rgb = torch.tensor([0.95, 0.95, 0.95], device=u.device) * (1 - pupil) + 0.08 * pupil
        rgb = rgb * (1 - eye * open_) + eye_rgb * eye * open_
    return rgb, sigma


def render_toy(cond: Tensor, c2w: Tensor, focal: float, cx: float, cy: float, H: int, W: int,
               bg: Tensor, n_samples: int = 256) -> Tensor:
    """Ground-truth images (B, H, W, 3) of the toy scene (dense marching of ``toy_field``)."""
    out = []
    chunk = max(1, (1 << 22) // n_samples)
    for b in range(c2w.shape[0]):
        o, d = camera_rays(c2w[b:b + 1], focal, cx, cy, H, W)
        o, d = o[0], d[0]
        tn, tf = ray_box(o, d, torch.zeros(3, device=o.device), 1.0, 0.0, 100.0)
        t, dl = stratified_samples(tn, tf, n_samples)
        img = []
        for s in range(0, o.shape[0], chunk):
            R = min(chunk, o.shape[0] - s)
            u = (o[s:s + R, None] + t[s:s + R, :, None] * d[s:s + R, None]).reshape(-1, 3)
            rgb, sig = toy_field(u, cond[b:b + 1].expand(u.shape[0], -1))
            f, a = composite_reference(sig.view(R, n_samples), rgb.view(R, n_samples, 3), dl[s:s + R])
            img.append(f + (1 - a)[:, None] * bg.reshape(-1, 3)[s:s + R])
        out.append(torch.cat(img).view(H, W, 3))
    return torch.stack(out)


def look_at(eye: Tensor, target: Tensor) -> Tensor:
    """A camera-to-world matrix (4, 4) at ``eye`` looking at ``target`` with +y up."""
    fwd = target - eye
    fwd = fwd / fwd.norm()
    right = torch.linalg.cross(fwd, torch.tensor([0.0, 1.0, 0.0]))
    right = right / right.norm()
    up = torch.linalg.cross(right, fwd)
    m = torch.eye(4)
    m[:3, 0], m[:3, 1], m[:3, 2], m[:3, 3] = right, up, -fwd, eye
    return m


def toy_scene(n_frames: int = 40, size: int = 32, seed: int = 0, head_yaw_deg: float = 8.0,
              novel_yaws: tuple[float, ...] = (-20.0, 20.0), test_every: int = 5,
              device: torch.device | str = "cpu") -> SceneData:
    """A toy talking head: ``n_frames`` frames of ``size`` x ``size`` pixels, 2 conditions.

    Frames follow a talking rhythm (mouth open/close, occasional blinks) with small head turns
    folded into the cameras; every ``test_every``-th frame is held out and also rendered at
    ``novel_yaws``.
    """
    g = torch.Generator().manual_seed(seed)
    tt = torch.arange(n_frames, dtype=torch.float32) / 25.0
    phase = torch.rand(1, generator=g).item() * 6.28
    jaw = 0.5 + 0.5 * torch.sin(2 * math.pi * 1.7 * tt + phase) * torch.sin(2 * math.pi * 0.37 * tt + 1.0)
    blink = (torch.sin(2 * math.pi * 0.45 * tt + phase) > 0.9).float()
    cond = torch.stack([jaw, blink], dim=-1)
    yaw = head_yaw_deg * torch.sin(2 * math.pi * 0.21 * tt + phase)
    base = look_at(torch.tensor([0.0, 0.0, 3.0]), torch.zeros(3))
    c2w = torch.stack([orbit(base[None], float(y), 0.0, torch.zeros(3))[0] for y in yaw])
    focal = size * 1.6
    yy, xx = torch.meshgrid(torch.linspace(0, 1, size), torch.linspace(0, 1, size), indexing="ij")
    bg = torch.stack([0.2 + 0.3 * xx, 0.35 + 0.2 * yy, 0.55 - 0.2 * xx], dim=-1)
    cond, c2w, bg = cond.to(device), c2w.to(device), bg.to(device)
    images = render_toy(cond, c2w, focal, size / 2, size / 2, size, size, bg)
    idx = np.arange(n_frames)
    test = idx[idx % test_every == test_every - 1]
    train = np.setdiff1d(idx, test)
    novel = {}
    for y in novel_yaws:
        cw = torch.stack([orbit(c2w[i:i + 1], y, 0.0, torch.zeros(3, device=device))[0] for i in test])
        novel[float(y)] = {"images": render_toy(cond[test], cw, focal, size / 2, size / 2, size, size, bg),
                           "c2w": cw, "frames": test}
    return SceneData(images, cond, c2w, focal, size / 2, size / 2, bg, (0.0, 0.0, 0.0), 1.0, 0.0, 100.0,
                     {"f_exp": 2}, train, test, novel)


# ---- from a synthetic-speaker clip -------------------------------------------------------------------

def prior_depth(clip, c2w: Tensor, focal: float, cx: float, cy: float, H: int, W: int, frames=None,
                batch: int = 64, device=None) -> tuple[Tensor, Tensor]:
    """The 3DMM prior's geometry seen by the training cameras: ray distance t and coverage per pixel.

    The morphable model with the frame's f_id and f_exp (the fitted codes of a real video; the
    ground truth of the synthetic speaker) is rasterised in the head frame from the cameras
    c2w (N, 4, 4) (camera-to-head, intrinsics in pixels of an H x W image).
    Returns depth (N, H, W): distance along each unit ray to the surface (0 off the head), and the
    coverage (N, H, W) in [0, 1]. A geometry prior for ``fit(depth_weight=)``: with the head turning only
    a few degrees, photometric loss alone leaves depth ambiguous and novel views fall apart.
    """
    from talklib.face3d.model import MorphableModel
    from talklib.face3d.render import render

    n = c2w.shape[0]
    frames = np.arange(n) if frames is None else np.asarray(frames)
    t = MorphableModel.from_asset().tensors(device)
    exp = torch.from_numpy(np.asarray(clip.exp(), np.float32)[frames]).to(device)
    idc = torch.from_numpy(np.asarray(clip.id_coeffs(), np.float32)).to(device)
    alb = torch.from_numpy(np.asarray(clip.alb_coeffs(), np.float32)).to(device)
    j, i = torch.meshgrid(torch.arange(H, device=device) + 0.5, torch.arange(W, device=device) + 0.5, indexing="ij")
    stretch = torch.sqrt(1.0 + ((i - cx) / focal) ** 2 + ((j - cy) / focal) ** 2)     # t = z * |dir| for dir_z = -1
    depths, covers = [], []
    for b0 in range(0, n, batch):
        b1 = min(n, b0 + batch)
        k = b1 - b0
        with torch.no_grad():
            out = render(t, idc.expand(k, -1), exp[b0:b1], alb.expand(k, -1), torch.zeros(k, 27, device=device),
                         torch.zeros(k, 6, device=device), c2w[b0:b1].to(device), focal, cx, cy, H, W)
        depths.append(out["depth"] * stretch * (out["alpha"] > 0))
        covers.append(out["alpha"])
    return torch.cat(depths), torch.cat(covers)


def from_clip(clip, size: int | None = None, conditions="f_exp", max_frames: int | None = None,
              novel_yaw_max: float = 35.0, box_scale: float = 2.0, masks: bool = False, depth: bool = False,
              device=None) -> SceneData:
    """A ``SceneData`` from a rendered clip (``talklib.data.dataset.Clip``), AD-NeRF style.

    size: resize frames to size x size (None: keep); conditions: what the field is conditioned on, a
    ``talklib.condition`` list such as ``"f_exp:12,f_illu"`` or ``"a_content,a_rhythm,a_pitch,f_illu"``
    (or a ``ConditionConfig``), packed by ``talklib.condition.inputs.from_clip``; ``scene.conditions`` keeps
    the config for the model; max_frames: use the first ones;
    masks: also load the head alpha masks (``SceneData.alpha``); depth: also the 3DMM prior's ray
    depths (``SceneData.depth``, ``prior_depth``, rendered on ``device``; the scene itself stays on the CPU).
    Train/held-out split: the clip's own (transforms_train / transforms_val). Novel views: the clip's
    views with |yaw| <= novel_yaw_max, at the held-out frames. The canonical head box is centred on
    the 3D landmarks (mapped into the head frame) with a half-size ``box_scale`` times their extent.
    """
    from PIL import Image

    from talklib.condition.inputs import config_for, from_clip as pack_clip

    n = clip.n_frames if max_frames is None else min(clip.n_frames, int(max_frames))
    H0, W0 = clip.size
    H, W = (H0, W0) if size is None else (int(size), int(size))
    sx, sy = W / W0, H / H0

    def load_part(view: str, idx) -> np.ndarray:
        fr = clip.frames(view, idx)
        if (H, W) != (H0, W0):
            fr = np.stack([np.asarray(Image.fromarray(f).resize((W, H), Image.BILINEAR)) for f in fr])
        return fr

    def load(view: str, idx) -> Tensor:
        # PNG decoding releases the GIL: threads make loading thousands of frames several times faster
        from concurrent.futures import ThreadPoolExecutor

        idx = np.asarray(idx)
        chunks = [idx[i:i + 64] for i in range(0, len(idx), 64)]
        with ThreadPoolExecutor(max_workers=min(16, os.cpu_count() or 1)) as ex:
            fr = np.concatenate(list(ex.map(lambda c: load_part(view, c), chunks)))
        return torch.from_numpy(fr).float() / 255.0

    ccfg = config_for(clip, conditions)
    raw = pack_clip(clip, ccfg, n)
    cparts = ccfg.raw_layout()
    alpha = None
    if masks:
        al = clip.alpha("front", np.arange(n))
        if (H, W) != (H0, W0):
            al = np.stack([np.asarray(Image.fromarray(a).resize((W, H), Image.BILINEAR)) for a in al])
        alpha = torch.from_numpy(np.ascontiguousarray(al, dtype=np.float32)).clamp(0, 1)
    cam = clip.camera("front")
    c2w = torch.from_numpy(cam.c2w[:n]).float()
    bg = clip.background()
    if (H, W) != (H0, W0):
        from PIL import Image as _I
        bg = np.asarray(_I.fromarray(bg).resize((W, H), _I.BILINEAR))
    # canonical head box from landmarks: world -> head frame with the inverse head pose
    lm = clip.landmarks3d()[:n].astype(np.float64)
    hp = clip.head_pose()[:n].astype(np.float64)
    can = np.einsum("tij,tnj->tni", np.transpose(hp[:, :3, :3], (0, 2, 1)), lm - hp[:, None, :3, 3])
    lo, hi = can.reshape(-1, 3).min(0), can.reshape(-1, 3).max(0)
    center = tuple(float(c) for c in (lo + hi) / 2)
    radius = float(box_scale * (hi - lo).max() / 2 * 1.25)
    train = clip.train_ids[clip.train_ids < n]
    test = clip.val_ids[clip.val_ids < n]
    novel = {}
    for v in clip.novel_views:
        info = clip.view_info(v)
        if abs(float(info.get("yaw_deg", 0.0))) <= novel_yaw_max and abs(float(info.get("pitch_deg", 0.0))) < 1e-6:
            vc = clip.camera(v)
            novel[float(info["yaw_deg"])] = {"images": load(v, test), "c2w": torch.from_numpy(vc.c2w[test]).float(),
                                             "frames": test, "name": v}
    dmap = None
    if depth:
        dmap, _ = prior_depth(clip, c2w, cam.focal * sx, cam.cx * sx, cam.cy * sy, H, W, device=device)
        dmap = dmap.cpu()
    return SceneData(load("front", np.arange(n)), torch.from_numpy(raw), c2w,
                     cam.focal * sx, cam.cx * sx, cam.cy * sy, torch.from_numpy(np.array(bg)).float() / 255.0,
                     center, radius, 0.0, 100.0, cparts, train, test, novel, alpha, dmap,
                     ccfg.to_dict() if ccfg.audio_channels else {}, torch.from_numpy(hp[:n]).float())


def with_conditions(scene: SceneData, clip, conditions) -> SceneData:
    """The same frames and cameras as ``scene`` (made by ``from_clip`` from ``clip``), conditioned on
    ``conditions`` instead (a ``talklib.condition`` list or ``ConditionConfig``): the rows of an ablation
    share one loaded scene."""
    from dataclasses import replace

    from talklib.condition.inputs import config_for, from_clip as pack_clip

    ccfg = config_for(clip, conditions)
    raw = torch.from_numpy(pack_clip(clip, ccfg, scene.images.shape[0])).to(scene.images.device)
    return replace(scene, cond=raw, cond_parts=ccfg.raw_layout(), conditions=ccfg.to_dict() if ccfg.audio_channels else {})


def lower_face_box(clip, size: int, multiple: int = 1, grow: float = 0.6) -> tuple[int, int, int, int]:
    """(row0, row1, col0, col1) of the mouth's region in frames resized to size x size: the box of the
    outer lip line over every frame of the clip (its ground-truth / fitted 2D landmarks), grown by
    ``grow`` times its size on each side, snapped outwards to multiples of ``multiple`` (the upsampling
    factor). The window ``fit(focus=...)`` trains on."""
    from talklib.face3d.topology import LIPS_OUTER_LOWER, LIPS_OUTER_UPPER

    H0, W0 = clip.size
    p = clip.landmarks2d("front")[:, list(LIPS_OUTER_UPPER + LIPS_OUTER_LOWER)].reshape(-1, 2).astype(np.float64)
    p = p[np.isfinite(p).all(1)] * np.array([size / W0, size / H0])
    (x0, y0), (x1, y1) = p.min(0), p.max(0)
    gx, gy = grow * (x1 - x0), grow * (y1 - y0)
    snap_lo = lambda v: int(max(0, np.floor(v / multiple) * multiple))  # noqa: E731
    snap_hi = lambda v: int(min(size, np.ceil(v / multiple) * multiple))  # noqa: E731
    return snap_lo(y0 - gy), snap_hi(y1 + gy), snap_lo(x0 - gx), snap_hi(x1 + gx)
