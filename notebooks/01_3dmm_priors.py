# ---
# jupyter:
#   jupytext:
#     formats: ipynb,py:percent
#     text_representation:
#       extension: .py
#       format_name: percent
#   kernelspec:
#     display_name: talklib
#     language: python
#     name: talklib
# ---

# %% [markdown]
# # 01 · 3DMM priors and the ground-truth synthetic speaker
# No talking-head video and no registration-gated morphable model (BFM) can be downloaded here, so talklib
# makes its own **ground-truth speaker**: a morphable head on mediapipe's face-mesh topology, textured
# from a real photo, driven by speech with known phoneme timing and rendered from any camera. Every
# later notebook trains on it and is *measured against its truth*, novel views included.
#
# This notebook shows the model of NeRF-3DTalker Eq. (1) and DFA-NeRF Eq. (1), fits it to a photo,
# looks at the speaker's clips, and measures two things the rest of the pipeline relies on:
# that mediapipe (the landmark tracker metrics use) sees our renders as faces, and that fitting the
# model to landmarks recovers the jaw and the head pose.
#
# Code: `talklib.face3d` (asset, model, camera, raster, render, fit, landmarks), `talklib.speaker`
# (visemes, motion, speech, clip, build), `talklib.data.dataset` (the on-disk API).

# %% tags=["parameters"]
run_dir = "runs/dev"
data_dir = "data/synthetic/small"
preset = "small"
seed = 0
device = "auto"
synth_size = 128
synth_train_seconds = 8.0
synth_test_seconds = 3.0
synth_identities = 1
synth_test_identities = 0
synth_speech_clips = 6
synth_views = "yaw_m30,yaw_p30,pitch_p15,pitch_m15"
synth_lighting_drift = True
nb01_detect_frames = 6
nb01_detect_size = 256
nb01_fit_frames = 40

# %%
import time

import numpy as np
import plotly.graph_objects as go
import torch
from plotly.subplots import make_subplots

from talklib.notebook import setup
from talklib.outputs import save_figure, save_image, video_path, write_metrics

dev = setup(seed, device, run_dir)
NB = "01_3dmm_priors"
timings = {}
assert nb01_detect_size >= 256, "the detection check is specified at 256 px and above"

# %% [markdown]
# ## 1.1 The morphable head — NeRF-3DTalker Eq. (1), DFA-NeRF Eq. (1)
# NeRF-3DTalker describes a head by five codes, $I : (f_{id}, f_{exp\text{-}aud}, f_{exp\text{-}style}, f_{alb}, f_{illu})$,
# with identity 100, two expression vectors of 79 each ($f_{exp\text{-}aud}$ from the speech movements and
# $f_{exp\text{-}style}$ from the speaking style), albedo 100 and illumination 27 = 9 spherical-harmonic
# coefficients × RGB. talklib's head has **one** 79-d expression vector $f_{exp}$: its first 12
# components are named, anatomically placed deformations (8 that speech drives — jaw, lips — plus blinks and
# brows), the other 67 are small unnamed deformations the synthetic speaker moves as slow noise (its
# "style"). NeRF-3DTalker's split of the expression into a speech part and a style part is learned from audio
# (its Section II.B, a later notebook); here both would be views of the same $f_{exp}$. DFA-NeRF writes the shape part as
#
# $$\mathbf S = \bar{\mathbf S} + \mathbf B_{id}\mathbf F_{id} + \mathbf B_{exp}\mathbf F_{exp}.$$
#
# Our $\bar{\mathbf S}$ is the 3D face of scikit-image's astronaut photo as mediapipe sees it (478 points,
# its tessellation, plus a mouth cavity and a skirt of hair/neck), the texture is the photo itself
# (texture coordinates = where each vertex lands in it). $\mathbf B_{id}$ holds a few anatomical modes
# (face width, height, depth, jaw width, nose, eye spacing, mouth width, chin) and then smooth random
# fields; $\mathbf B_{exp}$ starts with **named** components mapped to FACS action units, so every frame
# has ground-truth AUs. `talklib.face3d.model`.

# %%
from talklib.data.dataset import AU_MEANING, AU_NAMES, EXP_NAMES
from talklib.face3d.model import MorphableModel, au_intensity, default_illumination

