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
# # 02 · Audio: features, disentanglement, contrastive sync
# The four papers disagree on what a talking-head NeRF should *hear*. AD-NeRF feeds DeepSpeech logits,
# the disentangled-audio NeRF feeds SpeechSplit's content / rhythm / pitch codes (its Eq. 5–7), and
# DFA-NeRF feeds a CNN audio feature trained to agree with the mouth (its Eq. 3). This notebook builds
# all three from the synthetic speaker's speech and **measures** what each one carries:
#
# 1. frame-aligned features (one row per video frame at 25 fps) written into every clip folder;
# 2. SpeechSplit's three bottlenecks, with linear probes: which code predicts the phone, which the pitch;
# 3. a small phoneme recogniser standing in for DeepSpeech (which cannot be downloaded);
# 4. code swaps between two utterances of one sentence;
# 5. contrastive audio–mouth sync, and how often it finds the right offset among ±10 frames.
#
# Everything lives in `talklib.audio` (`io`, `features`, `speechsplit`, `recognizer`, `contrastive`,
# `probes`, `corpus`); this notebook calls it and looks at the results.

# %% tags=["parameters"]
run_dir = "runs/dev"
data_dir = "data/synthetic/small"
preset = "small"
seed = 0
device = "auto"
audio_test_every = 3
audio_f0_min = 60.0
audio_f0_max = 400.0
audio_ss_steps = 600
audio_ss_batch = 8
audio_ss_crop = 128
audio_ss_conv_content = 64
audio_ss_conv_pitch = 32
audio_ss_conv_rhythm = 32
audio_ss_dec_dim = 96
audio_ss_dec_layers = 1
audio_ss_lr = 3e-3
audio_rec_steps = 250
audio_rec_hidden = 64
audio_sync_steps = 1000
audio_sync_dim = 64
audio_sync_max_shift = 10

# %%
import time
from pathlib import Path

import numpy as np
import plotly.express as px
import plotly.graph_objects as go
import torch
from plotly.subplots import make_subplots

from talklib.notebook import setup
from talklib.outputs import save_figure, write_metrics

dev = setup(seed, device, run_dir)
if dev.type == "cpu":
    torch.set_num_threads(1)  # these small recurrent nets run faster on one thread than on two
NB = "02_audio_disentanglement"
timings, t_start = {}, time.time()

# %% [markdown]
# ## 2.1 The speech corpus
# `ensure_corpus` makes (or reuses) the synthetic speaker's corpus. Its **speech-only clips** (espeak
# voices reading sentences, plus a real CMU ARCTIC recording) come with the phone timeline and the
# mouth expression they drive; the **rendered clips** add the videos' audio. We hold out every
# `audio_test_every`-th speech clip and the testA/testB clips: probes and sync are scored on those.

# %%
from talklib.audio import corpus as AC
from talklib.speaker.build import ensure_corpus

corpus = ensure_corpus(data_dir, preset, seed)
utts = AC.utterances_from_corpus(corpus, test_every=audio_test_every)
train_utts, test_utts = AC.split(utts)
print(corpus)
print("train:", [u.name for u in train_utts])
print("held out:", [u.name for u in test_utts])
assert len(train_utts) >= 3 and len(test_utts) >= 1

# %% [markdown]
# ## 2.2 Loading and frame-aligned features
# `talklib.audio.io.load_audio` turns any wav/flac/ogg/mp3 (any rate, any channel count, 8-bit too)
# into 16 kHz mono float32 and refuses NaN/inf, empty files and non-audio with a one-line message.
#
# Video frame $i$ covers $[i/25, (i+1)/25)$ s. Every feature is resampled onto a 50 Hz stream (two
# steps per frame, the DeepSpeech rate AD-NeRF uses) and then either averaged per frame — `(N, C)` —
# or cut into AD-NeRF's windows of 16 steps centred on the frame — `(N, 16, C)`. The mel follows
# SpeechSplit exactly: 30 Hz high-pass, STFT 1024 / hop 256, 80 mels over 90–7600 Hz,
# $S = (\mathrm{dB} - 16 + 100)/100$. F0 comes from RAPT, is normalised per voice,
# $\tilde f = \big(\mathrm{clip}((\log f_0 - \mu)/4\sigma, -1, 1) + 1\big)/2$, and quantised to 256 bins plus
# an "unvoiced" bin.

