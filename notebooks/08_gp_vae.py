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
# # 08 · DFA-NeRF's personalised attributes: the face-attribute autoencoder, sync on f_m, the Transformer GP-VAE and Table 4
#
# A talking head that only moves its lips looks dead: people nod, sway and blink, each in their own way.
# DFA-NeRF (`../shared/papers/dfa-nerf.md`) splits a face into **attributes** and generates the ones audio
# does not fix with a probabilistic model of that person:
#
# 1. **Face-attribute disentanglement (Sec. 3.2, Eq. 1–2).** A fully connected autoencoder over 68 3DMM
#    landmarks gives a mouth embedding $f_m$ and an eye embedding $f_e$, taught their meaning by swapping them
#    between two faces.
# 2. **Audio–lip sync (Sec. 3.3, Eq. 3).** A CNN audio encoder $E_a$ is trained contrastively against $f_m$.
# 3. **Personalised attribute generation (Sec. 3.4, Eq. 4–9).** A Transformer VAE whose latent sequence has a
#    Gaussian-process prior over time (Cauchy kernel) is pre-trained on many people's head pose and blink
#    sequences; a cross-modal encoder, fine-tuned on one person, maps audio and the Beginning Of Pose (BOP)
#    into that latent space, and the decoder turns samples into that person's future pose and blinks, for any
#    length, autoregressively.
# 4. **Table 4** re-run: MLP VAE, LSTM VAE, Transformer VAE and Transformer GP-VAE on D-Rot / D-Pos, with
#    blinks/s and a measure of personalisation; Fig. 6's PCA of the persons in the latent space.
# 5. **The NeRF (Sec. 3.5, Eq. 10–11)** conditioned on $\mathbf f_c = [\mathbf f_a, \mathbf f_e]$ with the head
#    pose as view direction, rendered with *generated* pose and blinks: Table 2's DFA-NeRF row re-run, and
#    `python -m talklib render --motion` from any wav.
#
# **Stand-ins, said plainly.** LRS2 + HDTF (the paper's pre-training set) cannot be downloaded: the synthetic
# speaker's **motion-only corpus** replaces them (`talklib.speaker.motion_corpus`): many identities, each with
# its own face shape and its own drawn motion style (how much each head axis moves, how fast, how strongly nods
# follow the speech, how often and how long the blinks), whose pose, blinks and 3DMM landmarks are generated
# from TTS speech without rendering a frame. The paper fits a 3DMM to video; here the landmarks are the 3DMM's
# own (Eq. 1, front view, as the paper fixes its fits to the front view), so every number below is measured
# against the truth that made the motion. The rendered speaker of notebook 01 is the person of Section 3.5;
# its field starts from notebook 03's and is scored with notebook 04's expert, and $\mathbf f_a$ is notebook 02's.

# %% tags=["parameters"]
run_dir = "runs/dev"
data_dir = "data/synthetic/small"
preset = "small"
seed = 0
device = "auto"
resume = False
motion_dir = "data/motion/small"
motion_identities = 24
motion_seconds = 40.0
motion_pool_sentences = 12
motion_voices = 3
motion_persons = 3
attr_steps = 500
attr_batch = 256
attr_width = 128
attr_mouth_dim = 16
attr_eye_dim = 4
msync_steps = 400
msync_dim = 32
vae_steps = 300
vae_batch = 16
vae_window = 48
vae_width = 64
vae_z = 8
vae_length = 8.0
vae_beta = 0.2
vae_lr = 2e-3
cme_steps = 100
cme_bop = 8
dfa_steps = 200
dfa_focus_every = 2
nerf_size = 64
nerf_lr = 0.01
nerf_samples = 32
nerf_upsample = 2
nerf_feat_dim = 8
nerf_hidden = 32
nerf_cond_code = 8
nerf_deform = False
nerf_plane_res = "16,32,64"
nerf_occ_res = 32
nerf_depth_weight = 1.0
nerf_view_dir = False
nerf_score_size = 128
cond_steps = 100
cond_audio_dim = 32
cond_frames = 8
cond_focus_every = 4
cond_score_frames = 100

# %%
from talklib.notebook import setup
dev = setup(seed, device, run_dir)

# %%
import time
from pathlib import Path

import numpy as np
import pandas as pd
import plotly.express as px
import plotly.graph_objects as go
import torch
from plotly.subplots import make_subplots

from talklib.audio import contrastive as CT
from talklib.audio.features import windows
from talklib.face3d.topology import EYE_REGION_68, MOUTH_REGION_68
from talklib.metrics.blinks import blinks_per_second, eye_aspect_ratio
from talklib.metrics.pose import d_pos, d_rot
from talklib.motion import attributes as FA
from talklib.motion import vae as GV
from talklib.outputs import read_metrics, save_figure, video_path, write_metrics
from talklib.speaker.motion_corpus import ensure_motion_corpus

NB = "08_gp_vae"
timings, t_start = {}, time.perf_counter()
models = Path(run_dir) / "models"
models.mkdir(parents=True, exist_ok=True)
ckpt = (lambda name: models / f"08_{name}.train.pt") if resume else (lambda name: None)  # noqa: E731

# %% [markdown]
# ## 8.1 The motion-only corpus: many people, each with a motion style of their own
# `motion_identities` identities, `motion_seconds` each. The last `motion_persons` identities are the
# **persons**: held out of the pre-training of the sync and of the VAEs below, each later gets its own fine-tuned
# cross-modal encoder (the paper's "selected person"), learnt from the first 70 % of its recording and scored on
# the last 30 % (speech it never heard with that motion). The figure shows how different the drawn styles are:
# each point is one identity, its yaw and pitch spread and its blink rate — the truth that "personalised" is
# checked against.

# %%
t0 = time.perf_counter()
mc = ensure_motion_corpus(motion_dir, motion_identities, motion_seconds, seed, motion_pool_sentences, motion_voices)
timings["motion_corpus_s"] = time.perf_counter() - t0
seqs = {n: mc.sequence(n) for n in mc.names}
persons = mc.names[-motion_persons:]
pretrain = mc.names[:-motion_persons]
cut = {n: int(0.7 * len(s["pose"])) if n in persons else len(s["pose"]) for n, s in seqs.items()}
style = pd.DataFrame([{"identity": i["name"], "yaw std (deg)": seqs[i["name"]]["pose"][:, 0].std(),
                       "pitch std (deg)": seqs[i["name"]]["pose"][:, 1].std(), "blinks/s": i["blink_rate_hz"],
                       "nod gain": i["style"]["nod"], "role": "person" if i["name"] in persons else "pre-training"}
                      for i in mc.identities])
fig = px.scatter(style, x="yaw std (deg)", y="pitch std (deg)", size="blinks/s", color="role", hover_name="identity",
                 title="the motion corpus: one point per identity (size: blink rate)")
save_figure(fig, run_dir, NB, "motion_styles")
fig.show()
print(f"{len(mc.names)} identities, {sum(len(s['pose']) for s in seqs.values())} frames; persons: {', '.join(persons)}")

# %%
fig = make_subplots(rows=2, cols=1, shared_xaxes=True, subplot_titles=("yaw (deg)", "eyelid closure"))
for n in persons:
    t = np.arange(len(seqs[n]["pose"])) / 25
    fig.add_trace(go.Scatter(x=t, y=seqs[n]["pose"][:, 0], name=n, legendgroup=n), 1, 1)
    fig.add_trace(go.Scatter(x=t, y=seqs[n]["blink"], name=n, legendgroup=n, showlegend=False), 2, 1)
fig.update_layout(height=420, title="the persons' true head yaw and blinks")
save_figure(fig, run_dir, NB, "person_curves")
fig.show()