model = MorphableModel.from_asset()
t = model.tensors(dev)
print(f"vertices {model.n_vertices}, faces {len(model.faces)}; id {model.id_basis.shape[0]}, "
      f"exp {model.exp_basis.shape[0]}, alb {model.alb_basis.shape[0]}, illu {len(default_illumination())}")
print("named expression components:", ", ".join(EXP_NAMES))
print("action units:", ", ".join(f"{a} ({AU_MEANING[a]})" for a in AU_NAMES))

# %% [markdown]
# Each named component must move the part of the face its name says, and the unnamed ones must stay
# small. For every named component we find the vertex it moves most and check where it lies.

# %%
from talklib.face3d import topology as topo

disp = np.linalg.norm(model.exp_basis, axis=-1)                        # (79, V) displacement per vertex
mouth_c = model.mean[list(topo.MOUTH_LOOP)].mean(0)
eye_c = {"left": model.mean[list(topo.LEFT_EYE_LOOP)].mean(0), "right": model.mean[list(topo.RIGHT_EYE_LOOP)].mean(0)}
eye_y = (eye_c["left"][1] + eye_c["right"][1]) / 2
peak = {n: model.mean[disp[i].argmax()] for i, n in enumerate(EXP_NAMES)}
for n in EXP_NAMES:
    p = peak[n]
    if n.startswith("blink"):
        side, other = n.split("_")[1], "right" if n.endswith("left") else "left"
        assert np.linalg.norm(p - eye_c[side]) < 0.015 < np.linalg.norm(p - eye_c[other]), n
    elif n.startswith("brow"):
        assert p[1] > eye_y + 0.005, n                                 # above the eyes
    elif n == "jaw_open":
        assert p[1] < mouth_c[1] - 0.02, n                             # the jaw and chin, below the mouth
    else:
        assert np.linalg.norm(p - mouth_c) < 0.04 and p[1] < eye_y - 0.03, n   # around the mouth
named_peak, style_peak = disp[: len(EXP_NAMES)].max(1), disp[len(EXP_NAMES):].max(1)
print(f"peak displacement: named {named_peak.min() * 1000:.1f}-{named_peak.max() * 1000:.1f} mm, "
      f"unnamed {style_peak.min() * 1000:.1f}-{style_peak.max() * 1000:.1f} mm")
assert style_peak.max() < named_peak.min()

# %%
uvpix = (model.uv * (np.array(model.texture.shape[:2])[::-1] - 1)).round().astype(int)
vcol = model.texture[uvpix[:, 1], uvpix[:, 0]]
colours = [f"rgb({int(r * 255)},{int(g * 255)},{int(b * 255)})" for r, g, b in vcol]
V, Fc = model.mean, model.faces
mesh = go.Figure(go.Mesh3d(x=V[:, 0], y=V[:, 2], z=V[:, 1], i=Fc[:, 0], j=Fc[:, 1], k=Fc[:, 2],
                           vertexcolor=colours, flatshading=False, hoverinfo="skip"))
mesh.update_layout(title="mean head S̄ (drag to rotate)", height=450, margin=dict(l=0, r=0, t=30, b=0),
                   scene=dict(aspectmode="data", xaxis_title="x (m)", yaxis_title="z (m)", zaxis_title="y (m)",
                              camera=dict(eye=dict(x=0.2, y=1.8, z=0.2))))
save_figure(mesh, run_dir, NB, "mean_head_mesh")
mesh.show()

# %% [markdown]
# ## 1.2 Explore the codes
# Sliders on identity, expression, albedo, lighting and pose re-render the head live
# (`talklib.face3d.render.render`: our torch rasterizer, SH shading, perspective camera).
# In the executed notebook you see the render at the sliders' starting values.

# %%
import ipywidgets as widgets
from IPython.display import display

from talklib.face3d.camera import focal_for, orbit_camera
from talklib.face3d.render import render