# %%
t0 = time.time()
info = AC.analyse(utts, f0_range=(audio_f0_min, audio_f0_max))
timings["features_s"] = time.time() - t0
for u in utts:
    f = u.data["feats"]
    assert f["mel"].shape == (u.n_frames, 80) and f["mel_win"].shape == (u.n_frames, 16, 80)
    assert f["f0q"].min() >= 0 and f["f0q"].max() <= 256
print({k: v.shape for k, v in utts[0].data["feats"].items()})
print("log-F0 mean/std per voice:", {v: tuple(round(x, 3) for x in s) for v, s in info["f0_stats"].items()})

# %%
u = next((u for u in train_utts if u.name.startswith("tts")), train_utts[0])
f = u.data["feats"]
t_frames = (np.arange(u.n_frames) + 0.5) / 25
fig = make_subplots(rows=3, cols=1, shared_xaxes=True, row_heights=[0.2, 0.55, 0.25], vertical_spacing=0.03)
wav_t = np.arange(len(u.audio))[::8] / 16000
fig.add_trace(go.Scattergl(x=wav_t, y=u.audio[::8], line=dict(width=0.5), name="waveform"), 1, 1)
fig.add_trace(go.Heatmap(x=t_frames, z=f["mel"].T, colorscale="Viridis", showscale=False, name="mel"), 2, 1)
for ph in u.phonemes:
    if ph.phone != "SIL":
        fig.add_annotation(x=(ph.start + ph.end) / 2, y=78, text=ph.phone, showarrow=False, row=2, col=1,
                           font=dict(color="white", size=9))
fig.add_trace(go.Scatter(x=t_frames, y=np.where(f["f0"] > 0, f["f0"], np.nan), name="F0 (Hz)"), 3, 1)
fig.update_layout(height=520, title=f"{u.name}: waveform, SpeechSplit mel with phones, RAPT F0", showlegend=False)
fig.update_xaxes(title_text="time (s)", row=3, col=1)
save_figure(fig, run_dir, NB, "clip_mel_phones")
fig.show()

# %% [markdown]
# The features go into each clip folder as `aud_<kind>.npy`, described (shape, dtype, meaning) in its
# `dataset.json`, so later notebooks load them: `clip.audio_features("mel_win")`.

# %%
for u in utts:
    AC.write_clip_features(u)
c0 = corpus.clips()[0]  # opened afresh: its dataset.json now lists the aud_* files
assert c0.audio_features("mel").shape == (c0.n_frames, 80)
for name, spec in c0.meta["files"].items():
    if name.startswith("aud_"):
        print(f"{name:18s} {str(spec['shape']):16s} {spec['description']}")

# %% [markdown]
# ## 2.3 SpeechSplit: three bottlenecks (disentangled-audio NeRF Eq. 5–6)
# $$A_c = E_c(C_c),\quad A_r = E_r(C_r),\quad A_p = E_p(C_p),\qquad \hat S = D(A_c, A_r, A_p)$$
# The content encoder sees the mel **randomly resampled** in time (segments of 19–31 frames, each
# stretched by 0.5–1.5×, at its input and after every conv), so its code cannot keep the timing; the
# pitch encoder sees the normalised F0 resampled the same way; the rhythm encoder sees the original
# mel but through a 2-d code. The decoder must put content, timing and pitch back together — so
# each code is pushed to carry what only it can. Below: one mel and the same mel after one random
# resampling (what $E_c$ sees in training).

# %%
from talklib.audio import speechsplit as SS

u_demo = train_utts[0]
mel = torch.from_numpy(u_demo.data["ss"]["mel"][:250]).T[None]
pos = SS.random_resample_index(mel.shape[-1], torch.Generator().manual_seed(seed))[None]
resampled = SS.resample_time(mel, pos)[0].numpy()
fig = make_subplots(rows=1, cols=2, subplot_titles=("mel (what E_r sees)", "randomly resampled (what E_c sees)"))
fig.add_trace(go.Heatmap(z=mel[0].numpy(), colorscale="Viridis", showscale=False), 1, 1)
fig.add_trace(go.Heatmap(z=resampled, colorscale="Viridis", showscale=False), 1, 2)
fig.update_layout(height=300)
save_figure(fig, run_dir, NB, "random_resampling")
fig.show()

