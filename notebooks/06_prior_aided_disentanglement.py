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
# # 06 · NeRF-3DTalker's 3D-prior-aided audio disentanglement: Lip-wav, the 3D prior, StyleNet and FuseNet
#
# NeRF-3DTalker (`../shared/papers/nerf-3dtalker.md`, Section II.B) does not feed audio to its field.
# It conditions the field on two 79-d expression vectors (Eq. 1),
#
# $$I : (f_{id},\; f_{exp\text{-}aud},\; f_{exp\text{-}style},\; f_{alb},\; f_{illu}) \qquad (1)$$
#
# where $f_{exp\text{-}aud}$ carries only what the speech moves and $f_{exp\text{-}style}$ the speaker's
# style. The first is obtained in two steps, which this notebook builds and measures:
#
# 1. **Lip-wav generation** (Eq. 2): a generator draws the lips of the identity image $I_{id}$ as the
#    audio says, supervised by a frozen SyncNet;
# 2. **3D prior extraction**: a 3DMM reconstruction network reads the expression off the generated
#    images. What it reads is $f_{exp\text{-}aud}$: speech movement in the 3DMM's own space.
#
# **Stand-ins, said plainly.** The paper's generator is SadTalker's pre-trained LipNet and its 3DMM
# extractor Deep3DFaceRecon; neither can be downloaded here. talklib trains both on the synthetic speaker:
# a compact Wav2Lip-style generator (`talklib.condition.lipwav`) and a small image → 3DMM regressor
# (`talklib.condition.prior3d`). The SyncNet of Eq. (2) is notebook 04's lip-sync expert, and LSE-C / LSE-D
# are measured with that same expert, so a generator trained against it is scored by its own teacher:
# the regressor's reading of the generated mouths against the true expression is the independent check.
#
# 3. **StyleNet and FuseNet** (Eq. 3): the speaker's style from a reference clip, fused with
#    $f_{exp\text{-}aud}$ and trained against the true expression; measured against the synthetic speaker's
#    own split of every expression into a speech part and a style part.
#
# 4. **The module end to end** (`talklib.condition.disentangle`): a wav in, Eq. (1)'s two parts out, one row
#    per frame, the way `render` computes them;
# 5. **the conditional field of Eq. (4)-(6)** on them, and **Table II** re-run: the whole audio vs
#    $f_{exp\text{-}aud}$ alone vs both, scored on unseen sentences, frontal and at novel views.

# %% tags=["parameters"]
run_dir = "runs/dev"
data_dir = "data/synthetic/small"
preset = "small"
seed = 0
device = "auto"
resume = False
sync_speech_clips = -1
sync_test_every = 3
sync_speech_renders = 2
lipwav_steps = 240
lipwav_batch = 16
lipwav_width = 16
lipwav_lr = 3e-3
lipwav_lip_weight = 0.01
lipwav_lip_from = 0.5
regress_steps = 600
regress_width = 16
regress_renders = 1500
style_steps = 600
style_batch = 16
style_width = 64
style_train_styles = 400
style_test_styles = 4
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
from IPython.display import display
from tqdm.auto import tqdm

from talklib.condition import lipwav as LW
from talklib.data.dataset import EXP_NAMES
from talklib.condition import prior3d as RG
from talklib.outputs import save_figure, save_image, video_path, write_metrics
from talklib.speaker.build import ensure_corpus
from talklib.speaker.visemes import MOUTH_COMPONENTS
from talklib.sync.corpus import expert_material
from talklib.sync.model import load_sync
from talklib.sync.train import centre_of, crop_margins, score_clip

NB = "06_prior_aided_disentanglement"
timings, t_start = {}, time.perf_counter()
if dev.type == "cpu":
    torch.set_num_threads(2)

# %% [markdown]
# ## 6.1 The material: mouth crops with their audio and their true expression
# The same split as notebook 04's expert: the rendered training clip and the speech-only clips rendered on
# the speaker (many voices and sentences) for training; testA (unseen sentences, other lighting), testB
# (real ARCTIC speech) and every `sync_test_every`-th speech-only clip held out. Each frame brings its
# mouth crop (the lip region, `talklib.sync.crops`), its 0.04 s of the 50 Hz mel stream, and the
# synthetic speaker's true 79-d expression.

# %%
sync_path = Path(run_dir) / "models" / "sync.pt"
assert sync_path.is_file(), f"notebook 04's lip-sync expert is missing at {sync_path}: run notebook 04 first"
expert = load_sync(sync_path).to(dev)
cfg = expert.cfg
t0 = time.perf_counter()
corpus = ensure_corpus(data_dir, preset, seed)
train_items, test_items = expert_material(corpus, cfg, sync_speech_clips, sync_test_every,
                                          renders=sync_speech_renders,
                                          cache=Path(run_dir) / "cache" / "expert_material.pt")   # notebook 04's
timings["data_s"] = time.perf_counter() - t0
margins = crop_margins(cfg)


def centre(item) -> np.ndarray:
    """The expert-sized mouth crops (T, h, w, 3) uint8 of an item (its crops carry a jitter margin)."""
    return centre_of(item.data.crops, cfg)


n_train = sum(it.data.n_frames for it in train_items)
print(f"training: {len(train_items)} clips, {n_train} frames ({n_train / 25:.0f} s); "
      f"held out: {[it.name for it in test_items]}")

# %% [markdown]
# ## 6.2 Lip-wav generation with SyncNet supervision (Eq. 2)
# $$L_{lip} = \frac{1}{B} \sum_{i=1}^B -\log\left(\frac{f_{lip_i} \cdot f_{a_i}}{\max(\|f_{lip_i}\|_2 \cdot \|f_{a_i}\|_2, \epsilon)}\right) \qquad (2)$$
#
# The generator (`LipWavGenerator`, a U-Net) sees the identity's mouth crop at another moment of the same
# clip — the paper's identity image $I_{id}$, as Wav2Lip's reference frame — and a code of the 0.2 s of
# mel around the target frame at its bottleneck; it draws the mouth crop at that frame. The loss is the L1
# distance to the true crop plus `lipwav_lip_weight` · $L_{lip}$, where $f_{lip}$ is the frozen expert's
# embedding of five consecutive generated crops and $f_a$ that of their audio. $L_{lip}$ joins after the first
# `lipwav_lip_from` of the steps, as Wav2Lip switches its sync loss on only once the generator draws mouths.
# Two generators get the same steps and seed: **with** $L_{lip}$ and **without** (L1 only), so the table
# below shows what Eq. (2) adds. Until $L_{lip}$ joins the two take the very same steps, so that part is
# trained once and both go on from it (`train_lipwav(stop_at=..., branch=...)`).