def render_codes(id0=0.0, id1=0.0, jaw_open=0.0, smile=0.0, lip_pucker=0.0, blink=0.0, brow=0.0,
                 albedo_red=0.0, light_x=0.0, yaw=0.0, pitch=0.0, size=192):
    idc = torch.zeros(1, 100, device=dev)
    idc[0, 0], idc[0, 1] = id0, id1
    exp = torch.zeros(1, 79, device=dev)
    for name, v in (("jaw_open", jaw_open), ("smile", smile), ("lip_pucker", lip_pucker), ("blink_left", blink),
                    ("blink_right", blink), ("brow_inner_raise", brow), ("brow_outer_raise", brow)):
        exp[0, EXP_NAMES.index(name)] = v
    alb = torch.zeros(1, 100, device=dev)
    alb[0, 0] = albedo_red
    illu = torch.tensor(default_illumination(), device=dev)[None].clone()
    illu[0, [3, 12, 21]] += light_x
    pose = torch.tensor([[yaw, pitch, 0, 0, 0, 0]], dtype=torch.float32, device=dev)
    c2w = torch.tensor(orbit_camera(0, 0, 0.6), dtype=torch.float32, device=dev)[None]
    out = render(t, idc, exp, alb, illu, pose, c2w, focal_for(size, 22), size / 2, size / 2, size, size,
                 torch.full((size, size, 3), 0.35, device=dev), ssaa=2)
    return (out["rgb"][0].cpu().numpy() * 255 + 0.5).astype(np.uint8)


def png_of(rgb: np.ndarray) -> bytes:
    import io

    from PIL import Image

    buf = io.BytesIO()
    Image.fromarray(rgb).save(buf, format="png")
    return buf.getvalue()


# The render goes into an Image widget that each slider updates (no Output widget capturing display():
# under papermill that capture could leave the run waiting forever for the cell to end).
sl = lambda lo, hi, v=0.0: widgets.FloatSlider(value=v, min=lo, max=hi, step=(hi - lo) / 40, continuous_update=False)
sliders = dict(id0=sl(-3, 3), id1=sl(-3, 3), jaw_open=sl(0, 1), smile=sl(0, 1), lip_pucker=sl(0, 1), blink=sl(0, 1),
               brow=sl(0, 1), albedo_red=sl(-3, 3), light_x=sl(-1.5, 1.5), yaw=sl(-40, 40), pitch=sl(-25, 25))
for name, s in sliders.items():
    s.description = name
view = widgets.Image(value=png_of(render_codes()), format="png", width=192, height=192)


def update_view(_change=None):
    view.value = png_of(render_codes(**{k: s.value for k, s in sliders.items()}))


for s in sliders.values():
    s.observe(update_view, names="value")
display(widgets.HBox([widgets.VBox(list(sliders.values())), view]))

# %%
gallery = [render_codes(), render_codes(id0=2.5, id1=-2.0), render_codes(jaw_open=0.8), render_codes(smile=1.0),
           render_codes(lip_pucker=1.0), render_codes(blink=1.0, brow=1.0), render_codes(albedo_red=2.5, light_x=1.0),
           render_codes(yaw=30, pitch=-10)]
strip = np.concatenate(gallery, 1)
save_image(strip, run_dir, NB, "codes_gallery")
from PIL import Image

Image.fromarray(strip)

# %% [markdown]
# Left to right: the mean head, two identity modes, jaw open (AU26), smile (AU12), pucker (AU18),
# blink + brow raise (AU45, AU1/2), a redder albedo under a side light, and a turned head.

# %% [markdown]
# ## 1.3 Fitting the model to a photo
# The papers track their training videos with a 3DMM fit. `talklib.face3d.fit` does the same to
# mediapipe's 478 landmarks: it minimises
# $E = \sum_k \lVert \Pi(R\,\mathbf S_k + t) - \mathbf l_k \rVert^2/\mathrm{IOD}^2 + \lambda_{id}\lVert F_{id}\rVert^2 + \lambda_{exp}\lVert F_{exp}\rVert^2$
# with L-BFGS (pose first, then everything). Here on the astronaut photo itself.

# %%
import skimage.data

from talklib.face3d.fit import fit_photo
from talklib.face3d.landmarks import LandmarkDetector, inter_ocular_distance

photo = skimage.data.astronaut()
t0 = time.time()
detector = LandmarkDetector()
torch.set_num_threads(1)   # small ops: one thread is faster on a shared CPU, and reductions stay in one order
t64 = model.tensors("cpu")
fit = fit_photo(t64, photo, detector=detector)
timings["fit_photo_s"] = time.time() - t0
H, W = photo.shape[:2]
with torch.no_grad():
    back = render(t64, torch.tensor(fit["id"])[None], torch.tensor(fit["exp"]), torch.zeros(1, 100),
                  torch.tensor(default_illumination())[None], torch.tensor(fit["pose"]),
                  torch.tensor(fit["c2w"], dtype=torch.float32)[None], fit["focal"], fit["cx"], fit["cy"], H, W,
                  torch.tensor(photo.astype(np.float32) / 255))