# %%
cfg = SS.SpeechSplitConfig(conv_content=audio_ss_conv_content, conv_pitch=audio_ss_conv_pitch,
                           conv_rhythm=audio_ss_conv_rhythm, dec_dim=audio_ss_dec_dim, dec_layers=audio_ss_dec_layers,
                           n_speakers=len(info["voices"]))
torch.manual_seed(seed)
ssplit = SS.SpeechSplit(cfg)
t0 = time.time()
ss_losses = SS.train_speechsplit(ssplit, [u.data["ss"] for u in train_utts], audio_ss_steps, audio_ss_batch,
                                 audio_ss_crop, audio_ss_lr, seed, dev)
timings["speechsplit_s"] = time.time() - t0
ssplit = ssplit.cpu()
SS.save_speechsplit(ssplit, f"{run_dir}/models/02_speechsplit.pt")
for u in utts:
    u.data["codes"] = SS.codes_per_frame(SS.codes_of(ssplit, u.data["ss"]["mel"], u.data["ss"]["f0_onehot"]), u.n_frames)
px.line(y=ss_losses, log_y=True, labels={"x": "step", "y": "MSE(S_hat, S)"}, title="SpeechSplit training").show()
assert ss_losses[-1] < 0.5 * ss_losses[0]

# %% [markdown]
# ## 2.4 A DeepSpeech-like content baseline
# AD-NeRF's audio is DeepSpeech's per-character logits, 16 steps of 50 Hz per frame (`[N, 16, 29]`).
# We train a small recogniser (2 convs + BiGRU) on the corpus's phone timelines instead; its softmax
# posteriors over 40 phones, windowed the same way, are `aud_phon_win.npy` `[N, 16, 40]`.

# %%
from talklib.audio import recognizer as AR

rec_items = lambda us: [{"stream": u.data["stream"], "labels": u.data["labels50"]} for u in us]  # noqa: E731
torch.manual_seed(seed)
recognizer = AR.PhonemeRecognizer(hidden=audio_rec_hidden)
t0 = time.time()
rec_losses = AR.train_recognizer(recognizer, rec_items(train_utts), audio_rec_steps, seed=seed, device=dev)
timings["recognizer_s"] = time.time() - t0
recognizer = recognizer.cpu()
rec_acc = AR.frame_accuracy(recognizer, rec_items(test_utts))
for u in utts:
    u.data["phon_win"] = AR.posterior_windows(recognizer, u.data["stream"])
print(f"held-out frame accuracy of the recogniser: {rec_acc:.3f}")
px.line(y=rec_losses, labels={"x": "step", "y": "cross-entropy"}, title="phoneme recogniser training").show()

# %% [markdown]
# ## 2.5 What does each code carry? Linear probes on held-out clips
# A linear classifier (phone) and a linear regressor (speaker-normalised log-F0 on stable voiced
# frames) are fit on the training clips' per-frame representations and scored on the held-out clips
# (other voices, other sentences). If the bottlenecks work, the **pitch** code predicts F0 far better
# than the content code, and — given enough training — the **content** code predicts phones better
# than the rhythm code.

# %%
reps = {
    "MFCC": lambda u: u.data["feats"]["mfcc"],
    "recogniser (DeepSpeech-like)": lambda u: u.data["phon_win"][:, 7:9].mean(1),
    "SpeechSplit content A_c": lambda u: u.data["codes"]["content"],
    "SpeechSplit rhythm A_r": lambda u: u.data["codes"]["rhythm"],
    "SpeechSplit pitch A_p": lambda u: u.data["codes"]["pitch"],
}
t0 = time.time()
probes = AC.probe_tables(train_utts, test_utts, reps)
timings["probes_s"] = time.time() - t0
print(f"{'representation':32s} {'phone acc':>9s} {'F0 R²':>7s}")
for name in reps:
    print(f"{name:32s} {probes['phone_acc'][name]:9.3f} {probes['f0_r2'][name]:7.3f}")
