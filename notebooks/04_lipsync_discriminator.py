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
# # 04 · Lip-sync discriminator and the evaluation suite
# Two of the papers supervise their generator with a **lip-sync expert** — a SyncNet-style pair of
# encoders that says whether five mouth crops and the matching 0.2 s of audio belong together
# (NeRF-3DTalker Eq. (2), S3D-NeRF Eq. (6)–(8)) — and all four report **SyncNet's confidence**, LMD and
# image metrics that their codebases do not ship. The official SyncNet weights cannot be downloaded
# here, so this notebook:
#
# 1. trains talklib's own expert on the synthetic speaker (rendered clips + speech-only clips whose
#    ground-truth expression we render), with the cosine loss of Eq. (2) and the triplet loss of Eq. (7);
# 2. looks at in-sync and off-sync embeddings;
# 3. measures AV offset / LSE-D / LSE-C exactly as `syncnet_python` defines them (±15 frames) and how
#    often a known offset is recovered on held-out clips;
# 4. runs the whole suite (`python -m talklib eval`) on the ground-truth video, on a copy whose audio
#    is shifted by 5 frames and on a blurred copy — every metric must move the way it should.
#
# Code: `talklib.sync` (`model`, `losses`, `offset`, `crops`, `train`, `corpus`, `syncnet_v2`) and
# `talklib.metrics` (`image`, `lpips`, `sharpness`, `landmarks`, `blinks`, `action_units`, `pose`, `suite`).

# %% tags=["parameters"]
run_dir = "runs/dev"
data_dir = "data/synthetic/small"
preset = "small"
seed = 0
device = "auto"
sync_steps = 500
sync_batch = 64
sync_lr = 2e-3
sync_loss = "both"
sync_width = 16
sync_dim = 128
sync_speech_clips = -1
sync_test_every = 3
sync_speech_renders = 2
sync_threads = 1
sync_eval_shifts = "3,5,7,10"
sync_eval_min_seconds = 3.0
eval_cpbd_every = 2

# %%
import time
from pathlib import Path

import numpy as np
import plotly.express as px
import plotly.graph_objects as go
import torch

from talklib.notebook import setup
from talklib.outputs import save_figure, save_image, video_path, write_metrics

dev = setup(seed, device, run_dir)
T0 = time.time()
timings = {}

# %% [markdown]
# ## 1 · Data: mouth crops and the matching mel window
# The corpus comes from notebook 01 (`ensure_corpus` makes it if missing). Training material:
# the identities' **train** clips, plus every speech-only clip rendered frontally from its
# ground-truth expression curves (`talklib.sync.corpus.render_speech`) — many voices and texts —
# `sync_speech_renders` times, each under another stretch of the identity's head pose and lighting (at the
# small preset 2: with one, seed 4's expert was one frame off on a blurred copy on one machine and not on
# another; with two, every seed holds, `benchmarks/small_preset_seeds.md`). Held out: the **testA** (unseen sentences) and **testB** (real ARCTIC speech) clips, and every
# `sync_test_every`-th rendered speech-only clip.
#
# A window is $T=5$ mouth crops (24×40 px, centred on the lip landmarks, 1.1 inter-ocular distances
# wide) and the matching 10 steps of the 50 Hz mel stream of `talklib.audio.features.mel_stream`
# (0.2 s). Crops are taken 12.5 % larger so training can jitter them.

# %%
from talklib.speaker.build import ensure_corpus
from talklib.sync.corpus import expert_material
from talklib.sync.model import SyncConfig

t = time.time()
corpus = ensure_corpus(data_dir, preset, seed)
cfg = SyncConfig(width=sync_width, dim=sync_dim)
train_clips = corpus.clips(split="train")
test_clips = corpus.clips(split="testA") + corpus.clips(split="testB")
train_items, test_items = expert_material(corpus, cfg, sync_speech_clips, sync_test_every,
                                          renders=sync_speech_renders,
                                          cache=Path(run_dir) / "cache" / "expert_material.pt")   # notebook 06 reuses it