# %%
train_data = [it.data for it in train_items]
ckpt = {name: Path(run_dir) / "checkpoints" / f"06_{name}.pt" for name in ("lipwav_lip", "lipwav_l1", "regressor", "style_fuse")}
for p in ckpt.values():
    if p.exists() and not resume:
        p.unlink()   # a fresh run starts fresh; `reproduce --resume` continues an interrupted training instead
gens, hist, weight = {}, {}, {"with L_lip": lipwav_lip_weight, "without L_lip": 0.0}
for name in weight:
    torch.manual_seed(seed)
    gens[name] = LW.LipWavGenerator(LW.LipWavConfig(crop_h=cfg.crop_h, crop_w=cfg.crop_w, width=lipwav_width)).to(dev)


def train_gen(name: str, **kw) -> list[dict]:
    return LW.train_lipwav(gens[name], train_data, expert, lipwav_steps, batch=lipwav_batch, lr=lipwav_lr,
                           lip_weight=weight[name], lip_from=lipwav_lip_from, seed=seed,
                           ckpt=ckpt["lipwav_lip" if weight[name] else "lipwav_l1"], **kw)


t0 = time.perf_counter()
train_gen("without L_lip", stop_at=int(round(lipwav_lip_from * lipwav_steps)))   # the part both share: L1 alone
hist["with L_lip"] = train_gen("with L_lip", branch=ckpt["lipwav_l1"])         # from there, + L_lip
hist["without L_lip"] = train_gen("without L_lip")                              # from there, L1 alone
timings["lipwav_s"] = time.perf_counter() - t0
LW.save_lipwav(gens["with L_lip"], Path(run_dir) / "models" / "lipwav.pt")
fig = go.Figure()
for name, h in hist.items():
    fig.add_scatter(y=[r["l1"] for r in h], name=f"L1, {name}")
fig.add_scatter(y=[r["lip"] if r["lip"] else None for r in hist["with L_lip"]], name="L_lip (Eq. 2)", yaxis="y2")
fig.update_layout(title="Lip-wav training", xaxis_title="step", yaxis_title="L1", height=360,
                  yaxis2=dict(title="L_lip", overlaying="y", side="right"))
fig.show()
save_figure(fig, run_dir, NB, "lipwav_training")

# %% [markdown]
# Every held-out clip is drawn from its audio alone, all frames from one reference crop (its first frame).
# Top: the truth; middle and bottom: Lip-wav with and without $L_{lip}$.

# %%
lipwav = {name: [LW.lipwav_clip(g, centre(it)[0], it.data.mel, margins) for it in test_items] for name, g in gens.items()}
it0 = test_items[0]
rows = [centre(it0)[20:32]] + [centre_of(c[0].crops[20:32], cfg) for c in lipwav.values()]
strip = np.concatenate([np.concatenate(list(r), axis=1) for r in rows], axis=0)
save_image(strip, run_dir, NB, "lipwav_strip")
px.imshow(strip, title=f"{it0.name}, frames 20-31: truth / Lip-wav with L_lip / without").show()

# %% [markdown]
# LSE-C (confidence, higher is better synced) and LSE-D (distance, lower is better) by the expert, over every
# held-out clip, for the true video and both generators; and the AV offset the expert finds (0 = in sync).

# %%
rows = []
for i, it in enumerate(test_items):
    row = {"clip": it.name}
    for name, s in [("truth", score_clip(expert, it.data))] + [(n, score_clip(expert, c[i])) for n, c in lipwav.items()]:
        row.update({f"LSE-C {name}": s.lse_c, f"LSE-D {name}": s.lse_d, f"offset {name}": s.offset})
    rows.append(row)
sync_table = pd.DataFrame(rows).set_index("clip")
display(sync_table.round(3))
lse = {n: float(sync_table[f"LSE-C {n}"].mean()) for n in ("truth", *gens)}
lsd = {n: float(sync_table[f"LSE-D {n}"].mean()) for n in ("truth", *gens)}
in_sync = {n: float((sync_table[f"offset {n}"].abs() <= 1).mean()) for n in ("truth", *gens)}
print({n: f"LSE-C {lse[n]:.3f}, LSE-D {lsd[n]:.3f}, offset within ±1 on {in_sync[n]:.0%}" for n in lse})

# %% [markdown]
# ## 6.3 3D prior extraction: the expression of the generated images
# The regressor (`ExpRegressor`, Deep3DFaceRecon's role) maps a mouth crop to the 79 expression numbers.
# It learns from `regress_renders` renders of the speaker whose code is known: each takes the speech
# components (jaw, lips) of one true frame of the training clips and everything else of another
# (`training_renders`), so the mouth it learns to read does not come with the brows and blinks that happened
# to go with it. It is checked first on the held-out clips' **true** crops: how much of each named component
# a mouth crop shows at all. Correlations are taken within each held-out clip and averaged (the lighting of
# testA shifts the whole clip's reading a little; a field cares about the motion).

# %%
pool = np.concatenate([it.exp[:it.data.n_frames] for it in train_items])
t0 = time.perf_counter()
X, Y = RG.training_renders(pool, corpus.clips(split="train")[0], regress_renders, cfg, np.random.default_rng(seed))
timings["regress_renders_s"] = time.perf_counter() - t0
torch.manual_seed(seed)
reg = RG.ExpRegressor(RG.RegressorConfig(crop_h=cfg.crop_h, crop_w=cfg.crop_w, width=regress_width)).to(dev)
t0 = time.perf_counter()
reg_hist = RG.train_regressor(reg, X, Y, regress_steps, seed=seed, ckpt=ckpt["regressor"])
timings["regress_s"] = time.perf_counter() - t0
RG.save_regressor(reg, Path(run_dir) / "models" / "exp_regressor.pt")