print(f"{'(always the most frequent phone)':32s} {probes['majority']:9.3f}")

# %%
pa, r2 = probes["phone_acc"], probes["f0_r2"]
# pitch sits in A_p more than in A_c. Seeds 0-4 of the small preset: R²(A_p) 0.49-0.77, R²(A_p) - R²(A_c)
# 0.43-0.67 (benchmarks/small_preset_seeds.md); seed 1's speaker is the hard one for every F0 probe. On another
# AMD EPYC machine (2026-12-06) seed 0 gave R²(A_c) 0.53 and a gap of only 0.22 (A_p 0.75): how much F0 the
# content code keeps depends on the float rounding of SpeechSplit's training, so the bar is the gap > 0.1
assert r2["SpeechSplit pitch A_p"] > 0.3 and r2["SpeechSplit pitch A_p"] > r2["SpeechSplit content A_c"] + 0.1, r2
assert pa["recogniser (DeepSpeech-like)"] > probes["majority"] + 0.3, (pa, probes["majority"])
assert pa["MFCC"] > probes["majority"] + 0.2, (pa, probes["majority"])
print(f"content minus rhythm phone accuracy: {pa['SpeechSplit content A_c'] - pa['SpeechSplit rhythm A_r']:+.3f}")

# %% [markdown]
# Which code does the decoder actually use? Take one code away (replace it by its mean over all
# frames) and decode the held-out clips again: a code the decoder relies on raises the error, one it
# ignores leaves it where it was.

# %%
reliance = SS.code_reliance(ssplit, [u.data["ss"] for u in test_utts])
print("held-out MSE(S_hat, S):", {k: round(v, 4) for k, v in reliance.items()})

# %% [markdown]
# **Reading the table.** The pitch bottleneck works at once: $A_p$ predicts the normalised F0 of
# unseen voices (R² well above the content code's), and that is asserted. The content code does
# **not** disentangle at the `small` preset, and this notebook does not claim it: its phone probe is
# on a par with the 2-d rhythm code's (a few points above or below it, depending on the seed), and the
# pitch code scores on phones too, because "unvoiced" is phonetic (fricatives, stops, silence). The
# cell above says why: the decoder rebuilds the mel from the rhythm code — taking $A_c$ away leaves
# the error where it was, taking $A_r$ away ruins it. The rhythm code is the only one the decoder sees
# on the true time axis; the content code arrives randomly resampled, and learning to re-time it is
# what SpeechSplit's long training (800k steps on VCTK) buys. At this size neither a longer schedule
# (the content code then starts to carry F0), nor shorter crops (less drift), narrower or wider
# decoders and rhythm encoders, dropping the speaker one-hot, nor three times more speech changed
# that (each measured with the probes above), and half the steps without resampling first (so that the
# decoder learns to read $A_c$ before it must re-time it) raised the gap only to +0.01..+0.10 over seeds
# 0–3 while letting F0 into $A_c$ (`benchmarks/RESULTS.md`, "SpeechSplit at the small preset"). The
# content-vs-rhythm gap is recorded in the metrics,
# not asserted. The DeepSpeech-like recogniser — supervised with the phone timeline — is the strong
# content feature here, which is why AD-NeRF-style pipelines lean on a recogniser.

# %% [markdown]
# ## 2.6 Code swaps
# Two utterances of the *same sentence* by two voices at different speaking rates and pitch (A and B).
# Decoding A's codes with one code taken from B should change only what that code carries: with B's
# rhythm the timing should follow B, with B's pitch the harmonics move, the words stay.

# %%
from talklib.audio import features as AF
from talklib.audio.tts import synthesize
from talklib.data.dataset import Phoneme

sentence = "She sells sea shells by the sea shore."
par = {}
for key, voice, wpm, pitch in (("A", "us_m", 130, 30), ("B", "us_f", 190, 75)):
    audio, tl = synthesize(sentence, voice, rate_wpm=wpm, pitch=pitch)
    v = voice if voice in info["voices"] else info["voices"][0]
    ss_in = SS.speechsplit_inputs(audio, info["f0_stats"].get(v), (audio_f0_min, audio_f0_max))
    par[key] = {"ss": ss_in, "codes": SS.codes_of(ssplit, ss_in["mel"], ss_in["f0_onehot"]),
                "spk": np.eye(len(info["voices"]), dtype=np.float32)[info["voices"].index(v)],
                "phonemes": [Phoneme(*t) for t in tl]}
