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
# # 05 · The audio-conditioned NeRF: which audio feature drives the field best
#
# The disentangled-audio NeRF (`../shared/papers/disentangled-audio-nerf-speechsplit.md`) conditions the
# field on SpeechSplit's codes instead of DeepSpeech features,
#
# $$F_\theta : (\mathbf a_c, \mathbf a_r, \mathbf a_p, \mathbf d, \mathbf x) \rightarrow (\mathbf c, \sigma) \qquad (7)$$
#
# "as in AD-NeRF", and its **Table 1** compares audio embeddings: rhythm, DeepSpeech, pitch, content, all
# three (theirs), DeepSpeech + SpeechSplit. DFA-NeRF's **Table 5** does the same for MFCC, DeepSpeech and
# its contrastive feature $f_a$. Here every row is trained and scored on the synthetic speaker, whose
# ground truth we know.
#
# What drives the field, and where it lives in talklib:
# - the features: notebook 02 wrote them into each clip folder (`aud_ssplit`, `aud_phon_win`, `aud_sync`,
#   `aud_mfcc_win`) together with the networks that made them (`aud_extractors.pt`);
# - the **conditions stage** (`talklib.condition`): a condition is named and sized once
#   (`talklib.condition.spec`), packed the same way for training and rendering (`condition.inputs.pack`),
#   and turned into the field's code by AD-NeRF's audio net and temporal attention
#   (`condition.audionet.Conditioner`);
# - the field and renderer of notebook 03 (`talklib.nerf`), unchanged.
#
# **Stand-ins, said plainly.** DeepSpeech is talklib's DeepSpeech-like recogniser of notebook 02 (no
# pretrained DeepSpeech here); SyncNet is notebook 04's lip-sync expert (LSE-C / LSE-D); the paper's
# Obama video is the synthetic speaker. Every row also gets the SH lighting `f_illu` (the synthetic
# speaker's lighting drifts; audio cannot know it), and head pose enters through the cameras, AD-NeRF
# style. **Budget:** every row starts from notebook 03's field (the same trained head) and gets the same
# `cond_steps` steps. At the small preset that is 100 steps, far too few for an audio net to learn the
# mouth (a measured finding: sync only appears after several hundred steps), so read the small table
# as a smoke test of the method; `benchmarks/RESULTS.md` ("Notebook 05 with 800 steps a row") has the
# same notebook run with `-p cond_steps=800` on the same CPU, which is the measurement to compare.

# %% tags=["parameters"]
run_dir = "runs/dev"
data_dir = "data/synthetic/small"
preset = "small"
seed = 0
device = "auto"
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
nerf_exp_dims = 12
nerf_depth_weight = 1.0
nerf_view_dir = False
nerf_box_scale = 2.0
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
from IPython.display import Markdown, Video, display
from PIL import Image
from tqdm.auto import tqdm

from talklib.condition.audionet import ConditionConfig
from talklib.condition.inputs import config_for
from talklib.condition.spec import CONDITIONS
from talklib.nerf.scene import from_clip, with_conditions
from talklib.nerf.train import evaluate, fit, load_checkpoint, model_for_scene, model_settings, warm_start
from talklib.outputs import save_figure, save_image, video_path, write_metrics
from talklib.speaker.build import ensure_corpus

NB = "05_audio_conditioned_nerf"
timings, t_start = {}, time.perf_counter()
if dev.type == "cpu":
    torch.set_num_threads(2)

# %% [markdown]
# ## 5.1 The conditions, named once
# `talklib.condition.spec` lists every condition a field can take. A user's list is parsed into parts
# in one fixed order — 3DMM parts, the audio parts (one window, channel after channel), `f_illu` last —
# and any unknown name is refused with the list of valid ones.

# %%
pd.DataFrame([{"name": c.name, "source": c.source, "numbers": c.dim,
               "from": f"aud_{c.feature}.npy" if c.source == "audio" else "ground truth / fitted 3DMM",
               "meaning": c.meaning} for c in CONDITIONS.values()])

# %% [markdown]
# The rows of both tables. Each names its audio parts; `f_illu` is added to every row.

# %%
ROWS = {   # row -> audio conditions (Table 1 of the disentangled-audio NeRF, then Table 5 of DFA-NeRF)
    "no audio (lighting only)": "",
    "SpeechSplit rhythm": "a_rhythm",
    "DeepSpeech-like": "deepspeech",
    "SpeechSplit pitch": "a_pitch",
    "SpeechSplit content": "a_content",
    "SpeechSplit (all three, Eq. 7)": "a_content,a_rhythm,a_pitch",
    "DeepSpeech-like + SpeechSplit": "deepspeech,a_content,a_rhythm,a_pitch",
    "MFCC": "mfcc",
    "contrastive f_a (DFA-NeRF)": "f_a",
}
corpus = ensure_corpus(data_dir, preset=preset, seed=seed)
clip, test_clip = corpus.clip(split="train"), corpus.clip(split="testA")