def corr(a: np.ndarray, b: np.ndarray) -> float:
    return float(np.corrcoef(a, b)[0, 1]) if a.std() > 1e-8 and b.std() > 1e-8 else 0.0


def clip_corr(preds: list[np.ndarray], comp: str) -> float:
    """Correlation of one component, predicted vs true, within each held-out clip, averaged over clips."""
    k = EXP_NAMES.index(comp)
    return float(np.mean([corr(p[:, k], it.exp[:len(p), k]) for p, it in zip(preds, test_items)]))


P = [RG.predict(reg, centre(it)) for it in test_items]
named = list(EXP_NAMES)
r_true = {n: clip_corr(P, n) for n in named}
fig = px.bar(x=named, y=[r_true[n] for n in named], labels={"x": "expression component", "y": "correlation"},
             title="regressor on the held-out clips' true mouth crops: predicted vs true (within clips)")
fig.show()
save_figure(fig, run_dir, NB, "regressor_components")
speech_comps = [c for c in MOUTH_COMPONENTS if c != "smile"]   # what the visemes move
print(f"{len(X)} training renders; held-out correlation: jaw_open {r_true['jaw_open']:.3f}, "
      f"mean over the speech components {np.mean([r_true[c] for c in speech_comps]):.3f}, "
      f"blinks {np.mean([r_true['blink_left'], r_true['blink_right']]):.3f} (a mouth crop does not show them)")

# %% [markdown]
# Now the prior itself: $f_{exp\text{-}aud} = R(\text{Lip-wav}(I_{id}, \text{audio}))$, frame by frame for every
# held-out clip, against the true expression of the same frames. The speech components should follow the
# truth; this is the check the expert cannot bias, since the regressor never saw a generated image.

# %%
f_exp_aud = {n: [RG.predict(reg, centre_of(c.crops, cfg)) for c in clips] for n, clips in lipwav.items()}
prior = pd.DataFrame({n: {c: clip_corr(f, c) for c in MOUTH_COMPONENTS} for n, f in f_exp_aud.items()})
prior["true crops (regressor alone)"] = [r_true[c] for c in MOUTH_COMPONENTS]
display(prior.round(3))
jaw = {n: float(prior.loc["jaw_open", n]) for n in prior.columns}
k = EXP_NAMES.index("jaw_open")
fig = go.Figure([go.Scatter(y=test_items[0].exp[:250, k], name="true jaw_open"),
                 go.Scatter(y=f_exp_aud["with L_lip"][0][:250, k], name="f_exp-aud (Lip-wav with L_lip)"),
                 go.Scatter(y=f_exp_aud["without L_lip"][0][:250, k], name="f_exp-aud (Lip-wav without L_lip)"),
                 go.Scatter(y=P[0][:250, k], name="regressor on the true crops")])
fig.update_layout(title=f"{test_items[0].name}: jaw_open read off the Lip-wav images", xaxis_title="frame", height=340)
fig.show()
save_figure(fig, run_dir, NB, "f_exp_aud_jaw")

# %% [markdown]
# ## 6.4 StyleNet and FuseNet, trained with $L_{exp}$ (Eq. 3)
# $$L_{exp} = \|f_{gen\text{-}exp} - f_{gt\text{-}exp}\|^2 \qquad (3)$$
#
# StyleNet reads the speaker's style off a reference clip; FuseNet fuses it with $f_{exp\text{-}aud}$ into
# the expression of every frame, $f_{gen\text{-}exp}$, trained against the real frames' $f_{gt\text{-}exp}$.
# The paper gives neither network's design; `talklib.condition.style` has the stand-ins (StyleNet: temporal
# convolutions over the reference clip's expression sequence, averaged over time, one 79-d $f_{exp\text{-}style}$
# per reference; FuseNet: temporal convolutions over $f_{exp\text{-}aud}$ of frames $t-4 \dots t+4$ with the
# style beside it, added to the style).
#
# **Where styles come from.** The speaker of the corpus has one speaking style. But the synthetic speaker
# knows how each expression was made (`talklib.speaker.style`): the **speech part** (the viseme curves of the
# phone timeline: jaw, lips), the **style part** (brow raises at phrase starts, the smile and dimpler levels,
# the unnamed components' offsets and drift) and the blinks. So every clip's speech part is re-dressed in
# `style_train_styles` drawn styles for training, and the held-out clips in `style_test_styles` styles never
# seen. FuseNet sees $f_{exp\text{-}aud}$ read off the Lip-wav images (6.2-6.3, with $L_{lip}$) of a clip;
# StyleNet sees *another* clip in the same style, so it cannot copy the sentence it has to fuse.

# %%
from talklib.condition import style as ST  # noqa: E402
from talklib.speaker import style as SS  # noqa: E402

by_name = {c.name: c for c in corpus.speech()} | {c.name: c for c in corpus.clips()}


def f_exp_aud_of(it) -> np.ndarray:
    """f_exp-aud of a clip: Lip-wav (with L_lip) drawn from its audio and first crop, read by the regressor."""
    c = LW.lipwav_clip(gens["with L_lip"], centre(it)[0], it.data.mel, margins)
    return RG.predict(reg, centre_of(c.crops, cfg))


def dressed(items, f_auds, styles, tag):
    """Each clip's true speech part spoken in each style: exp[s][i], style part[s][i], speech[i] (T, 79)."""
    speech = [SS.speech_part(by_name[it.name.split("@")[0]])[:len(f)] for it, f in zip(items, f_auds)]
    tls = [SS.timeline_of(by_name[it.name.split("@")[0]]) for it in items]
    out = [[SS.styled_expression(sp, tl, st, np.random.default_rng([seed, tag, s, i]))
            for i, (sp, tl) in enumerate(zip(speech, tls))] for s, st in enumerate(styles)]
    return [[o["exp"] for o in row] for row in out], [[o["style"] for o in row] for row in out], speech