recon = {
    "A (reconstructed)": SS.reconstruct(ssplit, par["A"]["codes"], par["A"]["spk"]),
    "A with B's rhythm": SS.reconstruct(ssplit, SS.swap_codes(par["A"]["codes"], par["B"]["codes"], ("rhythm",)), par["A"]["spk"]),
    "A with B's pitch": SS.reconstruct(ssplit, SS.swap_codes(par["A"]["codes"], par["B"]["codes"], ("pitch",)), par["A"]["spk"]),
}
panels = {"A (input)": par["A"]["ss"]["mel"], "B (input)": par["B"]["ss"]["mel"], **recon}
fig = make_subplots(rows=len(panels), cols=1, shared_xaxes=True, subplot_titles=list(panels), vertical_spacing=0.04)
for i, (name, m) in enumerate(panels.items()):
    fig.add_trace(go.Heatmap(z=m.T, colorscale="Viridis", showscale=False, zmin=0, zmax=1), i + 1, 1)
fig.update_layout(height=900, title="code swaps (x: mel frames at 62.5 Hz)")
save_figure(fig, run_dir, NB, "code_swaps")
fig.show()

# %% [markdown]
# A number for the rhythm swap: the correlation of each output's loudness envelope (mean mel per
# frame) with A's and with B's. A's reconstruction should follow A; with B's rhythm code the output
# should move toward B.

# %%
def envelope_corr(m, ref):
    n = min(len(m), len(ref))
    return float(np.corrcoef(m[:n].mean(1), ref[:n].mean(1))[0, 1])


swap_table = {name: (envelope_corr(m, par["A"]["ss"]["mel"]), envelope_corr(m, par["B"]["ss"]["mel"]))
              for name, m in recon.items()}
print(f"{'output':20s} {'corr with A':>11s} {'corr with B':>11s}")
for name, (ca, cb) in swap_table.items():
    print(f"{name:20s} {ca:11.3f} {cb:11.3f}")
assert swap_table["A (reconstructed)"][0] > swap_table["A (reconstructed)"][1]
assert swap_table["A with B's rhythm"][1] > swap_table["A with B's rhythm"][0]

# %% [markdown]
# ## 2.7 Contrastive audio–mouth sync (DFA-NeRF Eq. 3)
# $$\mathcal L_{con} = -\frac1N\sum_i y_i \log d(f_m, f_a) + (1-y_i)\log\big(1-d(f_m, f_a^-)\big),\qquad
# d = \frac{f_a\cdot f_m}{\lVert f_a\rVert\,\lVert f_m\rVert}$$
# $f_a$: a CNN over the 16-step mel window of a frame; $f_m$: an MLP over 5 frames of the
# ground-truth mouth expression (jaw, lips, pucker, stretch, smile ...). Both end in a ReLU, so the
# cosine is a probability. Negatives: the same clip shifted by 1–10 frames, or another clip.
# Adam with a one-cycle learning rate (warm-up, then annealing to ~0), so the encoders settle.
# Test: for every frame of the held-out clips, which of the 21 offsets $-10..10$ scores highest?

# %%
from talklib.audio import contrastive as CT

_, mouth_stats = CT.mouth_features(np.concatenate([u.exp for u in train_utts]))
sync_items = lambda us: [CT.prepare(u.data["feats"]["mel_win"], CT.mouth_features(u.exp, *mouth_stats)[0]) for u in us]  # noqa: E731
torch.manual_seed(seed)
audio_enc = CT.AudioEncoder(dim=audio_sync_dim)
mouth_enc = CT.MouthEncoder(len(CT.MOUTH_COMPONENTS), dim=audio_sync_dim)
t0 = time.time()
sync_losses = CT.train_sync(audio_enc, mouth_enc, sync_items(train_utts), audio_sync_steps,
                            max_shift=audio_sync_max_shift, seed=seed, device=dev)