train_data, test_data = [it.data for it in train_items], [it.data for it in test_items]
test_names, test_audio = [it.name for it in test_items], [it.audio for it in test_items]
timings["data_s"] = time.time() - t
n_train_frames = sum(d.n_frames for d in train_data)
print(f"train: {len(train_data)} clips, {n_train_frames} frames ({n_train_frames / 25:.0f} s); held out: {test_names}")
assert len(test_data) >= 2 and n_train_frames > 300

# %%
strip = np.concatenate(list(train_data[0].crops[40:52]), axis=1)
save_image(strip, run_dir, "04_lipsync_discriminator", "mouth_crops")
px.imshow(strip, title="12 consecutive mouth crops (with jitter margin) of the training clip").show()

# %% [markdown]
# ## 2 · Training the expert — Eq. (2) and Eq. (7)
# Per step: $B$ windows $i$ and an off-sync partner $j = i + s$ ($|s| \ge 1$; half of them within 3
# frames, the cases that decide whether an offset is found to the frame).
#
# * NeRF-3DTalker Eq. (2): $L_{lip} = \frac1B\sum_i -\log\frac{f_{lip_i}\cdot f_{a_i}}{\max(\|f_{lip_i}\|_2\|f_{a_i}\|_2,\epsilon)}$
#   on in-sync pairs, with Wav2Lip's $-\log(1-\cos)$ on off-sync pairs so the expert also learns to say *no*;
# * S3D-NeRF Eq. (7), margin $\eta = 0.5$: $\max(0, \eta - \cos(e_l, e_a^+) + \cos(e_l, e_a^-)) + \max(0, \eta - \cos(e_l^+, e_a) + \cos(e_l^-, e_a))$.
#
# Both embeddings end in a ReLU, so cosines lie in $[0, 1]$. The generator-side loss Eq. (8),
# `talklib.sync.losses.generator_sync_loss` ($1 - \cos(e_l^{gen}, e_{gt})$ with the expert frozen), is
# implemented and unit-tested, but **no NeRF in talklib is trained with it yet**: notebook 03's NeRF
# optimises photometric and depth losses only. A later issue adds Eq. (8) to the NeRF objective.
#
# The test clips are lit differently from the one training identity's clip (each clip has its own
# lighting, and it drifts), so an expert that learned the training lighting loses the mouth on them.
# Two things make it lighting-independent: the mouth encoder standardises each window per colour
# channel (`SyncConfig.input_norm`), and training relights every window pair at random — exposure,
# colour gain, gamma and a shading ramp from one side (`talklib.sync.train.relight`).

# %%
from talklib.sync.model import save_sync
from talklib.sync.train import train_sync

threads_before = torch.get_num_threads()
if sync_threads > 0 and dev.type == "cpu":
    torch.set_num_threads(sync_threads)
t = time.time()
model, hist = train_sync(train_data, cfg, steps=sync_steps, batch=sync_batch, lr=sync_lr, loss=sync_loss,
                         seed=seed, device=dev, augment=1.0)
timings["train_s"] = time.time() - t
model = model.cpu()
sync_ckpt = save_sync(model, f"{run_dir}/models/sync.pt")
print(f"trained {sync_steps} steps in {timings['train_s']:.1f} s; saved {sync_ckpt}")

# %%
k = 10
smooth = lambda x: np.convolve(x, np.ones(k) / k, mode="valid")  # noqa: E731
fig = go.Figure()
for name in ("cosine", "triplet", "acc", "pos_cos", "neg_cos"):
    fig.add_scatter(y=smooth(np.array(hist[name])), name=name)
fig.update_layout(title="expert training (moving average of 10 steps)", xaxis_title="step")
save_figure(fig, run_dir, "04_lipsync_discriminator", "training")
fig.show()
train_acc = float(np.mean(hist["acc"][-20:]))
assert train_acc > 0.7, train_acc  # in-batch, with off-sync partners as close as 1 frame

# %% [markdown]
# ## 3 · In-sync vs off-sync embeddings (held-out clips)
# For each window of the held-out clips: the cosine of its mouth embedding with the audio of the
# *same* window, and with the audio 3–15 frames away. A good expert separates the two histograms.