# %% [markdown]
# ## 8.2 Face-attribute disentanglement — Eq. (1)–(2)
# The 68 landmarks of Eq. (1), $\mathbf S = \bar{\mathbf S} + \mathbf B_{id}\mathbf F_{id} + \mathbf B_{exp}\mathbf F_{exp}$,
# go into an MLP encoder $E_L$ with two heads, $f_m$ (`attr_mouth_dim`) and $f_e$ (`attr_eye_dim`); the decoder
# $D_L(f_m, f_e)$ gives them back. Eq. (2) swaps the codes between two faces A and B:
# $$\mathcal L_{rec} = \|\mathbf l'^{\,e_A}_{m_B} - \mathbf l^{e_B}_{m_B}\|_1 + \|\mathbf l'^{\,e_B}_{m_A} - \mathbf l^{e_A}_{m_A}\|_1 .$$
# Read literally the targets have the wrong eyes; `talklib.motion.attributes` reads it region-wise (its
# docstring): $D_L(f_{m_B}, f_{e_A})$ must show B's mouth region and A's eye region, and the reverse, plus plain
# L1 reconstruction. The regions are `face3d.topology.MOUTH_REGION_68` (lips, lower jaw line, nose base: where
# the 3DMM's mouth components act) and `EYE_REGION_68` (eyes, brows, nose bridge, the jaw's ends).
#
# Three choices the paper leaves open, made here and measured: (1) each person's landmarks are taken relative to
# that person's mean landmarks (their face shape $\mathbf B_{id}\mathbf F_{id}$ and resting expression), so the
# codes describe motion — with a few dozen identities the autoencoder cannot learn to reproduce unseen face
# shapes (uncentred, the held-out reconstruction error was 4.6 mm, as large as the motion); (2) frames with the
# eyes closing are drawn 7× as often as they occur (by the eye aspect ratio of the landmarks themselves, no
# label): blinks are a few per cent of the frames, and the L1 of Eq. (2) otherwise leaves them out of $f_e$
# altogether (eyelid-closure R² from $f_e$ 0.05, the decoded eyes' EAR correlating 0.27 with the truth);
# (3) each coordinate is scaled by its own spread (`per_coordinate_std`): with one scale for all, the eyelids'
# small motion was still left out of $f_e$ (seed 0: $f_e$ unused, swapping it moved nothing) even with (2).
# The autoencoder is self-supervised, so it learns from every identity (the persons' first 70 % only) and is
# scored on the persons' last 30 %.

# %%
centred = {n: s["landmarks"] - s["landmarks"].mean(0) for n, s in seqs.items()}
lm_train = np.concatenate([centred[n][:cut[n]] for n in mc.names])
groups = np.concatenate([np.full(cut[n], k) for k, n in enumerate(mc.names)])
ear_train = eye_aspect_ratio(np.concatenate([seqs[n]["landmarks"][:cut[n]] for n in mc.names]))
closing = ear_train < 0.75 * np.percentile(ear_train, 90)
frame_weights = np.where(closing, 7.0, 1.0)
print(f"{closing.mean():.1%} of the training frames have the eyes closing")
torch.manual_seed(seed)
ae = FA.AttributeAE(FA.AttributeAEConfig(mouth_dim=attr_mouth_dim, eye_dim=attr_eye_dim, width=attr_width,
                                          per_coordinate_std=True)).to(dev)
t0 = time.perf_counter()
ae_hist = FA.train_attribute_ae(ae, lm_train, groups, MOUTH_REGION_68, EYE_REGION_68, attr_steps, attr_batch,
                                seed=seed, ckpt=ckpt("attributes"), frame_weights=frame_weights)
timings["attributes_s"] = time.perf_counter() - t0
ae = ae.cpu()
FA.save_attribute_ae(ae, models / "08_attributes.pt")
px.line(pd.DataFrame(ae_hist), x="step", y=["rec", "swap"], log_y=True, title="Eq. (2): L1 reconstruction and swap").show()

# %% [markdown]
# **Does swapping $f_m$ move the mouth and not the eyes?** Held-out pairs: a frame A of one person and a frame B
# of another, both from the persons' last 30 %. $D_L(f_{m_B}, f_{e_A})$ should have B's mouth (distance to
# B's mouth small, to A's large) and keep A's eyes; the reverse swap likewise. Distances are mean landmark
# distances in millimetres. The eyes of two frames differ much less than their mouths (the eyes only move in a
# blink), so the eye columns are also shown on blink frames alone.

# %%
rng = np.random.default_rng(seed)
pa, pb = [], []
for _ in range(600):
    i, j = rng.choice(len(persons), 2, replace=False)
    pa.append(centred[persons[i]][rng.integers(cut[persons[i]], len(centred[persons[i]]))])
    pb.append(centred[persons[j]][rng.integers(cut[persons[j]], len(centred[persons[j]]))])
pa, pb = np.stack(pa), np.stack(pb)
sw = FA.swap_scores(ae, pa, pb, MOUTH_REGION_68, EYE_REGION_68)
rc_m = FA.region_change(ae, pa, pb, MOUTH_REGION_68, EYE_REGION_68, "mouth")
rc_e = FA.region_change(ae, pa, pb, MOUTH_REGION_68, EYE_REGION_68, "eye")
swap_table = pd.DataFrame({
    "mouth vs B": [sw["mBeA_mouth_vs_B_mm"], sw["mAeB_mouth_vs_B_mm"]],
    "mouth vs A": [sw["mBeA_mouth_vs_A_mm"], sw["mAeB_mouth_vs_A_mm"]],
    "eyes vs A": [sw["mBeA_eye_vs_A_mm"], sw["mAeB_eye_vs_A_mm"]],
    "eyes vs B": [sw["mBeA_eye_vs_B_mm"], sw["mAeB_eye_vs_B_mm"]]},
    index=["D_L(f_mB, f_eA)", "D_L(f_mA, f_eB)"]).round(2)
print(swap_table)
print(f"reconstruction error: mouth {sw['rec_mouth_mm']:.2f} mm, eyes {sw['rec_eye_mm']:.2f} mm; "
      f"A and B differ by {sw['mouth_A_vs_B_mm']:.2f} mm (mouth), {sw['eye_A_vs_B_mm']:.2f} mm (eyes)")
print(f"swap f_m: mouth moves {rc_m['moved_mm']:.2f} mm, eyes {rc_m['leaked_mm']:.2f} mm (ratio {rc_m['ratio']:.3f}); "
      f"swap f_e: eyes move {rc_e['moved_mm']:.2f} mm, mouth {rc_e['leaked_mm']:.2f} mm (ratio {rc_e['ratio']:.3f})")

# %%
rest = {n: np.arange(cut[n], len(centred[n])) for n in persons}
blinking = {n: idx[seqs[n]["blink"][idx] > 0.8] for n, idx in rest.items()}
open_eyes = {n: idx[seqs[n]["blink"][idx] < 0.05] for n, idx in rest.items()}
ba = np.stack([centred[persons[0]][rng.choice(blinking[persons[0]])] for _ in range(200)])
ob = np.stack([centred[persons[1]][rng.choice(open_eyes[persons[1]])] for _ in range(200)])
sw_blink = FA.swap_scores(ae, ba, ob, MOUTH_REGION_68, EYE_REGION_68)   # A blinking, B eyes open
print(f"A blinking, B open: D_L(f_mA, f_eB) has eyes {sw_blink['mAeB_eye_vs_B_mm']:.2f} mm from B's (open) and "
      f"{sw_blink['mAeB_eye_vs_A_mm']:.2f} mm from A's (closed); D_L(f_mB, f_eA) keeps A's closed eyes "
      f"({sw_blink['mBeA_eye_vs_A_mm']:.2f} mm vs {sw_blink['mBeA_eye_vs_B_mm']:.2f} mm from B's)")

# %%
k = int(np.argmax(np.linalg.norm(pa[:, 62] - pa[:, 66], axis=1) - np.linalg.norm(pb[:, 62] - pb[:, 66], axis=1)))
with torch.no_grad():
    fa, fb = ae.encode(torch.from_numpy(pa[k:k + 1])), ae.encode(torch.from_numpy(pb[k:k + 1]))
    mix = ae.decode(fb[0], fa[1])[0].numpy()