t0 = time.perf_counter()
fit_items = [it for it in train_items if "@" not in it.name and it.data.n_frames >= ST.MIN_REF_FRAMES]
aud_fit = [f_exp_aud_of(it) for it in fit_items]
aud_test = list(f_exp_aud["with L_lip"])
style_rng = np.random.default_rng([seed, 60])
train_styles = [SS.draw_style(style_rng) for _ in range(style_train_styles)]
test_styles = [SS.draw_style(style_rng) for _ in range(style_test_styles)]
exp_fit, _, _ = dressed(fit_items, aud_fit, train_styles, 61)
exp_test, style_test, speech_test = dressed(test_items, aud_test, test_styles, 62)
ok_ref = [i for i, f in enumerate(aud_test) if len(f) >= ST.MIN_REF_FRAMES]
torch.manual_seed(seed)
dis = ST.Disentangler(ST.StyleConfig(width=style_width)).to(dev)
style_hist = ST.train_disentangler(dis, ST.StyledSet(aud_fit, exp_fit), style_steps, batch=style_batch,
                                   seed=seed, ckpt=ckpt["style_fuse"])
timings["style_fuse_s"] = time.perf_counter() - t0
ST.save_disentangler(dis, Path(run_dir) / "models" / "style_fuse.pt")
fig = px.line(y=[r["l_exp"] for r in style_hist], log_y=True, labels={"x": "step", "y": "L_exp (Eq. 3)"},
              title=f"StyleNet + FuseNet on {len(fit_items)} clips x {len(train_styles)} styles")
fig.show()
save_figure(fig, run_dir, NB, "style_fuse_training")

# %% [markdown]
# **Measured against the truth**, on the held-out clips in the unseen styles. For each clip $i$ and style $s$
# the reference is the next held-out clip in style $s$ (another sentence).
# - *speech*: the jaw of $f_{gen\text{-}exp}$ against the true speech part, within each clip;
# - *style*: the clip means of the style columns (dimpler, brows, the unnamed ones) of $f_{gen\text{-}exp}$ —
#   and of $f_{exp\text{-}style}$ itself — against the true style part's, across clips and styles;
# - *leakage of speech into $f_{exp\text{-}style}$*: the share of its variance that is the style's (1 = it
#   depends on the style only, not on which sentence the reference says);
# - *leakage of style into $f_{exp\text{-}aud}$*: none by construction here — Lip-wav sees only the identity
#   image and the audio, whatever the style — so it is not measured;
# - *swap*: clip $i$ with the reference of style $b$ instead of $a$: are its style columns nearer the truth of
#   $b$ than of $a$, and does its jaw stay (correlation of the two jaws)?

# %%
S_COLS, JAW = list(SS.STYLE_COLUMNS), EXP_NAMES.index("jaw_open")


assert len(ok_ref) >= 2, f"fewer than two held-out clips of {ST.MIN_REF_FRAMES} frames: no reference of another sentence"


def ref_of(s: int, i: int) -> np.ndarray:
    """Clip i's reference in style s: the next held-out clip long enough for StyleNet, never clip i itself."""
    j = ok_ref[(ok_ref.index(i) + 1) % len(ok_ref)] if i in ok_ref else next(j for j in ok_ref if j != i)
    return exp_test[s][j]


fused = {(s, i): ST.fuse(dis, aud_test[i], ref_of(s, i))
         for s in range(len(test_styles)) for i in range(len(test_items))}
keys = list(fused)
jaw_gen = float(np.mean([corr(fused[k][0][:, JAW], speech_test[k[1]][:, JAW]) for k in keys]))
jaw_aud = float(np.mean([corr(aud_test[i][:, JAW], speech_test[i][:, JAW]) for i in range(len(test_items))]))
mean_gen = np.array([fused[k][0][:, S_COLS].mean(0) for k in keys])
mean_sty = np.array([fused[k][1][S_COLS] for k in keys])
mean_true = np.array([style_test[s][i][:, S_COLS].mean(0) for s, i in keys])
style_r_gen = float(np.mean([corr(mean_gen[:, c], mean_true[:, c]) for c in range(len(S_COLS))]))
style_r_sty = float(np.mean([corr(mean_sty[:, c], mean_true[:, c]) for c in range(len(S_COLS))]))
per_style = np.array([[fused[(s, i)][1] for i in range(len(test_items))] for s in range(len(test_styles))])
style_share = float(np.mean(per_style.mean(1).var(0) / (per_style.reshape(-1, 79).var(0) + 1e-12)))
swaps, kept = [], []
for i in range(len(test_items)):
    for a in range(len(test_styles)):
        for b in range(len(test_styles)):
            if a != b:
                g = fused[(b, i)][0][:, S_COLS].mean(0)
                swaps.append(np.linalg.norm(g - style_test[b][i][:, S_COLS].mean(0))
                             < np.linalg.norm(g - style_test[a][i][:, S_COLS].mean(0)))
                kept.append(corr(fused[(a, i)][0][:, JAW], fused[(b, i)][0][:, JAW]))
swap_acc, swap_jaw = float(np.mean(swaps)), float(np.mean(kept))
disent = pd.Series({"jaw: f_exp-aud vs true speech part (within clips)": jaw_aud,
                    "jaw: f_gen-exp vs true speech part (within clips)": jaw_gen,
                    "style columns: f_gen-exp clip means vs true style part": style_r_gen,
                    "style columns: f_exp-style vs true style part": style_r_sty,
                    "f_exp-style variance that is the style's (not the sentence's)": style_share,
                    "swap: style nearer the new style's truth than the old": swap_acc,
                    "swap: jaw kept (correlation before / after)": swap_jaw}, name="measured")
display(disent.round(3).to_frame())

# %%
i0, (sa, sb) = 0, (0, 1)
names = [EXP_NAMES[c] if c < len(EXP_NAMES) else f"u{c - len(EXP_NAMES)}" for c in S_COLS[:12]]
fig = go.Figure()
for s, dash in ((sa, None), (sb, "dot")):
    fig.add_bar(x=names, y=style_test[s][i0][:, S_COLS[:12]].mean(0), name=f"true style part, style {s}")
    fig.add_scatter(x=names, y=fused[(s, i0)][0][:, S_COLS[:12]].mean(0), mode="markers", marker_size=10,
                    name=f"f_gen-exp with a style-{s} reference")