# %%
from talklib.sync.train import embed_clip

rng = np.random.default_rng(seed)
pos_cos, neg_cos, pts, kinds = [], [], [], []
for d in test_data:
    v, a = embed_clip(model, d)
    n = len(v)
    j = (np.arange(n) + rng.integers(3, 16, n) * rng.choice([-1, 1], n)) % n
    pos_cos += list((v * a).sum(1))
    neg_cos += list((v * a[j]).sum(1))
    pts += [v, a]
    kinds += ["mouth"] * n + ["audio"] * n
pos_cos, neg_cos = np.array(pos_cos), np.array(neg_cos)
fig = go.Figure()
fig.add_histogram(x=pos_cos, name="in sync", opacity=0.6, nbinsx=40)
fig.add_histogram(x=neg_cos, name="off by 3-15 frames", opacity=0.6, nbinsx=40)
fig.update_layout(barmode="overlay", title="cosine similarity of held-out windows", xaxis_title="cos(e_l, e_a)")
save_figure(fig, run_dir, "04_lipsync_discriminator", "cosine_histogram")
fig.show()
pair_acc = float(0.5 * ((pos_cos > 0.5).mean() + (neg_cos <= 0.5).mean()))
print(f"held-out pair accuracy at cos 0.5: {pair_acc:.3f}; mean cos in sync {pos_cos.mean():.3f}, off {neg_cos.mean():.3f}")
assert pos_cos.mean() > neg_cos.mean() + 0.2

# %%
P = np.concatenate(pts)
P = P - P.mean(0)
_, _, Vt = np.linalg.svd(P, full_matrices=False)
xy = P @ Vt[:2].T
fig = px.scatter(x=xy[:, 0], y=xy[:, 1], color=kinds, opacity=0.6,
                 title="mouth and audio embeddings of the held-out clips (PCA of the shared space)")
fig.show()

# %% [markdown]
# ## 4 · AV offset, LSE-D, LSE-C — `syncnet_python`'s definitions
# For video window $i$ and shift $k\in[-15, 15]$: $d_{ik} = \|v_i - a_{i+k}\|$ (audio zero-padded,
# unit-norm embeddings here); $\bar d_k = \mathrm{mean}_i\, d_{ik}$;
# **LSE-D** $= \min_k \bar d_k$, **LSE-C** $= \mathrm{median}_k \bar d_k - \min_k \bar d_k$,
# **AV offset** $= -\arg\min_k \bar d_k$ (syncnet_python's sign: audio delayed by $d$ frames reads $-d$).
# LSE-D and LSE-C take the *best* shift, so a merely shifted audio track leaves them almost unchanged —
# the offset is what catches it; we also report the distance and confidence *at offset 0*
# (`dist_at_0`, `conf_at_0`: the sync of the video as given).
# Below: the sweep for a held-out clip in sync and with its audio delayed by 5 frames.

# %%
from talklib.sync.crops import clip_mel
from talklib.sync.train import SyncClip, score_clip, shift_audio

clip0 = test_clips[0]
audio0, frames0 = clip0.audio(), clip0.frames("front")
s_sync = score_clip(model, test_data[0])
s_shift = score_clip(model, SyncClip(test_data[0].crops, clip_mel(shift_audio(audio0, 5), len(frames0))))
offsets = 15 - np.arange(31)
fig = go.Figure()
fig.add_scatter(x=offsets, y=s_sync.mean_dists, name=f"in sync: offset {s_sync.offset}")
fig.add_scatter(x=offsets, y=s_shift.mean_dists, name=f"audio +5 frames: offset {s_shift.offset}")
fig.update_layout(title=f"offset sweep, {clip0.name}", xaxis_title="AV offset (frames)", yaxis_title="mean distance")
save_figure(fig, run_dir, "04_lipsync_discriminator", "offset_sweep")
fig.show()
print(s_sync.as_dict(), s_shift.as_dict())
assert s_sync.offset == 0 and s_shift.offset == -5