def config_of(audio: str, c=clip) -> ConditionConfig:
    return config_for(c, ",".join(x for x in (audio, "f_illu") if x), audio_dim=cond_audio_dim, frames=cond_frames)


cfg_eq7 = config_of(ROWS["SpeechSplit (all three, Eq. 7)"])
print("Eq. (7) row:", cfg_eq7.conditions, "-> stored per frame:", cfg_eq7.raw_layout(), "-> field sees",
      cfg_eq7.out_dim, "numbers")

# %% [markdown]
# ## 5.2 One frame's audio window
# Each audio part becomes a window of 16 steps at 50 Hz centred on its frame (AD-NeRF's `aud.npy`
# layout); SpeechSplit's per-frame codes are repeated onto those steps. The frame stores the windows of
# frames $i-4 \dots i+3$, which the audio net turns into eight codes and the attention into one.

# %%
base = from_clip(clip, size=nerf_size, conditions="f_illu", depth=nerf_depth_weight > 0,
                 box_scale=nerf_box_scale).to(dev)
scene7 = with_conditions(base, clip, cfg_eq7)
k = cfg_eq7.frames * 16 * cfg_eq7.audio_channels
frame = int(base.train_idx[len(base.train_idx) // 2])
win = scene7.cond[frame, :k].reshape(cfg_eq7.frames, 16, cfg_eq7.audio_channels)[cfg_eq7.frames // 2].cpu().numpy()
fig = px.imshow(win.T, aspect="auto", labels={"x": "50 Hz step", "y": "channel (a_c 0-15 | a_r 16-17 | a_p 18-81)"},
                title=f"frame {frame}: its audio window (SpeechSplit codes)")
fig.show()
save_figure(fig, run_dir, NB, "audio_window")
assert scene7.cond.shape == (base.images.shape[0], sum(cfg_eq7.raw_layout().values()))

# %% [markdown]
# ## 5.3 Training every row with the same budget
# Each row's field starts from notebook 03's trained head (`warm_start` copies every weight whose shape
# fits: the tri-planes, density and colour nets, H_u; the condition MLP's input layer and the audio
# network start fresh) and is trained for `cond_steps` steps with the photometric loss Eq. (6) and the
# 3DMM depth prior of notebook 03. The audio moves a few per cent of the pixels, so, as AD-NeRF samples
# most of its rays inside the face box, of every `cond_focus_every` steps all but one render only the
# lower face (`lower_face_box`, drawn below; `fit(focus=...)` renders that window with the principal point
# shifted). Checkpoints go to `checkpoints/05_<row>/`, each renderable from a wav with
# `python -m talklib render`.

# %%
nb03 = Path(run_dir) / "checkpoints" / "nerf03"
assert (nb03 / "nerf.pt").is_file(), f"notebook 03's field is missing in {nb03}: run notebook 03 first"
head = load_checkpoint(nb03)["state"]
sync_path = Path(run_dir) / "models" / "sync.pt"
assert sync_path.is_file(), f"notebook 04's lip-sync expert is missing at {sync_path}: run notebook 04 first"

from talklib.condition.extract import BUNDLE_NAME, load_bundle, subset  # noqa: E402
from talklib.nerf.talk import render_extra  # noqa: E402
from talklib.nerf.train import save_checkpoint  # noqa: E402

from talklib.nerf.scene import lower_face_box  # noqa: E402

bundle = load_bundle(clip.path / BUNDLE_NAME)
box = lower_face_box(clip, nerf_size, nerf_upsample)
y0, y1, x0, x1 = box
fig = px.imshow(base.images[frame].cpu().numpy(), title=f"the lower-face window the audio rows train on: rows {y0}-{y1}, "
                f"columns {x0}-{x1}")
fig.add_shape(type="rect", x0=x0 - 0.5, x1=x1 - 0.5, y0=y0 - 0.5, y1=y1 - 0.5, line=dict(color="yellow"))
fig.show()
models, histories, fit_s, fresh = {}, {}, {}, {}
settings = model_settings(globals())
for name, audio in tqdm(ROWS.items(), desc="rows"):
    ccfg = config_of(audio)
    scene = with_conditions(base, clip, ccfg)
    torch.manual_seed(seed)
    model = model_for_scene(scene, **settings).to(dev)
    fresh[name] = warm_start(model, head)
    t0 = time.perf_counter()
    histories[name] = fit(model, scene, steps=cond_steps, lr=nerf_lr, occ_every=50, depth_weight=nerf_depth_weight,
                          seed=seed, progress=False, focus=box, focus_every=cond_focus_every)
    fit_s[name] = time.perf_counter() - t0
    models[name] = model.eval()
    slug = "".join(ch if ch.isalnum() else "_" for ch in name.split(" (")[0].lower()).strip("_")
    default = scene.cond[torch.as_tensor(scene.train_idx).to(dev)].mean(0)
    feats = subset(bundle, ccfg.parts, str(clip.path)) if audio else None
    if audio:   # renderable from a wav: python -m talklib render --checkpoint RUN/checkpoints/05_<row> ...
        save_checkpoint(Path(run_dir) / "checkpoints" / f"05_{slug}" / "nerf.pt", model,
                        extra=render_extra(scene, None, None, default, features=feats), step=cond_steps,
                        history=histories[name])
timings["fit_s"] = sum(fit_s.values())
print({n: f"{h[-1]['psnr']:.1f} dB, {fit_s[n]:.0f} s" for n, h in histories.items()})
print("left at their initialisation in the Eq. (7) row (besides the audio net):",
      [k for k in fresh["SpeechSplit (all three, Eq. 7)"] if not k.startswith("conditioner")])

# %%
fig = go.Figure()
for name, h in histories.items():
    h = [r for r in h if r["whole_frame"]]
    fig.add_scatter(x=[r["step"] for r in h], y=[r["psnr"] for r in h], name=name, mode="lines")
fig.update_layout(title="training-frame PSNR per row, whole-frame steps (same start, same steps)", xaxis_title="step",
                  yaxis_title="PSNR (dB)", height=380)
fig.show()
save_figure(fig, run_dir, NB, "training_curves")

# %% [markdown]
# ## 5.4 Render from audio alone, exactly as in training
# `render` recomputes the features from a wav with the networks in the checkpoint
# (`talklib.condition.extract.features_from_audio`) and packs them with the same function as training.
# Check it on testA: the conditions computed from its audio match those packed from the features
# notebook 02 wrote into its folder.

# %%
from talklib.condition.extract import features_from_audio  # noqa: E402
from talklib.condition.inputs import audio_window, pack  # noqa: E402

cfg_t = config_of(ROWS["DeepSpeech-like + SpeechSplit"], test_clip)
feats = features_from_audio(test_clip.audio(), cfg_t.parts, bundle, n_frames=test_clip.n_frames)
from_wav = audio_window(feats, cfg_t.parts)
from_folder = with_conditions(from_clip(test_clip, size=nerf_size, conditions="f_illu"), test_clip, cfg_t).cond
k = cfg_t.frames * 16 * cfg_t.audio_channels
packed = pack(cfg_t, {"f_illu": from_folder[:, k:].numpy()}, from_wav)
gap = float(np.abs(packed - from_folder.numpy()).max())
print(f"largest difference, wav -> conditions vs the stored features: {gap:.2e}")
assert gap < 1e-3, gap

# %% [markdown]
# ## 5.5 Scored on unseen sentences (testA)
# Each row renders testA — sentences it never heard, the head poses and lighting of that clip — from
# testA's own audio features (its first `cond_score_frames` frames: 4 s at the small preset, all of it at
# the full), and the suite of notebook 04 scores it against the ground-truth video:
# PSNR and SSIM, mouth landmark distance M-LMD, LSE-C / LSE-D with notebook 04's expert, the PSNR of
# the eye region (the paper's patch view of eyes and lips), and blinks per second against the truth's
# (the paper's qualitative claim that DeepSpeech gives "fidgety blinks"). The reference row is notebook
# 03's field given testA's true 3DMM expression: an upper bound for what audio could reach.

# %%
from talklib.metrics.blinks import eye_box  # noqa: E402
from talklib.metrics.image import psnr  # noqa: E402
from talklib.metrics.suite import evaluate_videos, video_landmarks  # noqa: E402
from talklib.nerf.train import model_from_checkpoint  # noqa: E402
from talklib.sync.model import load_sync  # noqa: E402

expert = load_sync(sync_path)
test_base = from_clip(test_clip, size=nerf_size, conditions="f_illu").to(dev)
n_test = test_base.images.shape[0] if cond_score_frames == 0 else min(test_base.images.shape[0], cond_score_frames)
audio_test = test_clip.audio()[: n_test * 640]


def upscale(frames):
    return np.stack([np.asarray(Image.fromarray(f).resize((nerf_score_size,) * 2, Image.BICUBIC)) for f in frames])


def to_u8(x):
    return (np.clip(x, 0, 1) * 255 + 0.5).astype(np.uint8)


gt = to_u8(test_base.images[:n_test].cpu().numpy())
gt_up = upscale(gt)
lm_gt = video_landmarks(gt_up, "testA ground truth")
r0, r1, c0, c1 = (v * nerf_size // nerf_score_size for v in eye_box(lm_gt.xy[lm_gt.found]))
renders = {}
ref_model = model_from_checkpoint(load_checkpoint(nb03)).to(dev).eval()
ref_scene = with_conditions(test_base, test_clip, f"f_exp:{ref_model.cfg.cond_parts['f_exp']},f_illu")
renders["3DMM expression, true (notebook 03, upper reference)"] = to_u8(
    evaluate(ref_model, ref_scene, np.arange(n_test)).cpu().numpy())
for name, audio in ROWS.items():
    sc = with_conditions(test_base, test_clip, config_of(audio, test_clip))
    renders[name] = to_u8(evaluate(models[name], sc, np.arange(n_test)).cpu().numpy())

t0 = time.perf_counter()
scores = {}
for name, fr in tqdm(renders.items(), desc="score"):
    r = evaluate_videos(upscale(fr), gt_up, 25, audio_test, sync_model=expert, ref_landmarks=lm_gt,
                        cpbd_every=n_test, pred_name=name)          # (CPBD, not reported here, on one frame)
    r["psnr"] = psnr(fr, gt)          # at the fitted size, not the upscaled one
    r["eye_psnr"] = psnr(fr[:, r0:r1, c0:c1], gt[:, r0:r1, c0:c1])
    scores[name] = r
truth = evaluate_videos(gt_up, gt_up, 25, audio_test, sync_model=expert, ref_landmarks=lm_gt, cpbd_every=n_test)
timings["score_s"] = time.perf_counter() - t0

# %%
cols = {"psnr": "PSNR ↑", "ssim": "SSIM ↑", "eye_psnr": "eye PSNR ↑", "m_lmd": "M-LMD ↓", "lse_c": "LSE-C ↑",
        "lse_d": "LSE-D ↓", "av_offset": "AV offset", "blinks_per_s": "blinks/s"}
table = pd.DataFrame({name: {v: r[k] for k, v in cols.items()} for name, r in scores.items()}).T
table.loc["ground truth"] = pd.Series({cols["lse_c"]: truth["lse_c"], cols["lse_d"]: truth["lse_d"],
                             cols["av_offset"]: truth["av_offset"], cols["blinks_per_s"]: truth["blinks_per_s"]})
table.round(3)

# %% [markdown]
# ## 5.6 Their numbers beside ours, with a verdict per claim
# The papers' numbers come from an Obama video (Table 1) and LRS2/HDTF (Table 5) with the real DeepSpeech
# and SyncNet; ours from the synthetic speaker with the stand-ins above, so compare orderings, not values.

# %%
from talklib.scorecard.papers import DFA_T5 as T5, DFA_T5_TRUTH_SYNC, SPEECHSPLIT_T1 as T1  # noqa: E402  (one copy)

display(Markdown("**Table 1 (disentangled-audio NeRF)**\n\n| embedding | paper PSNR | paper SyncNet | our PSNR | "
                 "our LSE-C | our M-LMD |\n|---|---|---|---|---|---|\n" + "\n".join(
                     f"| {n} | {p:.2f} | {s:.3f} | {scores[n]['psnr']:.2f} | {scores[n]['lse_c']:.3f} | "
                     f"{scores[n]['m_lmd']:.3f} |" for n, (p, s) in T1.items())))
display(Markdown("**Table 5 (DFA-NeRF)**\n\n| feature | paper LMD | paper Sync_conf | our M-LMD | our LSE-C |\n"
                 "|---|---|---|---|---|\n" + "\n".join(
                     f"| {n} | {l:.2f} | {c:.1f} | {scores[n]['m_lmd']:.3f} | {scores[n]['lse_c']:.3f} |"
                     for n, (l, c) in T5.items())
                 + f"\n| ground truth | 0.00 | {DFA_T5_TRUTH_SYNC} | 0 | {truth['lse_c']:.3f} |"))

# %%
S = scores
E7, DS, BOTH = "SpeechSplit (all three, Eq. 7)", "DeepSpeech-like", "DeepSpeech-like + SpeechSplit"
claims = [
    ("T1: SpeechSplit (Eq. 7) beats DeepSpeech in PSNR", S[E7]["psnr"] > S[DS]["psnr"]),
    ("T1: SpeechSplit (Eq. 7) beats DeepSpeech in sync", S[E7]["lse_c"] > S[DS]["lse_c"]),
    ("T1: alone, quality rises rhythm < pitch < content",
     S["SpeechSplit rhythm"]["psnr"] < S["SpeechSplit pitch"]["psnr"] < S["SpeechSplit content"]["psnr"]),
    ("T1: DeepSpeech + SpeechSplit has the best PSNR of the audio rows",
     S[BOTH]["psnr"] >= max(S[n]["psnr"] for n in T1)),
    ("T5: f_a beats MFCC and DeepSpeech in LMD", S["contrastive f_a (DFA-NeRF)"]["m_lmd"] < min(S["MFCC"]["m_lmd"], S[DS]["m_lmd"])),
    ("T5: f_a beats MFCC and DeepSpeech in sync", S["contrastive f_a (DFA-NeRF)"]["lse_c"] > max(S["MFCC"]["lse_c"], S[DS]["lse_c"])),
    ("every audio row is better synced than no audio",
     all(S[n]["lse_c"] > S["no audio (lighting only)"]["lse_c"] for n in ROWS if ROWS[n])),
]
verdicts = pd.DataFrame([{"claim": c, "here": "holds" if ok else "does not hold here"} for c, ok in claims])
verdicts

# %% [markdown]
# These verdicts are measured, not asserted: with one seed of the small preset they are a finding for
# this run, and several of them differ from the papers. Only what holds by construction is asserted
# below (every render is a face mediapipe finds; the conditions from a wav are those of training, 5.4).

# %%
assert set(scores) == set(ROWS) | {"3DMM expression, true (notebook 03, upper reference)"}
assert all(np.isfinite(r["psnr"]) and r["lse_c"] is not None for r in scores.values())

# %%
metric_keys = ["psnr", "eye_psnr", "m_lmd", "lse_c"]
fig = go.Figure()
for k in metric_keys:
    fig.add_bar(name=cols[k], x=list(scores), y=[scores[n][k] for n in scores], visible=(k == "psnr"))
fig.update_layout(title="per-row metrics on testA (pick one)", height=420, xaxis_tickangle=-30,
                  updatemenus=[dict(buttons=[dict(label=cols[k], method="update",
                                                   args=[{"visible": [j == i for j in range(len(metric_keys))]}])
                                             for i, k in enumerate(metric_keys)], x=1.0, y=1.15)])
fig.show()
save_figure(fig, run_dir, NB, "row_metrics")

# %% [markdown]
# ## 5.7 Where the error sits: per-pixel error heat maps (the paper's Fig. 2)
# $|I - \hat I|$ averaged over colour, for one testA frame, rows side by side.

# %%
f = n_test // 2
heat_rows = ["3DMM expression, true (notebook 03, upper reference)", DS, E7, BOTH, "contrastive f_a (DFA-NeRF)"]
err = np.stack([np.abs(renders[n][f].astype(np.float32) - gt[f].astype(np.float32)).mean(-1) / 255 for n in heat_rows])
fig = px.imshow(err, facet_col=0, color_continuous_scale="inferno", zmin=0, zmax=0.3,
                title=f"testA frame {f}: per-pixel error")
for i, n in enumerate(heat_rows):
    fig.layout.annotations[i].text = n.split(" (")[0]
fig.show()
save_figure(fig, run_dir, NB, "error_heatmaps")

# %% [markdown]
# ## 5.8 Side by side: ground truth | DeepSpeech-like | SpeechSplit (Eq. 7)

# %%
from talklib.data.video import write_video  # noqa: E402

side = np.concatenate([gt, renders[DS], renders[E7]], axis=2)
out = write_video(video_path(run_dir, NB, "testA_side_by_side"), side, fps=25, audio=audio_test)
save_image(side[f], run_dir, NB, "side_by_side_frame")
display(Video(str(out), embed=True, width=3 * 128))

# %%
timings["total_s"] = time.perf_counter() - t_start
write_metrics(run_dir, NB, {
    **{f"{k}/{n}": (None if r[k] is None else round(float(r[k]), 4)) for n, r in scores.items()
       for k in ("psnr", "ssim", "eye_psnr", "m_lmd", "lse_c", "lse_d", "av_offset", "blinks_per_s")},
    "gt_lse_c": round(float(truth["lse_c"]), 4), "gt_blinks_per_s": round(float(truth["blinks_per_s"]), 4),
    **{f"claim/{c}": bool(ok) for c, ok in claims}, "cond_steps": cond_steps, "wav_vs_stored_max_diff": gap,
}, timings=timings)