fig.update_layout(title=f"{test_items[i0].name}: the same audio fused with two references (clip means)",
                  height=360, barmode="group")
fig.show()
save_figure(fig, run_dir, NB, "style_swap")
fig = go.Figure([go.Scatter(y=speech_test[i0][:250, JAW], name="true speech part (jaw_open)"),
                 go.Scatter(y=fused[(sa, i0)][0][:250, JAW], name=f"f_gen-exp, style {sa}"),
                 go.Scatter(y=fused[(sb, i0)][0][:250, JAW], name=f"f_gen-exp, style {sb}")])
fig.update_layout(title="the jaw stays when the style is swapped", xaxis_title="frame", height=320)
fig.show()
save_figure(fig, run_dir, NB, "style_swap_jaw")

# %% [markdown]
# ## 6.5 The module end to end: from a wav to Eq. (1)'s two parts
# `talklib.condition.disentangle` chains the three trained networks: Lip-wav draws the identity's mouth
# ($I_{id}$: the first mouth crop of the training video) as the audio says, the regressor reads
# $f_{exp\text{-}aud}$ off every drawn mouth, StyleNet reads the style off a reference clip (the training
# video's expression: the paper's reference of the target speaker) and FuseNet fuses both into $f_{gen\text{-}exp}$.
#
# **A choice the paper leaves open.** Eq. (1) hands the field a 79-d $f_{exp\text{-}style}$ beside
# $f_{exp\text{-}aud}$, and calls speaking style "the movement of facial muscles influenced by audio", but
# StyleNet gives one vector per reference. Here the field gets, per frame, FuseNet's contribution
# $f_{exp\text{-}style}(t) = f_{gen\text{-}exp}(t) - f_{exp\text{-}aud}(t)$: what the style adds to the speech
# movement at that frame (a brow raise at a phrase start, the smile's level). The two sum to the expression
# Eq. (3) trains against the truth.
#
# The module is stored with the training clip's feature networks (`aud_extractors.pt`, key `prior`), and
# both parts of the training clip and of testA go into their folders as `aud_expaud.npy` /
# `aud_expstyle.npy`, computed from the audio alone, exactly as `render` computes them from any wav.

# %%
from talklib.audio.features import fit_length  # noqa: E402
from talklib.condition import disentangle as DS  # noqa: E402
from talklib.condition.extract import BUNDLE_NAME, load_bundle, save_bundle  # noqa: E402

clip, test_clip = corpus.clip(split="train"), corpus.clip(split="testA")
id_crop = centre(next(it for it in train_items if it.name == clip.name))[0]
module = DS.make_prior(gens["with L_lip"], reg, dis, id_crop, clip.exp())
t0 = time.perf_counter()
prior_of = {}
for c in (clip, test_clip):
    prior_of[c.name] = DS.prior_from_audio(module, fit_length(c.audio(), c.n_frames), c.n_frames)
    DS.write_prior(c.path, prior_of[c.name])
save_bundle(clip.path / BUNDLE_NAME, {**load_bundle(clip.path / BUNDLE_NAME), "prior": module})
timings["prior_features_s"] = time.perf_counter() - t0
pa = prior_of[test_clip.name]
true_a = test_clip.exp()
gen_a = pa["expaud"] + pa["expstyle"]
cols = {c: [EXP_NAMES.index(c)] for c in ("jaw_open", "lips_part", "smile", "dimpler")} | {"unnamed (mean of 67)": list(range(12, 79))}
parts_r = pd.DataFrame({c: {"f_exp-aud": np.mean([corr(pa["expaud"][:, k], true_a[:, k]) for k in ks]),
                            "f_exp-aud + f_exp-style (= f_gen-exp)": np.mean([corr(gen_a[:, k], true_a[:, k]) for k in ks])}
                        for c, ks in cols.items()}).T
display(parts_r.round(3))
print("testA's true brows do not move (its style has no brow raises): they are left out")
fig = go.Figure()
for comp, dash in (("jaw_open", None), ("dimpler", "dot")):
    k = EXP_NAMES.index(comp)
    fig.add_scatter(y=true_a[:250, k], name=f"true {comp}", line_dash=dash)
    fig.add_scatter(y=pa["expaud"][:250, k], name=f"f_exp-aud {comp}", line_dash=dash)
    fig.add_scatter(y=gen_a[:250, k], name=f"+ f_exp-style {comp}", line_dash=dash)
fig.update_layout(title="testA from its audio alone: the speech part and the style part", xaxis_title="frame", height=360)
fig.show()
save_figure(fig, run_dir, NB, "prior_parts_testA")

# %% [markdown]
# ## 6.6 The conditional field of Eq. (4)-(6) on the disentangled audio
# $$F_\theta : (l, P, f_{id}, f_{exp\text{-}aud}, f_{exp\text{-}style}, f_{alb}, f_{illu}) \rightarrow (z, \sigma) \qquad (4)$$
#
# Table II's three rows, each notebook 03's field (Eq. 5: volume rendering and $H_u$) trained with the
# photometric loss Eq. (6):
# - **use ent. aud.**: the whole audio through AD-NeRF's audio net — notebook 05's DeepSpeech-like row, reused
#   as it was trained there;
# - **use spe. aud.**: $f_{exp\text{-}aud}$ only (`f_exp_aud:K,f_illu`);
# - **use dis. aud.**: both (`f_exp_aud:K,f_exp_style:K,f_illu`),
#
# with K = `nerf_exp_dims`, the expression numbers notebook 03's field takes (the named components first).
# Every row starts from notebook 03's field and gets notebook 05's budget: `cond_steps` steps, the same
# lower-face focus. Since $f_{exp\text{-}aud}$ lives in the 3DMM's own space, the spe. aud. condition has the
# very layout of notebook 03's (`f_exp:K,f_illu`), and `warm_start` keeps its condition network too: the
# paper's "aligns the acoustic space with the 3D visual space", in one line. $f_{id}$ and $f_{alb}$ are the
# same numbers in every frame of one speaker, so they are left out here; the field's weights hold them.
# Checkpoints go to `checkpoints/06_spe_aud/` and `06_dis_aud/`, renderable from any wav with
# `python -m talklib render`.