fig = go.Figure()
for name, pts, sym in (("A", pa[k], "circle"), ("B", pb[k], "x"), ("D_L(f_mB, f_eA)", mix, "diamond-open")):
    fig.add_trace(go.Scatter(x=1000 * pts[:, 0], y=1000 * pts[:, 1], mode="markers", name=name, marker_symbol=sym))
fig.update_layout(title="one swap: A's eyes, B's mouth (front view, mm from the person's mean)",
                  yaxis_scaleanchor="x", height=450)
save_figure(fig, run_dir, NB, "attribute_swap")
fig.show()

# %% [markdown]
# $f_e$ is meant as the **eye-blink embedding**: how well do the codes read the true eyelid closure and the jaw?
# Linear probes, fit on the training frames and scored on the persons' last 30 %; and whether the decoded
# landmarks still blink: the correlation of their eye aspect ratio (EAR, `metrics.blinks`) with the truth's.

# %%
def codes(names, held_out):
    f = [FA.embed(ae, centred[n][cut[n]:] if held_out else centred[n][:cut[n]]) for n in names]
    return np.concatenate([x[0] for x in f]), np.concatenate([x[1] for x in f])


def truth(key, names, held_out, col=None):
    x = [seqs[n][key][cut[n]:] if held_out else seqs[n][key][:cut[n]] for n in names]
    return np.concatenate([v if col is None else v[:, col] for v in x])


def r2_probe(x_tr, y_tr, x_te, y_te):
    X = np.c_[x_tr, np.ones(len(x_tr))]
    w = np.linalg.lstsq(X, y_tr, rcond=None)[0]
    pred = np.c_[x_te, np.ones(len(x_te))] @ w
    return float(1 - ((pred - y_te) ** 2).sum() / ((y_te - y_te.mean()) ** 2).sum())


(fm_tr, fe_tr), (fm_te, fe_te) = codes(mc.names, False), codes(persons, True)
blink_tr, blink_te = truth("blink", mc.names, False), truth("blink", persons, True)
jaw_tr, jaw_te = truth("exp", mc.names, False, 0), truth("exp", persons, True, 0)
probe = pd.DataFrame({"eyelid closure R²": [r2_probe(fe_tr, blink_tr, fe_te, blink_te), r2_probe(fm_tr, blink_tr, fm_te, blink_te)],
                      "jaw opening R²": [r2_probe(fe_tr, jaw_tr, fe_te, jaw_te), r2_probe(fm_tr, jaw_tr, fm_te, jaw_te)]},
                     index=["f_e", "f_m"]).round(3)
with torch.no_grad():
    rec = np.concatenate([ae(torch.from_numpy(centred[n][cut[n]:])).numpy() + seqs[n]["landmarks"].mean(0) for n in persons])
ear_true = eye_aspect_ratio(np.concatenate([seqs[n]["landmarks"][cut[n]:] for n in persons]))
ear_corr = float(np.corrcoef(ear_true, eye_aspect_ratio(rec))[0, 1])
print(probe)
print(f"EAR of the decoded landmarks vs the truth's: correlation {ear_corr:.4f}")

# %% [markdown]
# ## 8.3 Audio–lip sync on $f_m$ — Eq. (3)
# The contrastive audio encoder $E_a$ of notebook 02 (`talklib.audio.contrastive`, its docstring has Eq. 3) is
# trained again, now against the autoencoder's $f_m$ (a window of 5 frames) instead of the true mouth expression:
# $$\mathcal L_{con} = -\tfrac1N \textstyle\sum_i y_i \log d(f_m, f_a) + (1-y_i)\log(1-d(f_m, f_a^-)),$$
# with $d$ the cosine. Negatives: the same recording shifted by 1–10 frames, or another identity's audio.
# Scored on the persons (voices and faces the encoders never saw with that motion): for each frame, is the
# offset in ±10 frames that scores highest the true one?

# %%
fm_mean, fm_std = fm_tr.mean(0), fm_tr.std(0) + 1e-6


def sync_item(n, lo=0, hi=None):
    f_m = (FA.embed(ae, centred[n][lo:hi])[0] - fm_mean) / fm_std
    return CT.prepare(windows(seqs[n]["mel"])[lo:hi], f_m.astype(np.float32))


sync_train = [sync_item(n) for n in pretrain]
sync_test = [sync_item(n, lo, lo + 200) for n in persons for lo in range(cut[n], len(centred[n]) - 200, 200)]
torch.manual_seed(seed)
audio_enc = CT.AudioEncoder(dim=msync_dim)
mouth_enc = CT.MouthEncoder(attr_mouth_dim, dim=msync_dim)
t0 = time.perf_counter()
msync_losses = CT.train_sync(audio_enc, mouth_enc, sync_train, msync_steps, seed=seed, device=dev)
timings["sync_s"] = time.perf_counter() - t0
audio_enc, mouth_enc = audio_enc.cpu(), mouth_enc.cpu()
msync = CT.offset_accuracy(audio_enc, mouth_enc, sync_test)
nb02 = read_metrics(run_dir).get("02_audio_disentanglement", {})
print(f"held-out offset accuracy: per frame {msync['frame_acc']:.3f}, per 8-s clip {msync['clip_acc']:.3f} "
      f"(chance {msync['chance']:.3f})" + (f"; notebook 02 (true mouth expression): per frame "
                                           f"{nb02['sync_offset_frame_acc']:.3f}" if "sync_offset_frame_acc" in nb02 else ""))
fig = make_subplots(rows=1, cols=2, subplot_titles=("Eq. (3) loss", "mean d(f_m, f_a) by audio offset (held out)"))
fig.add_trace(go.Scatter(y=msync_losses, name="BCE"), 1, 1)
fig.add_trace(go.Scatter(x=msync["offsets"], y=msync["curve"], name="d"), 1, 2)
fig.update_layout(height=320, showlegend=False)
save_figure(fig, run_dir, NB, "sync_fm")
fig.show()

# %% [markdown]
# ## 8.4 The attributes to generate, and the audio they are generated from
# DFA-NeRF generates "face attributes (head poses or eye blinks)": here each frame's $\mathbf h_t$ is the head
# pose (yaw, pitch, roll in degrees; x, y, z in metres) and the eye embedding $f_e$ of 8.2, each standardised
# over the pre-training identities, $d$ = 6 + `attr_eye_dim` numbers. The audio features are $f_a = E_a(\mathbf a)$
# of 8.3 (frozen), one `msync_dim`-vector per frame.

# %%
with torch.no_grad():
    f_a = {n: audio_enc(torch.from_numpy(windows(seqs[n]["mel"]))).numpy() for n in mc.names}
f_e = {n: FA.embed(ae, centred[n])[1] for n in mc.names}
raw_h = {n: np.concatenate([seqs[n]["pose"], f_e[n]], 1).astype(np.float32) for n in mc.names}
h_mean = np.concatenate([raw_h[n] for n in pretrain]).mean(0)
h_std = np.concatenate([raw_h[n] for n in pretrain]).std(0) + 1e-6
h = {n: (raw_h[n] - h_mean) / h_std for n in mc.names}
d_h = h[pretrain[0]].shape[1]
print(f"h: {d_h} numbers per frame; f_a: {f_a[pretrain[0]].shape[1]}")

# %% [markdown]
# ## 8.5 Latent space construction: the Transformer VAE with a Gaussian-process prior — Eq. (4)–(8)
# The encoder $E_h$ (a Transformer) maps a window $\mathbf h_{1:T}$ to a posterior over a latent sequence
# $\mathbf z_{1:T}$ (Eq. 4–5), the decoder $D$ (a Transformer) gives $\hat{\mathbf h} = D(\hat{\mathbf z})$, trained
# with the MSE of Eq. (6) and the KL of Eq. (8) against the prior of Eq. (7): for each latent dimension a
# Gaussian process over the time indices with the Cauchy kernel $K_{ij} = \sigma / (1 + (i-j)^2/l^2)$ (length
# scales $l, l/2, l/4, \dots$ across the dimensions, as GP-VAE does). Its posterior has a full covariance over
# time (a bidiagonal precision factor, after GP-VAE). The three baselines of Table 4 differ in the network or the
# prior: an **MLP VAE** (one flattened window, no notion of time), an **LSTM VAE**, a **Transformer VAE** with the
# standard $\mathcal N(0, I)$ prior per frame. All four are pre-trained on the pre-training identities only.