# %% [markdown]
# ### Measured: recovering known offsets, and confidence with shuffled audio
# Every held-out clip (rendered test clips and held-out speech renders), its audio shifted by ±3, ±5, ±7, ±10 frames: how often is the AV offset exactly
# the shift? And LSE-C of each clip in sync vs with *shuffled* audio (its audio cut into 0.4 s pieces
# put in a random order, so speech is still speech but no longer matches the mouth).
# The target counts clips of at least `sync_eval_min_seconds`: a 10-frame shift leaves only 3/4 of a
# 2.4 s clip overlapping its audio, and the shortest speech-only clips are that short; the rate over
# all clips is reported too.
#
# Without the lighting measures of section 2 (and with batches of 32), two of the seeds 0–4 recovered
# only 67 % and 81 % of the offsets: on their testB clip, lit unlike anything in training, the
# expert's distance curve was flat. With them, batches of 64 and half of the off-sync partners within
# 3 frames (within 6, one seed was one frame off on one clip), every seed recovers every offset on
# the long clips on the machine that measured it. On another AMD EPYC machine (2026-12-06) seed 3's expert
# was one frame off on 4 of the 8 shifts of one clip (exact recovery 0.875): which frame of a flat
# stretch of the distance curve wins depends on the float rounding. So the bars are: within ±1 frame
# (40 ms) on ≥ 95 % of the cases, exactly on ≥ 75 %, and the confidence ratio ≥ 2.

# %%
shifts = [s * sign for s in (int(x) for x in sync_eval_shifts.split(",")) for sign in (1, -1)]
rows = []
for name, d, audio in zip(test_names, test_data, test_audio):
    for sh in shifts:
        sc = score_clip(model, SyncClip(d.crops, clip_mel(shift_audio(audio, sh), d.n_frames)))
        rows.append({"clip": name, "shift": sh, "found": sc.offset, "ok": sc.offset == -sh,
                     "long": d.n_frames >= sync_eval_min_seconds * 25})
recovery_all = float(np.mean([r["ok"] for r in rows]))
long_rows = [r for r in rows if r["long"]]
recovery = float(np.mean([r["ok"] for r in long_rows]))
recovery_1 = float(np.mean([abs(r["found"] + r["shift"]) <= 1 for r in long_rows]))   # within one frame
print(f"offset recovered exactly in {recovery:.1%} of {len(long_rows)} cases on clips >= {sync_eval_min_seconds} s "
      f"({recovery_all:.1%} of {len(rows)} on all held-out clips); within ±1 frame in {recovery_1:.1%}")
print([(r["clip"], r["shift"], r["found"]) for r in rows if not r["ok"]])

lse_c_sync, lse_c_shuf = [], []
for d, audio in zip(test_data, test_audio):
    piece = 10 * 640
    chunks = [audio[i:i + piece] for i in range(0, len(audio), piece)]
    order = np.random.default_rng(seed).permutation(len(chunks))
    shuffled = np.concatenate([chunks[i] for i in order])
    lse_c_sync.append(score_clip(model, d).lse_c)
    lse_c_shuf.append(score_clip(model, SyncClip(d.crops, clip_mel(shuffled, d.n_frames))).lse_c)
ratio = float(np.mean(lse_c_sync) / max(np.mean(lse_c_shuf), 1e-9))
print(f"LSE-C in sync {np.mean(lse_c_sync):.3f} vs shuffled audio {np.mean(lse_c_shuf):.3f}: ratio {ratio:.1f}")
assert recovery_1 >= 0.95 and recovery >= 0.75, (recovery_1, recovery)
assert ratio >= 2.0, ratio

# %% [markdown]
# ## 5 · The whole suite: ground truth vs audio shifted by 5 frames vs blurred
# `talklib.metrics.suite.evaluate_videos` is what `python -m talklib eval --pred VIDEO --ref VIDEO`
# runs. The reference is the held-out clip's PNG frames; the three predictions are mp4 files written by
# `talklib.data.video.write_video` (H.264 + AAC), so the ground truth itself carries a little
# compression loss:
#
# * **GT**: the clip re-encoded, its own audio;
# * **shifted**: the same frames, the audio delayed by 5 frames (sync metrics must drop, image metrics not move);
# * **blurred**: Gaussian blur $\sigma = 1.5$ px (image metrics, sharpness and landmarks must get worse;
#   the lip-sync expert must still find offset 0 with a confidence of the same order as on the sharp video).
#
# LPIPS needs weights we do not have: it is reported as unavailable (None), never replaced.