# %%
from talklib.condition.audionet import ConditionConfig  # noqa: E402
from talklib.condition.extract import subset  # noqa: E402
from talklib.nerf.scene import from_clip, lower_face_box, with_conditions  # noqa: E402
from talklib.nerf.talk import render_extra  # noqa: E402
from talklib.nerf.train import (evaluate, fit, load_checkpoint, model_for_scene, model_from_checkpoint,  # noqa: E402
                                model_settings, save_checkpoint, warm_start)

nb03, nb05_ent = Path(run_dir) / "checkpoints" / "nerf03", Path(run_dir) / "checkpoints" / "05_deepspeech_like"
for path, who in ((nb03, "03"), (nb05_ent, "05")):
    assert (path / "nerf.pt").is_file(), f"notebook {who}'s field is missing in {path}: run notebook {who} first"
K = nerf_exp_dims
ROWS = {"use spe. aud.": f"f_exp_aud:{K},f_illu", "use dis. aud.": f"f_exp_aud:{K},f_exp_style:{K},f_illu"}
head = load_checkpoint(nb03)["state"]
base = from_clip(clip, size=nerf_size, conditions="f_illu", depth=nerf_depth_weight > 0, box_scale=nerf_box_scale).to(dev)
box = lower_face_box(clip, nerf_size, nerf_upsample)
settings = model_settings(globals())
bundle = load_bundle(clip.path / BUNDLE_NAME)
fields, field_hist, fresh = {}, {}, {}
t0 = time.perf_counter()
for name, conds in ROWS.items():
    scene = with_conditions(base, clip, conds)
    torch.manual_seed(seed)
    model = model_for_scene(scene, **settings).to(dev)
    fresh[name] = warm_start(model, head)
    field_hist[name] = fit(model, scene, steps=cond_steps, lr=nerf_lr, occ_every=50, depth_weight=nerf_depth_weight,
                           seed=seed, progress=False, focus=box, focus_every=cond_focus_every)
    fields[name] = model.eval()
    default = scene.cond[torch.as_tensor(scene.train_idx).to(dev)].mean(0)
    feats = subset(bundle, ConditionConfig(conds).parts, str(clip.path))
    save_checkpoint(Path(run_dir) / "checkpoints" / f"06_{name.split()[1].rstrip('.')}_aud" / "nerf.pt", model,
                    extra=render_extra(scene, None, None, default, features=feats), step=cond_steps,
                    history=field_hist[name])
timings["table2_fit_s"] = time.perf_counter() - t0
fields = {"use ent. aud.": model_from_checkpoint(load_checkpoint(nb05_ent)).to(dev).eval(), **fields}
print({n: f"{h[-1]['psnr']:.1f} dB after {len(h)} steps" for n, h in field_hist.items()})
print("left at their initialisation:", {n: [k for k in f if not k.startswith("cond")] or "nothing" for n, f in fresh.items()})


def conditions_of(name: str):
    """A row's conditions: the audio row's own configuration (its channel counts), else its text."""
    m = fields[name]
    return ConditionConfig(**m.cfg.conditions) if m.cfg.conditions else ROWS[name]


# %% [markdown]
# ## 6.7 Table II, re-run on unseen sentences
# Each row renders testA (sentences it never heard, testA's head poses and lighting) from testA's audio alone,
# its first `cond_score_frames` frames, and the suite of notebook 04 scores it against the ground-truth
# video, with the paper's metrics: SSIM, LPIPS (None: no local AlexNet weights here), AU Acc (landmark-read
# lip and jaw AUs, the stand-in for OpenFace's), LMD-79 and SyncNet confidence (LSE-C by notebook 04's expert);
# and two the paper does not tabulate: PSNR, and the PSNR of testA's held-out frames seen from the novel
# cameras (the free-view claim, which the paper shows only in pictures). The reference row is notebook 03's
# field given testA's true expression: what audio could reach at best.

# %%
from talklib.metrics.image import psnr  # noqa: E402
from talklib.metrics.suite import evaluate_videos, video_landmarks  # noqa: E402
from PIL import Image  # noqa: E402

test_base = from_clip(test_clip, size=nerf_size, conditions="f_illu").to(dev)
n_test = test_base.images.shape[0] if cond_score_frames == 0 else min(test_base.images.shape[0], cond_score_frames)
audio_test = test_clip.audio()[: n_test * 640]


def upscale(frames):
    return np.stack([np.asarray(Image.fromarray(f).resize((nerf_score_size,) * 2, Image.BICUBIC)) for f in frames])


def to_u8(x):
    return (np.clip(x.cpu().numpy(), 0, 1) * 255 + 0.5).astype(np.uint8)


REF = "3DMM expression, true (notebook 03, upper reference)"
gt = to_u8(test_base.images[:n_test])
gt_up = upscale(gt)
lm_gt = video_landmarks(gt_up, "testA ground truth")
fields[REF] = model_from_checkpoint(load_checkpoint(nb03)).to(dev).eval()
scenes = {n: with_conditions(test_base, test_clip, f"f_exp:{fields[REF].cfg.cond_parts['f_exp']},f_illu" if n == REF
                             else conditions_of(n)) for n in fields}
t0 = time.perf_counter()
renders, scores = {}, {}
for name, m in tqdm(fields.items(), desc="score"):
    renders[name] = to_u8(evaluate(m, scenes[name], np.arange(n_test)))
    r = evaluate_videos(upscale(renders[name]), gt_up, 25, audio_test, sync_model=expert, ref_landmarks=lm_gt,
                        cpbd_every=n_test, pred_name=name)
    r["psnr"] = psnr(renders[name], gt)                   # at the fitted size, not the upscaled one
    for yaw, nv in test_base.novel.items():
        r[f"novel_psnr/{yaw:+.0f}"] = psnr(to_u8(evaluate(m, scenes[name], nv["frames"], c2w=nv["c2w"])), to_u8(nv["images"]))
    scores[name] = r