# %%
K = GV.cauchy_kernel(vae_window, vae_length).numpy()
scales = GV.gp_prior_scales(vae_z, vae_length)
fig = make_subplots(rows=1, cols=2, subplot_titles=(f"Cauchy kernel K (l = {vae_length:g} frames)",
                                                    "prior samples of z, one per length scale"))
fig.add_trace(go.Heatmap(z=K, colorscale="Viridis", showscale=False), 1, 1)
gp_prior = GV.GPPrior(scales, 1.0, 1e-3)
L = gp_prior.factors(vae_window, torch.device("cpu"), torch.float64)[0].numpy()
z_prior = L @ np.random.default_rng(seed).normal(size=(vae_z, vae_window, 1))
for i in range(min(4, vae_z)):
    fig.add_trace(go.Scatter(y=z_prior[i, :, 0], name=f"l = {scales[i]:g}"), 1, 2)
fig.update_layout(height=330)
save_figure(fig, run_dir, NB, "gp_prior")
fig.show()

# %%
KINDS = {"MLP VAE": "mlp", "LSTM VAE": "lstm", "Trans VAE": "transformer", "Trans GP-VAE": "gp_transformer"}
vaes, vae_hist = {}, {}
t0 = time.perf_counter()
for name, kind in KINDS.items():
    torch.manual_seed(seed)
    vae = GV.MotionVAE(GV.VAEConfig(d_in=d_h, kind=kind, z_dim=vae_z, width=vae_width, seq_len=vae_window,
                                    length_scale=vae_length, beta=vae_beta)).to(dev)
    vae_hist[name] = GV.train_vae(vae, [h[n] for n in pretrain], vae_steps, vae_batch, vae_window, vae_lr, seed,
                                  ckpt=ckpt(f"vae_{kind}"))
    vaes[name] = vae.cpu()
timings["vaes_s"] = time.perf_counter() - t0
fig = go.Figure([go.Scatter(y=pd.Series([r["rec"] for r in hist]).rolling(20, min_periods=1).mean(), name=name)
                 for name, hist in vae_hist.items()])
fig.update_layout(title="pre-training: reconstruction MSE (Eq. 6), standardised units", yaxis_type="log",
                  xaxis_title="step", height=330)
fig.show()


def windows_of(x, win, step):
    return np.stack([x[s:s + win] for s in range(0, len(x) - win + 1, step)])