# %% [markdown]
# AU accuracy needs AU labels for the prediction. `python -m talklib eval` detects four AUs from
# landmarks (`talklib.metrics.action_units.lip_aus_from_landmarks`: AU20, AU25, AU26, AU45) on both
# videos and counts agreement. First, how well that detector agrees with the synthetic speaker's
# ground-truth AU labels on the held-out clips, with its four thresholds fitted on the training clip
# (`calibrate_lip_aus`):

# %%
from talklib.data.dataset import AU_NAMES
from talklib.metrics.action_units import LANDMARK_AUS, au_accuracy, calibrate_lip_aus, lip_aus_from_landmarks

au_cols = [AU_NAMES.index(a) for a in LANDMARK_AUS]
train_clip = corpus.clips(split="train")[0]
au_thresholds = calibrate_lip_aus(train_clip.landmarks2d("front"), train_clip.au_labels()[:, au_cols])
print("thresholds fitted on", train_clip.name, {k: round(v, 3) for k, v in au_thresholds.items()})
au_detector_acc = float(np.mean([
    au_accuracy(lip_aus_from_landmarks(c.landmarks2d("front"), thresholds=au_thresholds), c.au_labels()[:, au_cols])
    for c in test_clips]))
print(f"landmark AU detector vs ground-truth labels ({', '.join(LANDMARK_AUS)}), held-out clips: {au_detector_acc:.3f}")
assert au_detector_acc > 0.8

# %%
from scipy.ndimage import gaussian_filter

from talklib.data.video import read_video, read_video_audio, write_video
from talklib.metrics.suite import evaluate_videos, video_landmarks

t = time.time()
variants = {
    "GT": (frames0, audio0),
    "shifted": (frames0, shift_audio(audio0, 5)),
    "blurred": (np.stack([gaussian_filter(f, sigma=(1.5, 1.5, 0)) for f in frames0]), audio0),
}
paths = {}
for name, (fr, au) in variants.items():
    paths[name] = write_video(video_path(run_dir, "04_lipsync_discriminator", f"{clip0.name}_{name}"), fr, 25, au)
ref_lm = video_landmarks(frames0, "reference")
results = {}
for name, p in paths.items():
    pred, fps = read_video(p)
    results[name] = evaluate_videos(pred, frames0, fps, read_video_audio(p), sync_model=model,
                                    cpbd_every=eval_cpbd_every, pred_name=name, ref_landmarks=ref_lm)
timings["suite_s"] = time.time() - t

# %%
keys = ["psnr", "ssim", "lpips", "m_lmd", "lmd_79", "f_lmd", "cpbd", "blinks_per_s", "au_acc", "d_rot", "d_pos",
        "av_offset", "lse_d", "lse_c", "dist_at_0", "conf_at_0"]
better = {"psnr": "↑", "ssim": "↑", "lpips": "↓", "m_lmd": "↓", "lmd_79": "↓", "f_lmd": "↓", "cpbd": "↑",
          "blinks_per_s": f"≈ {results['GT']['blinks_per_s_ref']:.2f} (ref)", "au_acc": "↑", "d_rot": "↓",
          "d_pos": "↓", "av_offset": "0", "lse_d": "↓", "lse_c": "↑", "dist_at_0": "↓", "conf_at_0": "↑"}
fmt = lambda v: "None" if v is None else (f"{v:d}" if isinstance(v, int) else f"{v:.4g}")  # noqa: E731
header = "| metric | better | " + " | ".join(results) + " |"
lines = [header, "|" + " --- |" * (len(results) + 2)]
lines += [f"| {k} | {better[k]} | " + " | ".join(fmt(results[n][k]) for n in results) + " |" for k in keys]
table = "\n".join(lines)
from IPython.display import Markdown, display  # noqa: E402

display(Markdown(table))

# %% [markdown]
# Checks — every metric moves the way it should:

# %%
G, S, B = results["GT"], results["shifted"], results["blurred"]
assert G["lpips"] is None  # no weights: unavailable, not replaced
# the re-encoded ground truth is close to the reference frames (H.264 loss only)
assert G["psnr"] > 28 and G["ssim"] > 0.9 and G["m_lmd"] < 1.0, (G["psnr"], G["ssim"], G["m_lmd"])
# shifting the audio must leave the video stream alone: the decoded frames are the GT's, frame for frame
# (so image and landmark metrics cannot move), while the sync metrics get worse
frames_gt, frames_shifted = read_video(paths["GT"])[0], read_video(paths["shifted"])[0]
assert frames_shifted.shape == frames_gt.shape and np.array_equal(frames_shifted, frames_gt)
assert G["av_offset"] == 0 and S["av_offset"] == -5
assert S["dist_at_0"] > G["dist_at_0"] and S["conf_at_0"] < G["conf_at_0"]
assert abs(S["lse_c"] - G["lse_c"]) < 0.25 * G["lse_c"]  # best-shift metrics: nearly shift-invariant
# blurring: pixels, structure, sharpness and landmarks worse; sync not better
assert B["psnr"] < G["psnr"] and B["ssim"] < G["ssim"] and B["cpbd"] < G["cpbd"]
assert B["m_lmd"] > G["m_lmd"] and B["lmd_79"] > G["lmd_79"] and B["f_lmd"] > G["f_lmd"]
assert B["au_acc"] <= G["au_acc"] and B["d_rot"] > G["d_rot"] and B["d_pos"] > G["d_pos"]
# still in sync, and the expert still reads the blurred mouth. (No upper bound: the lighting-normalised
# expert can be *more* confident on the blurred copy — seed 3: LSE-C 0.33 blurred vs 0.23 sharp — since
# blur also removes pixel noise; sharpness is what CPBD measures, above, not what the sync expert is for.)
assert B["av_offset"] == 0 and B["lse_c"] > 0.5 * G["lse_c"], (B["lse_c"], G["lse_c"])
# ground truth agrees with itself: the four thresholded AUs flip on frames whose intensity sits at a
# threshold when H.264 moves a landmark a little — seeds 0-4: agreement 0.85-0.98, so the bar is 0.75
assert G["au_acc"] >= 0.75 and abs(G["blinks_per_s"] - G["blinks_per_s_ref"]) < 0.2  # H.264 noise only
print("all checks passed")

# %% [markdown]
# ## 6 · Scoring notebook 03's talking head
# Notebook 03 drove its NeRF with testA's audio and wrote six videos of the same frames: the ground
# truth; the NeRF under testA's cameras and lighting given the true expression (**truth**), the
# expression predicted from the audio (**audio**) and the mean expression (**no audio**); and what
# `python -m talklib render` gives — the recorded camera and the training clip's lighting — driven by the
# audio (**render_audio**) or silent (**render_no_audio**). Here the expert scores them against the audio:
# AV offset, LSE-D, LSE-C and the confidence at offset 0 (the video as given), next to M-LMD against the
# ground truth. (Run alone, without notebook 03 in the same run folder, this section has nothing to score
# and says so.)
#
# Asserted on `render`'s own output: clearly more confident (LSE-C) than the silent head. Recorded only, for the testA-lit renders: on seeds 2-4 testA's light lies outside
# what the small preset's field extrapolates to (notebook 03, 8.1), and on seed 3 those renders are
# not a face the expert can judge (offset 12, LSE-C 0.072 against the silent one's 0.078).

# %%
nb03_dir = Path(run_dir) / "videos" / "03_conditional_nerf"
nb03_files = {"ground_truth": "testA_ground_truth", "truth": "testA_truth", "audio": "testA_audio",
              "no_audio": "testA_no_audio", "render_audio": "render_audio", "render_no_audio": "render_no_audio"}