truth = evaluate_videos(gt_up, gt_up, 25, audio_test, sync_model=expert, ref_landmarks=lm_gt, cpbd_every=n_test)
timings["table2_score_s"] = time.perf_counter() - t0
yaws = sorted(test_base.novel)
for r in scores.values():
    r["novel_psnr"] = float(np.mean([r[f"novel_psnr/{y:+.0f}"] for y in yaws])) if yaws else None

# %% [markdown]
# Their numbers beside ours. The paper's come from its own speakers with OpenFace AUs, the real SyncNet and
# 68 + 11 landmarks; ours from the synthetic speaker with the stand-ins above, so compare the orderings of
# the rows, not the values.

# %%
from talklib.scorecard.papers import TALKER_T2 as PAPER  # noqa: E402  (the paper's numbers, one copy)

rows = []
for name, (ps, pl, pa_, pm, pc) in PAPER.items():
    r = scores.get(name, {"lse_c": truth["lse_c"]})
    rows.append({"row": name, "paper SSIM": ps, "SSIM": r.get("ssim"), "paper LPIPS": pl, "LPIPS": r.get("lpips"),
                 "paper AU Acc %": pa_, "AU Acc %": None if r.get("au_acc") is None else 100 * r["au_acc"],
                 "paper LMD-79": pm, "LMD-79": r.get("lmd_79"), "paper SyncNet": pc, "LSE-C": r["lse_c"],
                 "PSNR": r.get("psnr"), "novel-view PSNR": r.get("novel_psnr")})
r = scores[REF]
rows.append({"row": REF, "SSIM": r["ssim"], "LPIPS": r["lpips"], "AU Acc %": 100 * r["au_acc"], "LMD-79": r["lmd_79"],
             "LSE-C": r["lse_c"], "PSNR": r["psnr"], "novel-view PSNR": r["novel_psnr"]})
table2 = pd.DataFrame(rows).set_index("row")
display(table2.round(3))

# %%
S, E, P_, D = scores, "use ent. aud.", "use spe. aud.", "use dis. aud."
claims = [
    ("spe. aud. beats ent. aud. in SSIM", S[P_]["ssim"] > S[E]["ssim"]),
    ("spe. aud. beats ent. aud. in AU Acc", S[P_]["au_acc"] > S[E]["au_acc"]),
    ("spe. aud. beats ent. aud. in LMD", S[P_]["lmd_79"] < S[E]["lmd_79"]),
    ("spe. aud. beats ent. aud. in sync", S[P_]["lse_c"] > S[E]["lse_c"]),
    ("dis. aud. beats spe. aud. in SSIM", S[D]["ssim"] > S[P_]["ssim"]),
    ("dis. aud. beats spe. aud. in LMD", S[D]["lmd_79"] < S[P_]["lmd_79"]),
    ("dis. aud. beats spe. aud. in sync", S[D]["lse_c"] > S[P_]["lse_c"]),
    ("every row is less synced than the ground truth", all(S[n]["lse_c"] < truth["lse_c"] for n in PAPER if n in S)),
    ("(ours) dis. aud. at novel views at least as good as ent. aud.", S[D]["novel_psnr"] >= S[E]["novel_psnr"]),
]
verdicts = pd.DataFrame([{"claim (Table II)": c, "here": "holds" if ok else "does not hold here"} for c, ok in claims])
verdicts

# %% [markdown]
# Side by side on testA: ground truth | ent. aud. | spe. aud. | dis. aud., with the audio; and one frame of
# each row from the novel cameras beside the truth.

# %%
from talklib.data.video import write_video  # noqa: E402
from IPython.display import Video  # noqa: E402