overlay = (back["rgb"][0].numpy() * 255 + 0.5).astype(np.uint8)
iod_photo = inter_ocular_distance(fit["lmk2d"])
print(f"photo fit: yaw {fit['pose'][0, 0]:+.1f}°, pitch {fit['pose'][0, 1]:+.1f}°, roll {fit['pose'][0, 2]:+.1f}°; "
      f"mean landmark error {fit['err_px'][0]:.2f} px = {100 * fit['err_px'][0] / iod_photo:.2f}% of IOD")
assert fit["err_px"][0] / iod_photo < 0.05
crop = (slice(40, 260), slice(120, 330))
Image.fromarray(np.concatenate([photo[crop], overlay[crop]], 1))

# %% [markdown]
# ## 1.4 The speaker
# `talklib.speaker.build.ensure_corpus` makes the corpus once (later notebooks call it too and reuse it):
# espeak-ng speech with phoneme events, the real ARCTIC recording with pocketsphinx forced alignment,
# phonemes → visemes → expression curves with coarticulation (Cohen–Massaro dominance), blinks as a
# renewal process (0.2–0.5 /s, 150–250 ms), a smooth stochastic head pose, slow lighting drift, and
# the training camera plus held-out novel views of the *same* frames. On disk it follows AD-NeRF's
# layout (`transforms_train.json`, `aud.wav`, `ori_imgs/`, `bc.png`) plus `gt/` and `dataset.json`.

# %%
from talklib.speaker.build import ensure_corpus

t0 = time.time()
corpus = ensure_corpus(data_dir, preset, seed, synth_size=synth_size, synth_train_seconds=synth_train_seconds,
                       synth_test_seconds=synth_test_seconds, synth_identities=synth_identities,
                       synth_test_identities=synth_test_identities, synth_speech_clips=synth_speech_clips,
                       synth_views=synth_views, synth_lighting_drift=synth_lighting_drift, device=dev)
timings["corpus_s"] = time.time() - t0
clip = corpus.clip(split="train")
print(corpus)
for c in corpus.clips():
    print(" ", c)
print("speech-only:", ", ".join(s.name for s in corpus.speech()))
assert clip.size == (synth_size, synth_size) and clip.exp().shape == (clip.n_frames, 79)

# %%
from talklib.data.video import write_video

frames = clip.frames("front")
write_video(video_path(run_dir, NB, "speaker_train"), frames, fps=clip.fps, audio=clip.audio())
T = clip.n_frames
pick = np.linspace(0, T - 1, 10).astype(int)
strip = np.concatenate(list(frames[pick]), 1)
save_image(strip, run_dir, NB, "video_strip")

fig = make_subplots(rows=4, cols=1, shared_xaxes=True, vertical_spacing=0.04, row_heights=[0.35, 0.2, 0.25, 0.2],
                    subplot_titles=("frames", "phonemes", "AU intensities", "blink (AU45) and head yaw"))
tsec = (np.arange(T) + 0.5) / clip.fps
fig.add_trace(go.Image(z=strip, x0=0, dx=tsec[-1] / strip.shape[1] * 1.0, hoverinfo="skip"), 1, 1)
for p in clip.phonemes():
    if p.phone != "SIL":
        fig.add_trace(go.Scatter(x=[p.start, p.end], y=[0, 0], mode="lines", line=dict(width=14),
                                 showlegend=False, hovertext=f"{p.phone} ({p.viseme})", hoverinfo="text"), 2, 1)
        fig.add_annotation(x=(p.start + p.end) / 2, y=0.6, text=p.phone, showarrow=False, font=dict(size=8),
                           row=2, col=1)
au = clip.au_intensity()
for name in ("AU25", "AU26", "AU12", "AU01"):
    fig.add_trace(go.Scatter(x=tsec, y=au[:, AU_NAMES.index(name)], name=f"{name} {AU_MEANING[name]}"), 3, 1)