held = {n: windows_of(h[n][cut[n]:], vae_window, vae_window // 2) for n in persons}
vae_rec = {}
with torch.no_grad():
    for name, vae in vaes.items():
        hw = torch.from_numpy(np.concatenate(list(held.values())))
        vae_rec[name] = float(((vae.decode(vae.encode(hw).mean) - hw) ** 2).mean())
print("held-out reconstruction MSE (persons, standardised):", {k: round(v, 3) for k, v in vae_rec.items()})

# %% [markdown]
# ## 8.6 Face-attribute generation: the cross-modal encoder — Eq. (9)
# For each person, $E_{ah}$ is fine-tuned on the first 70 % of their recording: the audio features of a window
# and the codes $f_h = E_h(\mathbf h_{1:\tau})$ of its first $\tau$ = `cme_bop` frames (the BOP) are concatenated in
# time, a Transformer gives the posterior over $\mathbf z$, the frozen decoder $D$ decodes a sample, and Eq. (9)
# scores the frames after the BOP:
# $\mathcal L_{CME} = \frac1B\sum_i \|\hat{\mathbf h}^{(i)}_{\tau+1:T} - \mathbf h^{(i)}_{\tau+1:T}\|$ (L1, plus the KL
# to the prior, `motion.vae.cme_loss`). At test time the BOP is the first $\tau$ true frames of the held-out part
# and the rest is generated window by window, each window's BOP being the last $\tau$ frames generated
# (`motion.vae.generate`): any length.

# %%
cmes = {}
t0 = time.perf_counter()
for name, vae in vaes.items():
    for p in persons:
        torch.manual_seed(seed)
        cme = GV.CrossModalEncoder(GV.CMEConfig.for_vae(vae.cfg, a_dim=f_a[p].shape[1])).to(dev)
        GV.train_cross_modal(cme, vae.to(dev), [{"f_a": f_a[p][:cut[p]], "h": h[p][:cut[p]]}], cme_steps, cme_bop,
                             vae_window, vae_batch, vae_lr, seed, ckpt=ckpt(f"cme_{KINDS[name]}_{p}"), progress=False)
        cmes[name, p] = cme.cpu()
        vae.cpu()
timings["cmes_s"] = time.perf_counter() - t0
print(f"{len(cmes)} cross-modal encoders fine-tuned in {timings['cmes_s']:.0f} s")

# %% [markdown]
# ## 8.7 Generated pose and blinks against the truth
# Each person's held-out 30 %: the BOP is its first $\tau$ true frames, the rest is generated from the audio.
# Two generations per model: the posterior **mean** (deterministic, what D-Rot / D-Pos score) and a
# **sample** (what a talking head would show: the motion's liveliness and blinks are measured on it). Blinks are
# counted the way notebook 04's suite counts them in a video: the generated $f_e$ is decoded by $D_L$ with the
# frame's true $f_m$, and the eye aspect ratio of the decoded landmarks is thresholded (`metrics.blinks`).

# %%
def generated(name, p, sample, s=0):
    g = torch.Generator().manual_seed(seed * 1000 + s)
    hp = h[p][cut[p]:]
    out = GV.generate(cmes[name, p], vaes[name], f_a[p][cut[p]:], hp[:cme_bop], vae_window, sample=sample, gen=g)
    return out * h_std + h_mean


fm_held = {p: FA.embed(ae, centred[p][cut[p]:])[0] for p in persons}


def blink_rate(p, attrs):
    """blinks/s of the eyes D_L draws from f_e (columns 6:) with the frames' true f_m."""
    with torch.no_grad():
        lm = ae.decode(torch.from_numpy(fm_held[p][:len(attrs)]),
                       torch.from_numpy(attrs[:, 6:].astype(np.float32))).numpy()
    return blinks_per_second(eye_aspect_ratio(lm + seqs[p]["landmarks"].mean(0)))


t0 = time.perf_counter()
gen_mean = {(n, p): generated(n, p, False) for n in KINDS for p in persons}
gen_draw = {(n, p, s): generated(n, p, True, s) for n in KINDS for p in persons for s in range(3)}
timings["generate_s"] = time.perf_counter() - t0
true_h = {p: raw_h[p][cut[p]:] for p in persons}
true_blinks = {p: blinks_per_second(eye_aspect_ratio(seqs[p]["landmarks"][cut[p]:])) for p in persons}
p0 = persons[0]
t = np.arange(len(true_h[p0])) / 25
prior = GV.sample_prior(vaes["Trans GP-VAE"], len(t), 1, torch.Generator().manual_seed(seed))[0] * h_std + h_mean
fig = make_subplots(rows=3, cols=1, shared_xaxes=True, subplot_titles=("yaw (deg)", "pitch (deg)", "f_e, first number"))
for label, x, dash in (("truth", true_h[p0], None), ("GP-VAE, mean", gen_mean["Trans GP-VAE", p0], None),
                       ("GP-VAE, sample", gen_draw["Trans GP-VAE", p0, 0], "dot"),
                       ("LSTM VAE, sample", gen_draw["LSTM VAE", p0, 0], "dot"), ("GP prior, no audio", prior, "dash")):
    for row, col in ((1, 0), (2, 1), (3, 6)):
        fig.add_trace(go.Scatter(x=t, y=x[:, col], name=label, legendgroup=label, showlegend=row == 1,
                                 line=dict(dash=dash)), row, 1)
fig.add_vline(x=cme_bop / 25, line_dash="dot", annotation_text="BOP ends")
fig.update_layout(height=620, title=f"{p0}, held-out audio: generated head motion and eye code against the truth")
save_figure(fig, run_dir, NB, "generated_motion")
fig.show()

# %% [markdown]
# ## 8.8 Fig. 6: the persons in Z, with and without audio
# Each window of a person's recording gives a latent sequence; its mean over the window is one point. *With
# audio*: the cross-modal encoder's posterior mean from the window's audio and its BOP (`GV.latent_codes`);
# *without audio*: the VAE encoder's codes of the window's attributes (`GV.attribute_codes`). The paper's claim:
# the persons are more distinct with audio. How distinct is measured by a leave-one-out nearest-centroid
# classification of the windows by person (chance: 1 / persons).

# %%
def window_points(p, with_audio):
    pts = []
    for s in range(0, len(h[p]) - vae_window + 1, vae_window // 2):
        w = slice(s, s + vae_window)
        z = (GV.latent_codes(cmes["Trans GP-VAE", p], vaes["Trans GP-VAE"], f_a[p][w], h[p][w][:cme_bop]) if with_audio
             else GV.attribute_codes(vaes["Trans GP-VAE"], h[p][w]))
        pts.append(z.mean(0))
    return np.stack(pts)


def centroid_accuracy(points):
    X = np.concatenate(list(points.values()))
    y = np.concatenate([np.full(len(v), i) for i, v in enumerate(points.values())])
    hits = []
    for i in range(len(X)):
        keep = np.arange(len(X)) != i
        cents = np.stack([X[keep & (y == c)].mean(0) for c in range(len(points))])
        hits.append(np.argmin(((cents - X[i]) ** 2).sum(1)) == y[i])
    return float(np.mean(hits))


fig6 = {cond: {p: window_points(p, cond == "with audio") for p in persons} for cond in ("with audio", "without audio")}
fig6_acc = {cond: centroid_accuracy(pts) for cond, pts in fig6.items()}
fig = make_subplots(rows=1, cols=2, subplot_titles=[f"{c} (persons told apart: {a:.2f})" for c, a in fig6_acc.items()])
for j, (cond, pts) in enumerate(fig6.items()):
    X = np.concatenate(list(pts.values()))
    X = X - X.mean(0)
    V = np.linalg.svd(X, full_matrices=False)[2][:2].T
    for i, (p, v) in enumerate(pts.items()):
        xy = (v - np.concatenate(list(pts.values())).mean(0)) @ V
        fig.add_trace(go.Scatter(x=xy[:, 0], y=xy[:, 1], mode="markers", name=p, legendgroup=p, showlegend=j == 0,
                                 marker_color=px.colors.qualitative.Plotly[i % 10]), 1, j + 1)
fig.update_layout(height=380, title="Fig. 6 re-run: PCA of the window-mean codes z, one colour per person")
save_figure(fig, run_dir, NB, "fig6_pca")
fig.show()
print({c: round(a, 3) for c, a in fig6_acc.items()}, f"chance {1 / len(persons):.3f}")

# %% [markdown]
# ## 8.9 Table 4 re-run
# **D-Rot / D-Pos** (`metrics.pose`, MakeItTalk's meters as talklib defines them: the mean absolute rotation
# error in degrees, resp. the mean position error, as a percentage of the truth's own mean absolute deviation
# from its mean; the paper's exact normalisation is not published), on the posterior-mean generation of the
# frames after the BOP, averaged over the persons. A **still head** (the BOP's last frame held) is scored too:
# a model that does not beat it has not learnt to predict the future pose. Besides Table 4's columns:
# **motion kept**, the sampled motion's rotation std over the truth's (the paper's "LSTM outputs tend to converge
# to a fixed value": near 0 is frozen); **blinks/s** of the sampled eyes against the truth's; and
# **personalised**, how often a person's sampled motion lies nearest to that person's true motion among the
# persons' (chance 1 / persons), each motion described by the std of yaw, pitch and roll and its blinks/s, taken
# relative to the persons' average (log-ratios: a model that damps everyone's motion alike is judged on who moves
# more than whom, not on the damping). A **mean pose** (the person's training mean held) scores 100 % by the
# definition of the meter: it is the level of a model that has learnt nothing about the future pose.

# %%
draw_blinks = {key: blink_rate(key[1], x) for key, x in gen_draw.items()}   # (kind, person, sample) -> blinks/s


def style_features(key):
    return np.r_[gen_draw[key][:, :3].std(0), draw_blinks[key]]


truth_feats = np.stack([np.r_[true_h[p][:, :3].std(0), true_blinks[p]] for p in persons])
floor = 0.1 * truth_feats.mean(0) + 1e-6
rel = lambda F: np.log(F + floor) - np.log(F + floor).mean(0)   # noqa: E731  (each person's style relative to the others')


def personalised(name):
    """How often a person's sampled motion is nearest (L1 over the relative log-features) to that person's true one."""
    hits = []
    for s in range(3):
        g = rel(np.stack([style_features((name, p, s)) for p in persons]))
        hits += [int(np.argmin(np.abs(g[i] - rel(truth_feats)).sum(1)) == i) for i in range(len(persons))]
    return float(np.mean(hits))


rows = {}
for name in KINDS:
    rows[name] = {
        "D-Rot %": np.mean([d_rot(gen_mean[name, p][cme_bop:, :3], true_h[p][cme_bop:, :3], relative=True) for p in persons]),
        "D-Pos %": np.mean([d_pos(gen_mean[name, p][cme_bop:, 3:6], true_h[p][cme_bop:, 3:6], relative=True) for p in persons]),
        "motion kept": np.mean([gen_draw[name, p, s][cme_bop:, :3].std(0).mean() / true_h[p][cme_bop:, :3].std(0).mean()
                                for p in persons for s in range(3)]),
        "blinks/s": np.mean([draw_blinks[name, p, s] for p in persons for s in range(3)]),
        "personalised": personalised(name)}
for label, hold in (("still head (BOP held)", {p: true_h[p][cme_bop - 1] for p in persons}),
                    ("mean pose (training mean held)", {p: raw_h[p][:cut[p]].mean(0) for p in persons})):
    rows[label] = {
        "D-Rot %": np.mean([d_rot(np.broadcast_to(hold[p][:3], true_h[p][cme_bop:, :3].shape), true_h[p][cme_bop:, :3],
                                  relative=True) for p in persons]),
        "D-Pos %": np.mean([d_pos(np.broadcast_to(hold[p][3:6], true_h[p][cme_bop:, 3:6].shape), true_h[p][cme_bop:, 3:6],
                                  relative=True) for p in persons])}
rows["ground truth"] = {"D-Rot %": 0.0, "D-Pos %": 0.0, "motion kept": 1.0,
                        "blinks/s": np.mean(list(true_blinks.values())), "personalised": 1.0}
from talklib.scorecard.papers import DFA_T4 as T4  # noqa: E402  (the paper's numbers, one copy)
table4 = pd.DataFrame(rows).T
table4.insert(0, "paper D-Pos %", pd.Series({k: v[1] for k, v in T4.items()}))
table4.insert(0, "paper D-Rot %", pd.Series({k: v[0] for k, v in T4.items()}))
table4.round(3)

# %%
R = rows
trans = ("Trans VAE", "Trans GP-VAE")
claims4 = [
    ("Transformers beat MLP and LSTM on D-Rot", max(R[k]["D-Rot %"] for k in trans) < min(R[k]["D-Rot %"] for k in ("MLP VAE", "LSTM VAE"))),
    ("Transformers beat MLP and LSTM on D-Pos", max(R[k]["D-Pos %"] for k in trans) < min(R[k]["D-Pos %"] for k in ("MLP VAE", "LSTM VAE"))),
    ("GP improves on the plain Transformer VAE (D-Rot)", R["Trans GP-VAE"]["D-Rot %"] < R["Trans VAE"]["D-Rot %"]),
    ("GP improves on the plain Transformer VAE (D-Pos)", R["Trans GP-VAE"]["D-Pos %"] < R["Trans VAE"]["D-Pos %"]),
    ("LSTM outputs freeze (least motion kept of the four)", R["LSTM VAE"]["motion kept"] <= min(R[k]["motion kept"] for k in KINDS)),
    ("the GP-VAE predicts better than a still head (D-Rot)", R["Trans GP-VAE"]["D-Rot %"] < R["still head (BOP held)"]["D-Rot %"]),
    ("the GP-VAE predicts better than the mean pose (D-Rot)",
     R["Trans GP-VAE"]["D-Rot %"] < R["mean pose (training mean held)"]["D-Rot %"]),
    ("generated motion is personalised (GP-VAE, above chance)", R["Trans GP-VAE"]["personalised"] > 1 / len(persons)),
    ("Fig. 6: persons more distinct in Z with audio", fig6_acc["with audio"] > fig6_acc["without audio"]),
    ("latent space: held-out reconstruction GP-VAE < Trans VAE < LSTM VAE < MLP VAE (8.5)",
     vae_rec["Trans GP-VAE"] < vae_rec["Trans VAE"] < vae_rec["LSTM VAE"] < vae_rec["MLP VAE"]),
]
verdicts4 = pd.DataFrame([{"claim": c, "here": "holds" if ok else "does not hold here"} for c, ok in claims4])
verdicts4

# %% [markdown]
# **Reading Table 4 at the small preset** (the verdicts of seeds 0–4 are in `benchmarks/small_preset_seeds.md`
# and `benchmarks/RESULTS.md`, "Notebook 08"). Every model's D-Rot and D-Pos sits near 100 %, the level of the
# mean pose: 300 pre-training steps and 100 fine-tuning steps do not learn to predict a future head pose from
# audio, in a corpus where the head sways as a random process and only the nods follow the speech energy. So
# the paper's ordering (Transformers far below MLP and LSTM, GP below the plain Transformer) is not resolved
# here, and its values (3–22 %, under a normalisation it does not publish) cannot be compared with ours. Two
# things do separate the models, in the paper's order. The *latent space* (8.5): held-out reconstruction error
# falls from MLP to LSTM to Transformer to Transformer GP-VAE. The *sampled* motion: the MLP VAE's moves least
# (the freezing the paper reports, though here of the MLP more than of the LSTM), the Transformers' keep about
# half of the true motion. Blinks are nearly absent from every model's samples: a blink is a few frames in
# hundreds, and these short trainings smooth them away. These are findings of this budget, not of the method;
# the full preset has not been run yet (issue #20: the full pipeline on a GPU).

# %% [markdown]
# ## 8.10 DFA-NeRF's field, Eq. (10)–(11), driven by generated head pose and blinks
# The selected person is now notebook 01's rendered speaker. Three things are made for it:
#
# 1. **$f_e$ of its frames**: its 68 landmarks of Eq. (1) (its identity, its true expression of every frame),
#    centred on its training clip's mean, through $E_L$ of 8.2, written as `aud_eyes.npy` into its training and
#    testA clip folders: the `f_e` condition (`talklib.condition.spec`).
# 2. **Its motion generator**: a cross-modal encoder into the GP-VAE's latent space fine-tuned on its training
#    clip (its head pose and $f_e$, 8.3's $E_a$ of its audio), saved with $E_a$, the GP-VAE, the standardisation
#    (the corpus's spread, centred on the speaker's own mean pose) and its BOP as `models/08_motion.pt`
#    (`talklib.motion.generator`): `python -m talklib render --motion` takes it.
# 3. **The field** $F_\theta(\mathbf f_c, \mathbf d, \mathbf x) \to (\mathbf c, \sigma)$ of Eq. (10) with
#    $\mathbf f_c = [\mathbf f_a, \mathbf f_e]$, trained with the photometric loss of Eq. (11) (plus notebook 03's
#    depth prior) for `dfa_steps` steps from notebook 03's head, like each row of notebook 05, but with the whole
#    frame rendered every `dfa_focus_every`-th step (notebook 05's rows mostly render the lower face: the eyes, which
#    $f_e$ drives, are outside it). $\mathbf f_a$ is notebook 02's contrastive feature (the one notebook 05's Table 5
#    row uses; 8.3's $E_a$ drives the motion).
#    **The pose is the view direction**: every frame's camera is expressed in the head's canonical frame (the rays
#    mapped by the inverse head pose, `nerf.rays`), so the pose reaches the field as the direction and origin of
#    every ray in canonical space. DFA-NeRF also feeds $\mathbf d$ into the colour MLP; talklib's head is
#    Lambertian and notebook 03 measured that a view-dependent colour costs held-out PSNR (`benchmarks/RESULTS.md`,
#    "CPU: notebook 03 on the small preset after these changes"), so this field follows `nerf_view_dir` like every
#    other (off in both presets; with it on, this field scored 15.3 dB PSNR on testA against 16.4 dB off,
#    seed 0, 200 steps; `-p nerf_view_dir=true` turns it on).

# %%
from talklib.audio.features import write_features  # noqa: E402
from talklib.condition.extract import BUNDLE_NAME, load_bundle, subset  # noqa: E402
from talklib.condition.inputs import config_for  # noqa: E402
from talklib.face3d.model import MorphableModel  # noqa: E402
from talklib.motion import generator as MG  # noqa: E402
from talklib.nerf.scene import from_clip, with_conditions  # noqa: E402
from talklib.nerf.talk import pose_cameras, render_extra, replace_parts  # noqa: E402
from talklib.nerf.train import (evaluate, fit, load_checkpoint, model_for_scene, model_settings,  # noqa: E402
                                save_checkpoint, warm_start)
from talklib.speaker.build import ensure_corpus  # noqa: E402
from talklib.speaker.motion_corpus import landmarks_68  # noqa: E402

corpus = ensure_corpus(data_dir, preset=preset, seed=seed)
clip, test_clip = corpus.clip(split="train"), corpus.clip(split="testA")
tensors = MorphableModel.from_asset().tensors()
lm_sp = {c.name: landmarks_68(tensors, c.id_coeffs(), c.exp()) for c in (clip, test_clip)}
rest_sp = lm_sp[clip.name].mean(0)
eyes_sp = {name: FA.embed(ae, lm - rest_sp)[1] for name, lm in lm_sp.items()}
for c in (clip, test_clip):
    write_features(c.path, {"eyes": eyes_sp[c.name]},
                   {"eyes": ("", "", "DFA-NeRF's eye-blink embedding f_e of the face-attribute autoencoder (notebook 08)")})
raw_sp = {c.name: np.c_[c.pose(), eyes_sp[c.name]].astype(np.float32) for c in (clip, test_clip)}
sp_mean = h_mean.copy()
sp_mean[:6] = raw_sp[clip.name][:, :6].mean(0)      # the speaker's own resting pose; the corpus's spread
h_sp = {name: ((x - sp_mean) / h_std).astype(np.float32) for name, x in raw_sp.items()}
with torch.no_grad():
    f_a_sp = {c.name: MG.audio_features(audio_enc, c.audio(), c.n_frames) for c in (clip, test_clip)}
gp = vaes["Trans GP-VAE"]
torch.manual_seed(seed)
cme_sp = GV.CrossModalEncoder(GV.CMEConfig.for_vae(gp.cfg, a_dim=msync_dim)).to(dev)
t0 = time.perf_counter()
GV.train_cross_modal(cme_sp, gp.to(dev), [{"f_a": f_a_sp[clip.name], "h": h_sp[clip.name]}], cme_steps, cme_bop,
                     vae_window, vae_batch, vae_lr, seed, ckpt=ckpt("cme_speaker"), progress=False)
timings["cme_speaker_s"] = time.perf_counter() - t0
gp, cme_sp = gp.cpu(), cme_sp.cpu()
motion_gen = MG.MotionGenerator(audio_enc, gp, cme_sp, sp_mean, h_std, raw_sp[clip.name][:cme_bop], vae_window,
                                clip.identity)
MG.save_generator(models / "08_motion.pt", motion_gen)
print(f"speaker's training clip: {clip.n_frames} frames, f_e range {eyes_sp[clip.name].min():.2f}..{eyes_sp[clip.name].max():.2f}; "
      f"motion generator saved to {models / '08_motion.pt'}")

# %%
nb03 = Path(run_dir) / "checkpoints" / "nerf03"
assert (nb03 / "nerf.pt").is_file(), f"notebook 03's field is missing in {nb03}: run notebook 03 first"
ccfg = config_for(clip, f"f_a,f_e:{attr_eye_dim},f_illu", audio_dim=cond_audio_dim, frames=cond_frames)
base = from_clip(clip, size=nerf_size, conditions="f_illu", depth=nerf_depth_weight > 0).to(dev)
scene = with_conditions(base, clip, ccfg)
settings = model_settings(globals())
torch.manual_seed(seed)
field = model_for_scene(scene, **settings).to(dev)
warm_start(field, load_checkpoint(nb03)["state"])
from talklib.nerf.scene import lower_face_box  # noqa: E402

t0 = time.perf_counter()
field_hist = fit(field, scene, steps=dfa_steps, lr=nerf_lr, occ_every=50, depth_weight=nerf_depth_weight, seed=seed,
                 progress=False, focus=lower_face_box(clip, nerf_size, nerf_upsample), focus_every=dfa_focus_every)
timings["nerf_fit_s"] = time.perf_counter() - t0
field.eval()
default = scene.cond[torch.as_tensor(scene.train_idx).to(dev)].mean(0)
extra = render_extra(scene, None, None, default,
                     features=subset(load_bundle(clip.path / BUNDLE_NAME), ccfg.parts, str(clip.path)))
save_checkpoint(Path(run_dir) / "checkpoints" / "08_dfa" / "nerf.pt", field, extra=extra, step=dfa_steps,
                history=field_hist)
print(f"field on {ccfg.conditions}: {field_hist[-1]['psnr']:.1f} dB on its last training step, "
      f"{timings['nerf_fit_s']:.0f} s; checkpoint {Path(run_dir) / 'checkpoints' / '08_dfa'}")

# %% [markdown]
# **testA, four ways** (its first `cond_score_frames` frames: sentences the field and the generator never
# heard). *True motion*: testA's own head pose and $f_e$ (what the field can do when the motion is right);
# *generated*: pose and $f_e$ from testA's wav by the speaker's motion generator, starting from its BOP, the
# whole DFA-NeRF pipeline, which is what `render --motion` does; *no $f_e$*: the true pose with $f_e$ held at its
# training mean (Fig. 7's ablation, here without retraining: the eyes should not close); and the ground truth.
# The cameras of a generated pose come from `nerf.talk.pose_cameras` (the head moved in front of the recorded
# camera); given testA's true pose it must give testA's own cameras back, checked first.

# %%
import dataclasses  # noqa: E402

from talklib.data.video import write_video  # noqa: E402
from talklib.metrics.image import psnr  # noqa: E402
from talklib.metrics.suite import evaluate_videos, video_landmarks  # noqa: E402
from talklib.sync.model import load_sync  # noqa: E402
from IPython.display import Video, display  # noqa: E402
from PIL import Image  # noqa: E402

test_base = from_clip(test_clip, size=nerf_size, conditions="f_illu").to(dev)
test_scene = with_conditions(test_base, test_clip, config_for(test_clip, ccfg))
n_test = test_clip.n_frames if cond_score_frames == 0 else min(test_clip.n_frames, cond_score_frames)
frames = np.arange(n_test)
cams_true = pose_cameras(extra, n_test, center=field.center.cpu(), pose=test_clip.pose()[:n_test]).to(dev)
cam_gap = float((cams_true - test_scene.c2w[:n_test]).abs().max())
assert cam_gap < 1e-4, cam_gap
t0 = time.perf_counter()
drive_test = MG.drive(motion_gen, test_clip.audio(), test_clip.n_frames, seed=seed)
timings["generate_testA_s"] = time.perf_counter() - t0
cams_gen = pose_cameras(extra, n_test, center=field.center.cpu(), pose=drive_test["pose"][:n_test]).to(dev)
cond_gen, _ = replace_parts(field, test_scene.cond[:n_test], {"f_e": drive_test["f_e"][:n_test]})
fe_mean = eyes_sp[clip.name][np.asarray(scene.train_idx)].mean(0, keepdims=True)
cond_nofe, _ = replace_parts(field, test_scene.cond[:n_test], {"f_e": np.repeat(fe_mean, n_test, 0)})


def to_u8(x):
    return (np.clip(x.cpu().numpy(), 0, 1) * 255 + 0.5).astype(np.uint8)


def render_with(cond, cams):
    sc = dataclasses.replace(test_scene, cond=torch.cat([cond, test_scene.cond[n_test:]]))
    return to_u8(evaluate(field, sc, frames, c2w=cams))


t0 = time.perf_counter()
renders = {"DFA-NeRF, true pose and f_e": to_u8(evaluate(field, test_scene, frames)),
           "DFA-NeRF, generated pose and f_e (from the wav)": render_with(cond_gen, cams_gen),
           "DFA-NeRF without f_e (true pose, f_e at its mean)": render_with(cond_nofe, cams_true)}
timings["render_testA_s"] = time.perf_counter() - t0
gt = (test_base.images[:n_test].cpu().numpy() * 255 + 0.5).astype(np.uint8)
print(f"cameras from testA's true pose vs its own: largest difference {cam_gap:.1e}")

# %%
t0 = time.perf_counter()
sync_path = Path(run_dir) / "models" / "sync.pt"
assert sync_path.is_file(), f"notebook 04's lip-sync expert is missing at {sync_path}: run notebook 04 first"
expert = load_sync(sync_path)
audio_test = test_clip.audio()[: n_test * 640]


def upscale(x):
    return np.stack([np.asarray(Image.fromarray(f).resize((nerf_score_size,) * 2, Image.BICUBIC)) for f in x])


gt_up = upscale(gt)
lm_gt = video_landmarks(gt_up, "testA ground truth")
scores = {}
for name, fr in renders.items():
    r = evaluate_videos(upscale(fr), gt_up, 25, audio_test, sync_model=expert, ref_landmarks=lm_gt,
                        cpbd_every=n_test, pred_name=name)
    r["psnr"] = psnr(fr, gt)
    scores[name] = r
truth = evaluate_videos(gt_up, gt_up, 25, audio_test, sync_model=expert, ref_landmarks=lm_gt, cpbd_every=n_test)
timings["score_s"] = time.perf_counter() - t0
side = np.concatenate([gt, renders["DFA-NeRF, generated pose and f_e (from the wav)"],
                       renders["DFA-NeRF, true pose and f_e"]], axis=2)
side = np.stack([np.asarray(Image.fromarray(f).resize((3 * nerf_score_size, nerf_score_size), Image.BICUBIC))
                 for f in side])
vid = write_video(video_path(run_dir, NB, "testA_generated_motion"), side, fps=25, audio=audio_test)
display(Video(str(vid), embed=True, width=3 * nerf_score_size))
print("left to right: ground truth, generated pose and f_e, true pose and f_e")

# %% [markdown]
# ## 8.11 Table 2 re-run (the DFA-NeRF row), with the paper's numbers beside ours
# The paper's Table 2 scores May's video (Testset A); ours is the synthetic speaker's testA with the stand-ins
# of notebook 04 (our expert's LSE-C for SyncNet's confidence, mouth landmark distance M-LMD from mediapipe on
# 128² frames for LMD): compare orderings, not values. PSNR and SSIM of the *generated* row compare frames whose
# head pose was generated with frames of the true pose, so they measure how far the generated motion is from
# the one that was recorded as much as image quality; the paper does not say which pose its row used.

# %%
cols = {"psnr": "PSNR ↑", "ssim": "SSIM ↑", "m_lmd": "M-LMD ↓", "lse_c": "LSE-C ↑", "blinks_per_s": "blinks/s"}
table2 = pd.DataFrame({name: {v: r[k] for k, v in cols.items()} for name, r in scores.items()}).T
table2.loc["ground truth"] = pd.Series({cols["ssim"]: 1.0, cols["m_lmd"]: 0.0, cols["lse_c"]: truth["lse_c"],
                                        cols["blinks_per_s"]: truth["blinks_per_s"]})
from talklib.scorecard.papers import DFA_T2 as paper2  # noqa: E402  (the paper's numbers, one copy)
for name, v in paper2.items():
    table2.loc[name] = pd.Series(dict(zip(cols.values(), v)))
table2.round(3)

# %%
S, G2 = scores, "DFA-NeRF, generated pose and f_e (from the wav)"
TRUE2, NOFE = "DFA-NeRF, true pose and f_e", "DFA-NeRF without f_e (true pose, f_e at its mean)"
claims2 = [
    ("the eyes blink with f_e and not without it (Fig. 7)", S[TRUE2]["blinks_per_s"] > S[NOFE]["blinks_per_s"]),
    ("generated blinks/s near the truth's (within 50 %)", abs(S[G2]["blinks_per_s"] - truth["blinks_per_s"])
     <= 0.5 * max(truth["blinks_per_s"], 1e-6)),
    ("generated motion keeps the lips in sync (LSE-C at least half the truth's)", S[G2]["lse_c"] >= 0.5 * truth["lse_c"]),
    ("the generated row's mouth is as accurate as the true-motion row's (M-LMD within 20 %)",
     S[G2]["m_lmd"] <= 1.2 * S[TRUE2]["m_lmd"]),
]
verdicts2 = pd.DataFrame([{"claim": c, "here": "holds" if ok else "does not hold here"} for c, ok in claims2])
verdicts2

# %% [markdown]
# **Reading Table 2.** At `dfa_steps` steps from notebook 03's head, the field does not learn to close its eyes
# from $f_e$ (its condition network's input layer starts fresh; notebook 03's head learnt the eyelids from the
# 3DMM expression), so blinks/s reads 0 with and without $f_e$ and Fig. 7's contrast does not appear;
# `benchmarks/RESULTS.md` ("Notebook 08") has the same field trained longer. The generated row loses PSNR and
# SSIM against the recorded frames because its head is elsewhere, as expected of a sampled pose; its mouth
# (M-LMD, centred on the mouth) is scored fairly.

# %% [markdown]
# ## 8.12 From a wav to a talking head that moves and blinks: `render --motion`
# The command line does what 8.10 did, from any audio: the checkpoint `checkpoints/08_dfa` computes $\mathbf f_a$
# from the wav, the motion generator `models/08_motion.pt` the head pose and $f_e$. Here on testB, real CMU
# ARCTIC speech of another voice (the synthetic speaker's corpus keeps it for exactly this):
#
# ```bash
# python -m talklib render --checkpoint RUN/checkpoints/08_dfa --motion RUN/models/08_motion.pt \
#     --audio data/synthetic/small/clips/id00_testB/aud.wav --out talk.mp4
# ```
#
# How fast is the motion branch? Generating a minute of pose and blinks (`benchmarks/motion_generate.py`
# measures it at both presets; `benchmarks/RESULTS.md` has the numbers):

# %%
from talklib.cli import main as talklib_command  # noqa: E402  (python -m talklib ...)

test_b = corpus.clip(split="testB")
out_mp4 = video_path(run_dir, NB, "testB_render_motion")
out_mp4.unlink(missing_ok=True)
code = talklib_command(["render", "--checkpoint", str(Path(run_dir) / "checkpoints" / "08_dfa"), "--motion",
                        str(models / "08_motion.pt"), "--audio", str(test_b.path / "aud.wav"), "--out", str(out_mp4),
                        "--device", dev.type])
assert code == 0 and out_mp4.is_file(), code
display(Video(str(out_mp4), embed=True, width=nerf_score_size))
minute = np.tile(test_b.audio(), int(np.ceil(60 * 16000 / len(test_b.audio()))))[:60 * 16000]
t0 = time.perf_counter()
minute_motion = MG.drive(motion_gen, minute, seed=seed)
timings["generate_60s_s"] = time.perf_counter() - t0
print(f"60 s of head pose and f_e ({len(minute_motion['pose'])} frames) in {timings['generate_60s_s']:.2f} s on {dev.type}")

# %% [markdown]
# ## 8.13 What is asserted, and the numbers of this run
# Measured over seeds 0–4 (`benchmarks/small_preset_seeds.md`), asserted with a margin: swapping $f_m$ moves the
# mouth and leaves the eyes (leak ratio), swapping $f_e$ the reverse; $f_e$ reads the eyelid and $f_m$ the jaw;
# the audio–$f_m$ sync finds the true offset well above chance; the GP-VAE's latent space reconstructs held-out
# motion far better than the MLP VAE's; the cameras of a pose are the recorded ones; generation covers any length. The paper's orderings of Tables 2 and 4 and Fig. 6 are recorded as verdicts above,
# not asserted: at the small preset's budget they are a finding of this run.

# %%
assert rc_m["ratio"] < 0.3 and rc_e["ratio"] < 0.6, (rc_m["ratio"], rc_e["ratio"])
assert probe.loc["f_e", "eyelid closure R²"] > 0.5 and probe.loc["f_m", "jaw opening R²"] > 0.5, probe
assert msync["frame_acc"] > 3 * msync["chance"], msync["frame_acc"]
assert vae_rec["Trans GP-VAE"] < 0.5 * vae_rec["MLP VAE"], vae_rec
assert all(v.shape == true_h[p].shape for (n, p), v in gen_mean.items())
assert minute_motion["pose"].shape == (1500, 6) and np.isfinite(minute_motion["pose"]).all()

# %%
r4 = lambda x: None if x is None else round(float(x), 4)  # noqa: E731
timings["total_s"] = time.perf_counter() - t_start
write_metrics(run_dir, NB, {
    "attr_swap_mouth_leak_ratio": r4(rc_m["ratio"]), "attr_swap_eye_leak_ratio": r4(rc_e["ratio"]),
    "attr_rec_mouth_mm": r4(sw["rec_mouth_mm"]), "attr_rec_eye_mm": r4(sw["rec_eye_mm"]),
    "attr_fe_eyelid_r2": r4(probe.loc["f_e", "eyelid closure R²"]), "attr_fm_eyelid_r2": r4(probe.loc["f_m", "eyelid closure R²"]),
    "attr_fm_jaw_r2": r4(probe.loc["f_m", "jaw opening R²"]), "attr_fe_jaw_r2": r4(probe.loc["f_e", "jaw opening R²"]),
    "attr_ear_corr": r4(ear_corr),
    "msync_frame_acc": r4(msync["frame_acc"]), "msync_clip_acc": r4(msync["clip_acc"]), "msync_chance": r4(msync["chance"]),
    **{f"vae_heldout_mse/{n}": r4(v) for n, v in vae_rec.items()},
    **{f"table4/{n}/{k}": r4(v) for n, row in rows.items() for k, v in row.items()},
    **{f"table4/verdict/{c}": ok for c, ok in claims4},
    "fig6_acc_with_audio": r4(fig6_acc["with audio"]), "fig6_acc_without_audio": r4(fig6_acc["without audio"]),
    **{f"table2/{n}/{k}": r4(S[n][k]) for n in S for k in cols},
    **{f"table2/ground truth/{k}": r4(truth[k]) for k in ("lse_c", "blinks_per_s")},
    **{f"table2/verdict/{c}": ok for c, ok in claims2},
    "camera_gap": r4(cam_gap), "nerf_train_psnr": r4(field_hist[-1]["psnr"]),
}, timings=timings)
print(f"notebook 08: {timings['total_s']:.0f} s")