side = np.concatenate([gt, renders[E], renders[P_], renders[D]], axis=2)
out = write_video(video_path(run_dir, NB, "table2_side_by_side"), side, fps=25, audio=audio_test)
save_image(side[n_test // 2], run_dir, NB, "table2_frame")
display(Video(str(out), embed=True, width=4 * 128))
if yaws:
    nv = test_base.novel[yaws[0]]
    f0 = nv["frames"][:1]
    views = [to_u8(nv["images"][:1])[0]] + [to_u8(evaluate(fields[n], scenes[n], f0, c2w=nv["c2w"][:1]))[0] for n in (E, P_, D)]
    strip = np.concatenate(views, axis=1)
    save_image(strip, run_dir, NB, "table2_novel_view")
    px.imshow(strip, title=f"testA frame {int(f0[0])} at yaw {yaws[0]:+.0f}°: truth | ent. | spe. | dis. aud.").show()

# %% [markdown]
# **Driven by real speech.** The dis. aud. checkpoint rendered from testB's audio, a real CMU ARCTIC
# recording it never heard, exactly as `python -m talklib render --checkpoint RUN/checkpoints/06_dis_aud
# --audio WAV --out talk.mp4` does: Lip-wav, the regressor, StyleNet and FuseNet run inside `render`.

# %%
from talklib.nerf.talk import conditions_from_audio, load_talker, render_frames  # noqa: E402

wav_b = corpus.clip(split="testB").audio()[: n_test * 640]
talker, _, extra_b = load_talker(Path(run_dir) / "checkpoints" / "06_dis_aud", dev)
frames_b = render_frames(talker, extra_b, conditions_from_audio(None, extra_b, wav_b, talker), progress=False)
out_b = write_video(video_path(run_dir, NB, "dis_aud_from_arctic"), frames_b, fps=25, audio=wav_b)
display(Video(str(out_b), embed=True, width=128))
print(f"{len(frames_b)} frames from {len(wav_b) / 16000:.1f} s of ARCTIC speech")
assert len(frames_b) == len(wav_b) // 640

# %%
timings["total_s"] = time.perf_counter() - t_start
write_metrics(run_dir, NB, {
    **{f"lse_c/{n}": round(v, 4) for n, v in lse.items()}, **{f"lse_d/{n}": round(v, 4) for n, v in lsd.items()},
    **{f"in_sync/{n}": round(v, 4) for n, v in in_sync.items()},
    **{f"prior_corr/{c}/{n}": round(float(prior.loc[c, n]), 4) for c in MOUTH_COMPONENTS for n in prior.columns},
    **{f"regressor_corr/{n}": round(v, 4) for n, v in r_true.items()},
    "lse_c_ratio_lip": round(lse["with L_lip"] / lse["truth"], 4),
    "lse_c_ratio_l1": round(lse["without L_lip"] / lse["truth"], 4),
    "lipwav_final_l1/with": round(float(np.mean([r["l1"] for r in hist["with L_lip"][-20:]])), 4),
    "lipwav_final_l1/without": round(float(np.mean([r["l1"] for r in hist["without L_lip"][-20:]])), 4),
    "style/jaw_aud": round(jaw_aud, 4), "style/jaw_gen": round(jaw_gen, 4), "style/style_r_gen": round(style_r_gen, 4),
    "style/style_r_sty": round(style_r_sty, 4), "style/style_share": round(style_share, 4),
    "style/swap_acc": round(swap_acc, 4), "style/swap_jaw": round(swap_jaw, 4),
    "style/final_l_exp": round(float(np.mean([r["l_exp"] for r in style_hist[-50:]])), 5),
    **{f"prior_parts_corr/{c}/{k}": round(float(v), 4) for c, row in parts_r.iterrows() for k, v in row.items()},
    **{f"table2/{k}/{n}": (None if r.get(k) is None else round(float(r[k]), 4)) for n, r in scores.items()
       for k in ("psnr", "ssim", "lpips", "au_acc", "lmd_79", "m_lmd", "lse_c", "lse_d", "novel_psnr")},
    "table2/gt_lse_c": round(float(truth["lse_c"]), 4), **{f"claim/{c}": bool(ok) for c, ok in claims},
    "cond_steps": cond_steps,
}, timings=timings)

# %% [markdown]
# ## 6.8 What holds
# Asserted only what holds over seeds 0–4 with a margin (`benchmarks/small_preset_seeds.md`, measured on an
# AMD EPYC machine, 2026-12-06, with this notebook's budget):
# - the generator trained with Eq. (2) draws mouths the expert finds in sync (offset within ±1) on every
#   held-out clip, on every seed, with LSE-C 0.54–1.08 of the true video's (bar 0.4). With 300 steps (before
#   the 2-minute budget cut them to 240) seed 2 read 0.93 instead of 0.68; on another machine seeds 0–4 read
#   0.79–1.21 at 300 steps;
# - the regressor reads the jaw off true mouth crops (correlation 0.57–0.90; bar 0.4);
# - StyleNet / FuseNet on unseen styles and sentences: swapping the reference moves the style columns to the
#   new style's truth in 71–96 % of the swaps (bar 60 %; chance is 50 %) while the jaw stays (0.77–0.99
#   correlation before / after; bar 0.6); StyleNet's clip-level style follows the true style part at
#   r = 0.22–0.36 (bar 0.1); 50–63 % of f_exp-style's variance is the style's (bar 40 %), the rest the
#   reference sentence's: speech leaks into style.
#
# These ranges cover two builds of the regressor (NCHW and NHWC convolutions: the same arithmetic, rounded
# differently) on each seed, ten runs in all; the float rounding alone moved seed 0's jaw-kept figure from
# 0.94 to 0.77 and seed 3's jaw below.
#
# **Recorded, not asserted — findings:**
# - **from a wav alone**, on testA's unseen sentences, the module's f_exp-aud follows the true jaw at 0.74–0.86
#   on four seeds, and at 0.04 on seed 3 with the NHWC regressor (0.50 with the NCHW one): the chain
#   Lip-wav → regressor is not robust at the small preset, so this is recorded, not asserted;
# - read off the Lip-wav images, the jaw follows the truth only loosely (0.28–0.74 with $L_{lip}$, 0.37–0.75
#   without): $L_{lip}$ raises the expert's confidence (on every seed, by a little) while the mouths it teaches
#   are not clearly truer to the speech. A generator trained against its own judge can please the judge; the
#   paper's claim that Eq. (2) improves the speech movement of $f_{exp\text{-}aud}$ is not confirmed here;
# - FuseNet's jaw against the true speech part is neither reliably better nor worse than the
#   $f_{exp\text{-}aud}$ it was given (difference −0.29 … +0.32 over seeds);
# - **Table II does not reproduce as an ordering at the small preset.** Over seeds 0–4 (100 field steps a
#   row, `benchmarks/RESULTS.md`): every row stays below the ground truth's sync, as in the paper; dis. aud.
#   and spe. aud. are better synced than ent. aud. on 4 of 5 seeds (median LSE-C 0.14 and 0.06 against 0.04);
#   spe. aud. beats ent. aud. in SSIM on 2 of 5, in LMD on 3, in AU Acc on none; dis. aud. beats spe. aud. in
#   SSIM on 4 of 5, in LMD and sync on 2; dis. aud. is at least as good as ent. aud. at novel views on 4 of 5.
#   Several of these counts change with the float rounding alone. The differences in SSIM and PSNR are
#   hundredths, within the spread between seeds, so the paper's small gains (SSIM +0.012 / +0.011) cannot be
#   told apart here. Two things weigh on the ent. aud. row: its audio network starts from nothing
#   and gets the same 100 steps (notebook 05: sync appears only after several hundred), while f_exp-aud lives in
#   the 3DMM space notebook 03's field already reads — the paper's "aligned spaces" argument, and at this budget
#   the whole of the sync gap. And testA's light is unlike the training clip's on seeds 2–4 (PSNR 7–13 dB even
#   for the true-expression reference), which flattens every row.

# %%
assert in_sync["with L_lip"] >= 0.75, in_sync
assert lse["with L_lip"] > 0.4 * lse["truth"], lse
assert r_true["jaw_open"] > 0.4, r_true["jaw_open"]
assert swap_acc >= 0.6 and swap_jaw >= 0.6, (swap_acc, swap_jaw)
assert style_r_sty > 0.1 and style_share > 0.4, (style_r_sty, style_share)
for r in scores.values():      # every row of Table II scored
    assert np.isfinite([r["psnr"], r["ssim"], r["lse_c"]]).all() and (r["novel_psnr"] is None or np.isfinite(r["novel_psnr"])), r