fig.add_trace(go.Scatter(x=tsec, y=au[:, AU_NAMES.index("AU45")], name="AU45 blink"), 4, 1)
fig.add_trace(go.Scatter(x=tsec, y=clip.pose()[:, 0], name="yaw (deg)"), 4, 1)
fig.update_yaxes(visible=False, row=1, col=1)
fig.update_yaxes(visible=False, range=[-1, 1.2], row=2, col=1)
fig.update_xaxes(title_text="time (s)", row=4, col=1)
fig.update_layout(height=700, margin=dict(l=30, r=10, t=40, b=30))
save_figure(fig, run_dir, NB, "tracks")
fig.show()

# %%
blink_on = clip.au_labels()[:, AU_NAMES.index("AU45")]
n_blinks = int(((blink_on[1:] == 1) & (blink_on[:-1] == 0)).sum() + blink_on[0])
print(f"{T} frames ({T / clip.fps:.1f} s); {n_blinks} blinks ({n_blinks / (T / clip.fps):.2f}/s); "
      f"AU on-rates: " + ", ".join(f"{a} {r:.2f}" for a, r in zip(AU_NAMES, clip.au_labels().mean(0))))

# %% [markdown]
# ### Novel views of the same frames
# The papers only *show* free-view results. Here every frame also exists from held-out cameras, so
# later notebooks can measure novel-view quality against truth.

# %%
rows = [np.concatenate([clip.frame(i, v) for v in clip.views], 1) for i in pick[[2, 5, 8]]]
views_img = np.concatenate(rows, 0)
save_image(views_img, run_dir, NB, "novel_views")
print("views:", ", ".join(f"{v} (yaw {clip.view_info(v)['yaw_deg']:+.0f}°, pitch {clip.view_info(v)['pitch_deg']:+.0f}°)"
                          for v in clip.views))
Image.fromarray(views_img)

# %% [markdown]
# ## 1.5 Does mediapipe see our renders as faces?
# We re-render frames of the training clip at ≥ 256 px (the clips themselves are small on CPU) from the
# frontal camera and the novel views, run mediapipe FaceMesh, and compare its landmarks with the
# projected ground truth on frontal frames, in % of the inter-ocular distance (outer eye corners).


# %%
def render_frames(c, idx, view, size):
    """Re-render frames ``idx`` of clip ``c`` from ``view`` at ``size`` px with its ground-truth codes, on ``dev``."""
    cam = c.view_info(view)
    bg = torch.tensor(c.background().astype(np.float32) / 255, device=dev).permute(2, 0, 1)[None]
    bg = torch.nn.functional.interpolate(bg, size=(size, size), mode="bilinear", align_corners=False)[0]
    n = len(idx)
    on = lambda a: torch.as_tensor(np.asarray(a), dtype=torch.float32, device=dev)  # noqa: E731
    with torch.no_grad():
        out = render(t, on(c.id_coeffs())[None].expand(n, -1), on(c.exp()[idx]), on(c.alb_coeffs())[None].expand(n, -1),
                     on(c.illu()[idx]), on(c.pose()[idx]), on(cam["c2w_world"])[None].expand(n, -1, -1),
                     focal_for(size, 22.0), size / 2, size / 2, size, size, bg.permute(1, 2, 0))
        out = {k: out[k].cpu() for k in ("rgb", "lmk2d")}
    return (out["rgb"].numpy() * 255 + 0.5).astype(np.uint8), out["lmk2d"].numpy()


t0 = time.time()
S = nb01_detect_size
fit_idx = np.linspace(0, T - 1, nb01_fit_frames).astype(int)
front_rgb, front_gt = render_frames(clip, fit_idx, "front", S)
front_det = [detector(im) for im in front_rgb]
novel = []
det_idx = np.linspace(0, T - 1, nb01_detect_frames).astype(int)
for v in clip.novel_views:
    rgb_v, _ = render_frames(clip, det_idx, v, S)
    novel += [detector(im) is not None for im in rgb_v]
found = np.array([d is not None for d in front_det] + novel)
detect_rate = float(found.mean())
ok = np.array([d is not None for d in front_det])
lmk_err = np.array([np.linalg.norm(d - g, axis=1).mean() / inter_ocular_distance(g)
                    for d, g in zip(front_det, front_gt) if d is not None])