timings["sync_s"] = time.time() - t0
audio_enc, mouth_enc = audio_enc.cpu(), mouth_enc.cpu()
sync = CT.offset_accuracy(audio_enc, mouth_enc, sync_items(test_utts), audio_sync_max_shift)
print(f"offset accuracy per frame {sync['frame_acc']:.3f}, per clip {sync['clip_acc']:.3f}, chance {sync['chance']:.3f}")
fig = make_subplots(rows=1, cols=2, subplot_titles=("training loss (Eq. 3)", "held-out score vs offset"))
fig.add_trace(go.Scatter(y=sync_losses, name="BCE"), 1, 1)
fig.add_trace(go.Scatter(x=sync["offsets"], y=sync["curve"], mode="lines+markers", name="mean d(f_m, f_a)"), 1, 2)
fig.update_xaxes(title_text="step", row=1, col=1)
fig.update_xaxes(title_text="audio offset (frames)", row=1, col=2)
fig.update_layout(height=320, showlegend=False)
save_figure(fig, run_dir, NB, "sync_offset_curve")
fig.show()
# small preset, seeds 0-4, when this bar was set: frame_acc 0.27-0.42 (5.6-8.9x chance)
assert sync["frame_acc"] > 3 * sync["chance"], (sync["frame_acc"], sync["chance"])
assert int(np.argmax(sync["curve"])) == audio_sync_max_shift

# %% [markdown]
# ## 2.8 Features for the NeRF notebooks
# Each clip folder now also gets the learned features: `aud_phon_win` (N, 16, 40, DeepSpeech-like),
# `aud_ssplit` (N, 82: content 16 | rhythm 2 | pitch 64, Eq. 7's $a_c, a_r, a_p$) and `aud_sync`
# (N, dim: DFA-NeRF's synchronised $f_a$), and beside them the three networks that computed them with
# the voice's F0 statistics, `aud_extractors.pt` (`talklib.condition.extract`): a NeRF trained on these
# features carries them in its checkpoint, so `python -m talklib render` computes the same features
# from any driving audio (notebook 05).

# %%
from talklib.condition import extract as CX

with torch.no_grad():
    for u in utts:
        codes = u.data["codes"]
        f_a = audio_enc(torch.from_numpy(u.data["feats"]["mel_win"])).numpy()
        AC.write_clip_features(u, {"phon_win": u.data["phon_win"],
                                   "ssplit": np.concatenate([codes["content"], codes["rhythm"], codes["pitch"]], 1),
                                   "sync": f_a.astype(np.float32)})
        if u.path is not None:
            CX.save_bundle(Path(u.path) / CX.BUNDLE_NAME,
                           CX.make_bundle(ssplit, recognizer, audio_enc, info["f0_stats"][u.voice],
                                          (audio_f0_min, audio_f0_max)))
c0 = corpus.clips()[0]
print({k: c0.audio_features(k).shape for k in ("mel", "mel_win", "phon_win", "ssplit", "sync", "f0q")})
assert c0.audio_features("ssplit").shape == (c0.n_frames, sum(cfg.code_dims))

# %%
timings["total_s"] = time.time() - t_start
metrics = {
    "n_train_utterances": len(train_utts), "n_test_utterances": len(test_utts),
    "speechsplit_final_loss": ss_losses[-1], "recognizer_frame_acc": rec_acc,
    "probe_majority_acc": probes["majority"],
    "probe_content_minus_rhythm_phone_acc": pa["SpeechSplit content A_c"] - pa["SpeechSplit rhythm A_r"],
    **{f"probe_phone_acc/{k}": v for k, v in probes["phone_acc"].items()},
    **{f"probe_f0_r2/{k}": v for k, v in probes["f0_r2"].items()},
    "swap_rhythm_corr_A": swap_table["A with B's rhythm"][0], "swap_rhythm_corr_B": swap_table["A with B's rhythm"][1],
    "recon_corr_A": swap_table["A (reconstructed)"][0], "recon_corr_B": swap_table["A (reconstructed)"][1],
    "sync_offset_frame_acc": sync["frame_acc"], "sync_offset_clip_acc": sync["clip_acc"], "sync_chance": sync["chance"],
}
write_metrics(run_dir, NB, metrics, timings)
metrics