nb03_scores = {}
if all((nb03_dir / f"{f}.mp4").is_file() for f in nb03_files.values()):
    gt03, fps03 = read_video(nb03_dir / "testA_ground_truth.mp4")
    lm03 = video_landmarks(gt03, "notebook 03's testA ground truth")
    for n, f in nb03_files.items():
        p = nb03_dir / f"{f}.mp4"
        fr, fps = read_video(p)
        nb03_scores[n] = evaluate_videos(fr, gt03, fps, read_video_audio(p), sync_model=model, ref_landmarks=lm03,
                                         cpbd_every=len(fr), pred_name=n)   # (CPBD, not read here, on one frame)
    cols = ("m_lmd", "av_offset", "lse_d", "lse_c", "dist_at_0", "conf_at_0")
    lines = ["| video | " + " | ".join(cols) + " |", "|" + " --- |" * (len(cols) + 1)]
    lines += [f"| {n} | " + " | ".join(fmt(nb03_scores[n][k]) for k in cols) + " |" for n in nb03_files]
    display(Markdown("\n".join(lines)))
    A, N = nb03_scores["render_audio"], nb03_scores["render_no_audio"]
    assert nb03_scores["ground_truth"]["av_offset"] == 0
    # render's audio-driven head follows its audio far more confidently than the silent head does (seeds
    # 0-4: see benchmarks/small_preset_seeds.md). Its best offset is recorded, not asserted: 0 on most
    # seeds, 7 frames on seed 2, whose expert is barely confident on this head (LSE-C 0.10 against 0.45
    # for the ground truth), so the peak of its offset curve is not reliable there
    print(f"render: audio-driven offset {A['av_offset']}, LSE-C {A['lse_c']:.3f} vs silent {N['lse_c']:.3f}")
    assert A["lse_c"] > 2 * N["lse_c"], (A["av_offset"], A["lse_c"], N["lse_c"])
else:
    print(f"no videos of notebook 03 in {nb03_dir}: run notebook 03 in this run folder to score them here")

# %% [markdown]
# **Reading the table.** M-LMD hardly separates the NeRF videos at this size (64² renders
# upscaled): the NeRF's own blur dominates the landmark error. The expert does: it finds `render`'s
# audio-driven head in sync with its audio and the silent head out of sync — so the audio → expression
# network of notebook 03 does drive the lips. Under testA's own lighting the same holds on the seeds
# whose testA light the field extrapolates to (0, 1) and not on those it cannot (2-4).

# %% [markdown]
# The same from the command line (the checkpoint this notebook saved is the `--sync-model`):
#
# ```
# python -m talklib eval --pred runs/.../videos/04_lipsync_discriminator/<clip>_shifted.mp4 \
#     --ref data/synthetic/small/clips/<clip>/ori_imgs --sync-model runs/.../models/sync.pt --out metrics.json
# ```

# %%
torch.set_num_threads(threads_before)
timings["total_s"] = time.time() - T0
metrics = {
    "train_frames": n_train_frames,
    "train_acc": round(train_acc, 4),
    "heldout_pair_acc": round(pair_acc, 4),
    "offset_recovery": recovery,
    "offset_recovery_within1": recovery_1,
    "offset_cases": len(long_rows),
    "offset_recovery_all": recovery_all,
    "offset_cases_all": len(rows),
    "lse_c_sync": round(float(np.mean(lse_c_sync)), 4),
    "lse_c_shuffled": round(float(np.mean(lse_c_shuf)), 4),
    "lse_c_ratio": round(ratio, 3),
    "au_detector_acc": round(au_detector_acc, 4),
}
for name, r in results.items():
    for k in keys:
        v = r[k]
        metrics[f"{name}_{k}"] = v if v is None or isinstance(v, int) else round(float(v), 4)
for name, r in nb03_scores.items():   # notebook 03's testA videos, when they were there to score
    for k in ("m_lmd", "av_offset", "lse_d", "lse_c", "conf_at_0"):
        v = r[k]
        metrics[f"nb03_{name}_{k}"] = v if v is None or isinstance(v, int) else round(float(v), 4)
write_metrics(run_dir, "04_lipsync_discriminator", metrics, timings=timings)

# %%
# NBVAL_IGNORE_OUTPUT
print({k: round(v, 1) for k, v in timings.items()})