timings["detect_s"] = time.time() - t0
print(f"mediapipe found the face in {found.sum()}/{found.size} renders at {S} px ({100 * detect_rate:.1f}%); "
      f"landmark error on frontal frames {100 * lmk_err.mean():.2f}% of IOD (max {100 * lmk_err.max():.2f}%)")
assert detect_rate >= 0.98
# mediapipe against the renderer's true landmarks: 2.5 % of IOD on seed 0's speaker, 3.4 % on seed 1's
# (benchmarks/small_preset_seeds.md); face-landmark detectors are usually quoted at 3-5 % on real faces
assert lmk_err.mean() <= 0.05

# %%
k = int(np.argmax(ok))
show = front_rgb[k].copy()
for pts, col in ((front_gt[k], (0, 255, 0)), (front_det[k], (255, 0, 255))):
    for x, y in pts[:468:3].round().astype(int):
        if 0 <= x < S and 0 <= y < S:
            show[y, x] = col
save_image(show, run_dir, NB, "landmarks_truth_vs_mediapipe")
Image.fromarray(show)

# %% [markdown]
# Green: projected ground truth; magenta: mediapipe.
#
# ## 1.6 Fitting recovers the truth
# On the same frontal frames, we fit pose, identity (shared) and expression to mediapipe's landmarks —
# what a 3DMM tracker does to a real video — and compare with the coefficients that made the frames.

# %%
from talklib.face3d.fit import fit_landmarks

t0 = time.time()
det_pts = np.array([d for d in front_det if d is not None])
res = fit_landmarks(t64, det_pts, orbit_camera(0, 0, 0.6), focal_for(S, 22.0), S / 2, S / 2)
timings["fit_frames_s"] = time.time() - t0
true_exp, true_pose = clip.exp()[fit_idx][ok], clip.pose()[fit_idx][ok]
jaw = EXP_NAMES.index("jaw_open")
jaw_corr = float(np.corrcoef(res["exp"][:, jaw], true_exp[:, jaw])[0, 1])
yaw_err = float(np.abs(res["pose"][:, 0] - true_pose[:, 0]).mean())
pitch_err = float(np.abs(res["pose"][:, 1] - true_pose[:, 1]).mean())
print(f"jaw-open correlation {jaw_corr:.3f}; mean |yaw error| {yaw_err:.2f}° (pitch {pitch_err:.2f}°); "
      f"reprojection {res['err_px'].mean():.2f} px")
fig = make_subplots(rows=1, cols=2, subplot_titles=("jaw open: fitted vs true", "yaw (deg): fitted vs true"))
fig.add_trace(go.Scatter(x=true_exp[:, jaw], y=res["exp"][:, jaw], mode="markers", name="jaw_open"), 1, 1)
fig.add_trace(go.Scatter(x=true_pose[:, 0], y=res["pose"][:, 0], mode="markers", name="yaw"), 1, 2)
fig.update_layout(height=320, showlegend=False, margin=dict(l=30, r=10, t=40, b=30))
save_figure(fig, run_dir, NB, "fit_vs_truth")
fig.show()
# seed 0's speaker: jaw 0.947, seed 1's 0.898 (its mediapipe landmarks are 3.4 % of IOD off, not 2.5 %):
# the floor leaves room for the detector, benchmarks/small_preset_seeds.md has every seed
assert jaw_corr >= 0.8
assert yaw_err <= 3.0  # seeds 0, 1, 3, 4: 0.66-0.95 degrees; seed 2's speaker 2.33

# %%
detector.close()
torch.set_num_threads(max(1, torch.get_num_interop_threads()))
write_metrics(run_dir, NB, {
    "frames_train": int(T),
    "size_px": int(clip.size[0]),
    "views": len(clip.views),
    "speech_clips": len(corpus.speech()),
    "blinks_per_s": round(n_blinks / (T / clip.fps), 3),
    "mediapipe_detect_rate": round(detect_rate, 4),
    "mediapipe_detect_size_px": int(S),
    "landmark_err_iod_pct": round(100 * float(lmk_err.mean()), 2),
    "fit_jaw_open_corr": round(jaw_corr, 3),
    "fit_yaw_err_deg": round(yaw_err, 2),
    "fit_pitch_err_deg": round(pitch_err, 2),
    "photo_fit_err_iod_pct": round(100 * float(fit["err_px"][0] / iod_photo), 2),
}, timings=timings)
