"""Presets and the parameter schema the notebooks are run with.

Every size a notebook uses comes from here: the notebook's ``parameters`` cell lists the names it
reads (with the ``small`` value as its default), and ``python -m talklib reproduce`` fills them from a
preset plus the user's overrides. ``validate`` refuses unknown names, wrong types and values outside
a parameter's range or form (``RULES``) *before* anything runs, because papermill alone only warns.

Two presets:

- ``small``: 2 CPU cores, the whole pipeline in about 15 minutes (what ``make test`` and
  ``make reproduce`` use);
- ``full``: one GPU, paper-scale sizes.

This module imports nothing heavy (no torch) so that the command line can validate fast.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from typing import Any

from talklib.errors import UserError

PRESETS = ("small", "full")


class ConfigError(UserError, ValueError):
    """A bad preset, parameter name or value. Its message is one line that says what to do."""


@dataclass(frozen=True)
class Param:
    name: str
    type: type
    small: Any
    full: Any
    help: str


# One list, grouped by the notebook that owns the parameter. A parameter used by several notebooks
# lives in "common". Keep names plain and prefixed by their concern (synth_, audio_, nerf_, sync_ ...).
PARAMS: list[Param] = [
    # --- common: every notebook ------------------------------------------------------------------
    Param("run_dir", str, "runs/dev", "runs/dev", "folder this run writes metrics, figures and videos to"),
    Param("data_dir", str, "data/synthetic/small", "data/synthetic/full",
          "the synthetic speaker's dataset folder (made by notebook 01 if missing)"),
    Param("preset", str, "small", "full", "the preset these values come from (small or full)"),
    Param("seed", int, 0, 0, "seed for every random number generator"),
    Param("device", str, "auto", "auto", "torch device: auto (CUDA when present), cpu, cuda, cuda:N"),
    Param("resume", bool, False, False, "keep an interrupted run's checkpoints and continue from them (reproduce --resume sets it)"),
    # --- 01 synthetic speaker and 3DMM priors (issue 3) ------------------------------------------
    Param("synth_size", int, 128, 512, "frame size of the synthetic speaker's videos, pixels (square)"),
    Param("synth_train_seconds", float, 8.0, 180.0, "seconds of speech in each identity's training clip"),
    Param("synth_test_seconds", float, 3.0, 20.0, "seconds of speech in each testA/testB clip"),
    Param("synth_identities", int, 1, 4, "identities with a training clip (the first is the photo's own face)"),
    Param("synth_test_identities", int, 0, 1, "held-out identities (testA/testB clips only, for single-shot tests)"),
    Param("synth_speech_clips", int, 6, 60, "speech-only TTS clips (audio, phonemes, truth; no frames) besides ARCTIC"),
    Param("synth_views", str, "yaw_m30,yaw_p30,pitch_p15,pitch_m15", "yaw_m20,yaw_p20,pitch_p15",
          "held-out novel views rendered for every frame (yaw_m30, yaw_p30, yaw_m20, yaw_p20, yaw_m15, yaw_p15, "
          "pitch_p15, pitch_m15); the full preset keeps three: its corpus renders about 260 frames/s on one GPU "
          "(benchmarks/RESULTS.md, 'The full preset on one GPU'), so six views (165 000 frames) took notebook 01 past "
          "its 10 minutes"),
    Param("synth_lighting_drift", bool, True, True, "slow drift of the SH lighting over each clip"),
    Param("nb01_detect_frames", int, 6, 60, "frames re-rendered at nb01_detect_size to test mediapipe on renders"),
    Param("nb01_detect_size", int, 256, 512, "render size for the mediapipe detection check (>= 256)"),
    Param("nb01_fit_frames", int, 40, 200, "synthetic frames the landmark fitting is measured on"),
    # --- 02 audio disentanglement (issue 4) ------------------------------------------------------
    Param("audio_test_every", int, 3, 5, "hold out every N-th speech-only clip (plus testA/testB clips) for probes and sync"),
    Param("audio_f0_min", float, 60.0, 60.0, "lowest F0 RAPT searches, Hz"),
    Param("audio_f0_max", float, 400.0, 400.0, "highest F0 RAPT searches, Hz"),
    Param("audio_ss_steps", int, 600, 3000, "SpeechSplit training steps (full: 85 ms a step on an H200, so 20 000 "
          "would take 28 minutes; at 2500-5000 steps the full-size model already reconstructs the training mels, "
          "benchmarks/RESULTS.md)"),
    Param("audio_ss_batch", int, 8, 16, "SpeechSplit batch size (random crops)"),
    Param("audio_ss_crop", int, 128, 192, "SpeechSplit crop length, mel frames (62.5 Hz)"),
    Param("audio_ss_conv_content", int, 64, 512, "SpeechSplit content-encoder conv width"),
    Param("audio_ss_conv_pitch", int, 32, 256, "SpeechSplit pitch-encoder conv width"),
    Param("audio_ss_conv_rhythm", int, 32, 128, "SpeechSplit rhythm-encoder conv width"),
    Param("audio_ss_dec_dim", int, 96, 512, "SpeechSplit decoder BiLSTM width"),
    Param("audio_ss_dec_layers", int, 1, 3, "SpeechSplit decoder BiLSTM layers"),
    Param("audio_ss_lr", float, 3e-3, 1e-4, "SpeechSplit learning rate (Adam)"),
    Param("audio_rec_steps", int, 250, 5000, "phoneme-recognizer training steps"),
    Param("audio_rec_hidden", int, 64, 256, "phoneme-recognizer width"),
    Param("audio_sync_steps", int, 1000, 5000, "contrastive sync (DFA-NeRF Eq. 3) training steps"),
    Param("audio_sync_dim", int, 64, 128, "contrastive embedding size f_a / f_m"),
    Param("audio_sync_max_shift", int, 10, 10, "largest time shift (frames) for negatives and the offset test"),
    # --- 03 conditional NeRF (issue 5) -----------------------------------------------------------
    Param("nerf_size", int, 64, 512, "frame size the NeRF is fitted and scored at, pixels (frames are resized)"),
    Param("nerf_steps", int, 1200, 13000, "NeRF training steps (the learning rate decays to 1/10 over them)"),
    Param("nerf_frames_per_step", int, 1, 2, "whole training frames rendered per NeRF step"),
    Param("nerf_fit_seconds", float, 3600.0, 3600.0,
          "safety limit: stop NeRF training after this many seconds (the fit is meant to end at nerf_steps; "
          "notebook 03 refuses a fit cut short, since its results would depend on the machine's speed)"),
    Param("nerf_lr", float, 0.01, 0.005, "Adam learning rate of the NeRF (tri-planes get twice this)"),
    Param("nerf_samples", int, 32, 48, "samples per ray between the head box's near and far bounds"),
    Param("nerf_upsample", int, 2, 4, "H_u upsampling factor: the field is rendered at size / factor"),
    Param("nerf_feat_dim", int, 8, 16, "channels of the feature z the field renders (3 = colour only)"),
    Param("nerf_hidden", int, 32, 64, "width of the field's MLPs"),
    Param("nerf_cond_code", int, 8, 32, "size of the per-frame condition code the field sees"),
    Param("nerf_deform", bool, False, True, "condition-dependent deformation of the canonical points"),
    Param("nerf_plane_res", str, "16,32,64", "64,128,256", "tri-plane resolutions, comma-separated"),
    Param("nerf_occ_res", int, 32, 128, "occupancy grid resolution (cells per side)"),
    Param("nerf_a2e_steps", int, 300, 3000, "training steps of the audio -> expression network"),
    Param("nerf_video_frames", int, 50, 250, "frames of the audio-driven video rendered at the end"),
    Param("nerf_score_size", int, 128, 512, "frames are upscaled to this size for the landmark metrics of the "
          "audio-driven video (mediapipe needs a face of about 100 px or more)"),
    Param("nerf_exp_dims", int, 12, 12, "expression numbers the NeRF is conditioned on (12 = the named ones, EXP_NAMES)"),
    Param("nerf_illu", bool, True, True, "also condition on the SH lighting f_illu (enters the colour linearly)"),
    Param("nerf_mask_weight", float, 0.0, 0.0, "weight of the opacity-vs-head-mask loss (0 = off)"),
    Param("nerf_depth_weight", float, 1.0, 1.0, "weight of the 3DMM depth-prior loss (0 = off; geometry for novel views)"),
    Param("nerf_view_dir", bool, False, False, "colour depends on the view direction (off: Lambertian, views extrapolate)"),
    Param("nerf_box_scale", float, 2.0, 1.2, "head box half-size over the landmarks' half-extent (x 1.25)"),
    # --- 04 lip-sync discriminator and evaluation (issue 6) --------------------------------------
    Param("sync_steps", int, 500, 4000, "lip-sync expert training steps"),
    Param("sync_batch", int, 64, 64, "lip-sync expert batch (windows; each brings an off-sync partner)"),
    Param("sync_lr", float, 2e-3, 1e-3, "lip-sync expert peak learning rate (Adam, one-cycle)"),
    Param("sync_loss", str, "both", "both", "expert loss: cosine (NeRF-3DTalker Eq. 2), triplet (S3D-NeRF Eq. 7) or both"),
    Param("sync_width", int, 16, 32, "channels of the expert's first conv layer (doubling per stage)"),
    Param("sync_dim", int, 128, 256, "embedding size of the lip-sync expert"),
    Param("sync_speech_clips", int, -1, -1, "speech-only clips rendered as extra video for the expert (-1 = all)"),
    Param("sync_speech_renders", int, 2, 1, "renders of each training speech-only clip for the expert, each under "
          "another stretch of the identity's head pose and lighting"),
    Param("sync_test_every", int, 3, 5, "hold out every N-th rendered speech-only clip (with testA/testB) for the offset test"),
    Param("sync_threads", int, 1, 0, "torch CPU threads while training the expert (0 = leave torch's default)"),
    Param("sync_eval_shifts", str, "3,5,7,10", "3,5,7,10", "audio shifts (frames, each +/-) for the offset-recovery test"),
    Param("sync_eval_min_seconds", float, 3.0, 3.0, "held-out clips at least this long count for the offset-recovery target"),
    Param("eval_cpbd_every", int, 2, 1, "CPBD on every k-th frame in the evaluation suite"),
    # --- 05 audio-conditioned NeRF (issue 14) ----------------------------------------------------
    Param("cond_steps", int, 100, 3000, "training steps of each field of notebook 05's tables (every row the same), "
          "each starting from notebook 03's field"),
    Param("cond_audio_dim", int, 32, 64, "size of the audio code AD-NeRF's audio net hands the field"),
    Param("cond_frames", int, 8, 8, "neighbouring frames AD-NeRF's audio attention weighs (1 = no attention)"),
    Param("cond_score_frames", int, 100, 0, "testA frames notebook 05 scores each row on (0 = all)"),
    Param("cond_focus_every", int, 4, 4, "of every k steps of an audio-conditioned field, k - 1 render only the lower "
          "face (AD-NeRF samples its rays in the face box); 0 or 1 = whole frames only"),
    # --- 06 NeRF-3DTalker's prior-aided audio disentanglement (issue 15) --------------------------
    Param("lipwav_steps", int, 240, 5000, "Lip-wav generator training steps (each of the two: with and without L_lip)"),
    Param("lipwav_batch", int, 16, 32, "Lip-wav generator batch (windows of the expert's 5 frames)"),
    Param("lipwav_width", int, 16, 32, "Lip-wav generator's first conv width (doubling per stage)"),
    Param("lipwav_lr", float, 3e-3, 1e-3, "Lip-wav generator learning rate (Adam, cosine decay)"),
    Param("lipwav_lip_weight", float, 0.01, 0.01, "weight of L_lip (NeRF-3DTalker Eq. 2) beside the L1 loss"),
    Param("lipwav_lip_from", float, 0.5, 0.5, "fraction of the steps trained on L1 alone before L_lip joins"),
    Param("regress_steps", int, 600, 4000, "image -> 3DMM expression regressor training steps"),
    Param("regress_width", int, 16, 32, "regressor's first conv width"),
    Param("regress_renders", int, 1500, 20000, "renders of known expressions the regressor learns from"),
    Param("style_batch", int, 16, 32, "StyleNet + FuseNet batch (segments of one clip in one style each)"),
    Param("style_steps", int, 600, 6000, "StyleNet + FuseNet training steps (L_exp, NeRF-3DTalker Eq. 3)"),
    Param("style_width", int, 64, 128, "StyleNet / FuseNet conv width"),
    Param("style_train_styles", int, 400, 2000, "speaking styles the synthetic speech is re-dressed in for training"),
    Param("style_test_styles", int, 4, 8, "unseen speaking styles the disentanglement is measured on"),
    # --- 07 NeRF-3DTalker's local-global standardized space (issue 16) ----------------------------
    Param("au_steps", int, 300, 4000, "AU encoder pre-training steps (L_bce + L_dice, NeRF-3DTalker Eq. 7-8), each of the two"),
    Param("au_batch", int, 32, 32, "AU encoder batch (frames of the training clip)"),
    Param("au_lr", float, 3e-3, 1e-3, "AU encoder learning rate (Adam, cosine decay)"),
    Param("au_width", int, 16, 32, "AU encoder's first conv width (w, 2w, 4w, 4w)"),
    Param("au_dim", int, 16, 32, "size of each AU's feature vector f_AU_i (the codes of S)"),
    Param("au_augment", bool, True, True, "pre-train the AU encoder on frames re-lit and moved at random (the test clips' "
          "light differs)"),
    Param("space_steps", int, 500, 20000, "standardized-space training steps (Eq. 11), each of Table III's three spaces"),
    Param("space_batch", int, 8, 16, "standardized-space batch (frames)"),
    Param("space_lr", float, 3e-3, 1e-3, "standardized-space learning rate (Adam, cosine decay)"),
    Param("space_width", int, 8, 32, "global encoder's first conv width (and the decoder's last)"),
    Param("space_n_down", int, 2, 4, "stride-2 stages of the global encoder: a (nerf_size / 2^n)^2 grid of f_glo vectors"),
    Param("space_au_codes", int, 64, 1024, "codes of the AU semantic codebook S (Eq. 9)"),
    Param("space_glo_codes", int, 256, 8192, "codes of the global codebook G (Eq. 10)"),
    Param("space_glo_dim", int, 32, 64, "size of each code of G"),
    Param("space_dead_after", int, 50, 200, "a code of S or G unused for this many steps is moved onto a current encoding"),
    Param("space_beta1", float, 0.25, 0.25, "beta_1 of Eq. (11): weight of the AU features' commitment term"),
    Param("space_beta2", float, 0.25, 0.25, "beta_2 of Eq. (11): weight of the global features' commitment term"),
    Param("space_noise", float, 0.1, 0.1, "std of the Gaussian noise added to frames pushed out of the speaker's space "
          "(frames in [0, 1])"),
    Param("space_blur", float, 1.5, 4.0, "std (pixels) of the Gaussian blur of frames pushed out of the speaker's space"),
    Param("space_exp_scale", float, 2.5, 2.5, "the expression is scaled by this for the exaggerated renders of "
          "notebook 03's field"),
    # --- 08: DFA-NeRF's face attributes, sync on f_m, Transformer GP-VAE ---------------------------------
    Param("motion_dir", str, "data/motion/small", "data/motion/full",
          "the motion-only corpus folder (pose, blinks, landmarks, speech of many identities; made if missing)"),
    Param("motion_identities", int, 24, 300, "identities of the motion-only corpus (DFA-NeRF pre-trains on LRS2 + HDTF)"),
    Param("motion_seconds", float, 40.0, 120.0, "seconds of speech and motion per identity of the motion corpus"),
    Param("motion_pool_sentences", int, 12, 40, "sentences of the TTS pool the motion corpus's speech is joined from"),
    Param("motion_voices", int, 3, 6, "TTS voices of the motion corpus (one per identity, in turn)"),
    Param("motion_persons", int, 3, 4, "identities the cross-modal encoder is fine-tuned on, one each (personalisation)"),
    Param("attr_steps", int, 500, 8000, "face-attribute autoencoder steps (Eq. 2, random swaps)"),
    Param("attr_batch", int, 256, 512, "face-attribute autoencoder batch (pairs of frames)"),
    Param("attr_width", int, 128, 256, "hidden width of the face-attribute autoencoder's MLPs"),
    Param("attr_mouth_dim", int, 16, 16, "size of the mouth embedding f_m"),
    Param("attr_eye_dim", int, 4, 4, "size of the eye embedding f_e"),
    Param("msync_steps", int, 400, 4000, "audio-lip sync steps against f_m (Eq. 3)"),
    Param("msync_dim", int, 32, 64, "size of the sync embeddings f_a, f_m (Eq. 3)"),
    Param("vae_steps", int, 300, 8000, "pre-training steps of each VAE of Table 4 (Eq. 4-8) on the motion corpus"),
    Param("vae_batch", int, 16, 64, "VAE batch (windows)"),
    Param("vae_window", int, 48, 128, "frames per training window of the VAEs and the cross-modal encoder"),
    Param("vae_width", int, 64, 128, "width of the VAEs' and cross-modal encoder's layers"),
    Param("vae_z", int, 8, 16, "latent size per frame of the VAEs"),
    Param("vae_length", float, 8.0, 8.0, "base length scale (frames) of the GP prior's Cauchy kernel (Eq. 7)"),
    Param("vae_beta", float, 0.2, 0.2, "weight of the KL term (Eq. 8)"),
    Param("vae_lr", float, 2e-3, 1e-3, "learning rate of the VAEs and the cross-modal encoder (Adam, cosine decay)"),
    Param("cme_steps", int, 100, 4000, "fine-tuning steps of the cross-modal encoder (Eq. 9) per identity"),
    Param("cme_bop", int, 8, 16, "frames of the Beginning Of Pose (BOP) the cross-modal encoder starts from"),
    Param("dfa_steps", int, 200, 3000, "training steps of notebook 08's DFA-NeRF field on [f_a, f_e] (Eq. 10-11)"),
    Param("dfa_focus_every", int, 2, 2, "of every k steps of notebook 08's field, k - 1 render only the lower face "
          "(the eyes, which f_e drives, are outside it: 2 = every other step the whole frame)"),
    # --- 09: S3D-NeRF, the single-shot model (issue 18) ------------------------------------------------
    Param("faces_dir", str, "data/faces/small", "data/faces/full",
          "the multi-identity corpus folder (many identities + held-out ones; made if missing)"),
    Param("faces_identities", int, 20, 160, "identities S3D-NeRF trains on (the paper: HDTF's training split)"),
    Param("faces_test_identities", int, 4, 8, "held-out identities, never seen in training (single-shot tests)"),
    Param("faces_seconds", float, 4.0, 8.0, "seconds of speech (and video) per identity's training clip"),
    Param("faces_test_seconds", float, 3.0, 6.0, "seconds of each held-out identity's test clip (unseen sentences)"),
    Param("s3d_size", int, 64, 256, "frame size of the multi-identity corpus and S3D-NeRF (the paper: 256)"),
    Param("s3d_sr_factor", int, 2, 4, "the NeRF renders the inner face at s3d_size / this; super-resolution does the rest"),
    Param("s3d_samples", int, 12, 32, "samples per ray in the head box"),
    Param("s3d_window", int, 24, 52, "the NeRF renders this square of the coarse image around the inner face"),
    Param("s3d_plane_channels", int, 8, 16, "channels of each tri-plane, every level (Eq. 1)"),
    Param("s3d_width", int, 24, 64, "width of the appearance encoder's first block (then x1.5, x2, x3)"),
    Param("s3d_steps", int, 80, 1200, "training steps of each model of Table 3 (every row the same; the full preset's "
          "five rows take about 7 minutes on one H200, benchmarks/RESULTS.md)"),
    Param("s3d_batch", int, 4, 8, "(source, target) pairs per step"),
    Param("s3d_lr", float, 2e-3, 1e-3, "learning rate (Adam, cosine decay), generator and discriminator"),
    Param("s3d_per_weight", float, 0.01, 0.01, "lambda_per of Eq. (9)"),
    Param("s3d_adv_weight", float, 1.0, 1.0, "lambda_adv of Eq. (9)"),
    Param("s3d_sync_weight", float, 0.5, 0.5, "lambda_sync^gen of Eq. (9)"),
    Param("s3d_deform_weight", float, 0.001, 0.001, "lambda_deform of Eq. (9)"),
    Param("s3d_adv_from", float, 0.5, 0.3, "fraction of the steps trained before L_adv and the discriminator join"),
    Param("s3d_sync_every", int, 4, 4, "every k-th step renders T consecutive frames for L_sync (Eq. 8); 0 = never"),
    Param("s3d_rows", str, "full,nd,fcd,none,nosync", "full,nd,fcd,none,nosync",
          "Table 3's rows to train (full, nd, fcd, none = w/o Deform, nosync = w/o Lip Sync)"),
    Param("s3d_nerf_steps", int, 200, 3000, "steps of the per-speaker NeRF fitted to a held-out identity (Table 2)"),
    Param("s3d_score_frames", int, 50, 0, "frames of each held-out identity's test clip scored in Tables 2-3 (0 = all)"),
    # --- 10: the scorecard (issue 20) -----------------------------------------------------------------
    Param("score_frames", int, 64, 0, "testA frames each system renders and is scored on in the side-by-side benchmark "
          "(0 = all)"),
    Param("score_runs", str, "", "", "other run folders, comma-separated (e.g. runs/full), whose tables the scorecard "
          "shows beside this run's; empty: this run only"),
]

_BY_NAME = {p.name: p for p in PARAMS}


# --- the valid values of each parameter ------------------------------------------------------------
# Types alone let ``nerf_steps=-5`` or ``nerf_size=100000`` through to fail deep inside a notebook, so
# every parameter also has a rule: a range, a set of choices, or a form (a comma-separated list). The
# ranges are what the code can run, generously (not what gives good results). ``check_together``
# holds the rules that tie two parameters.

class Rule:
    """The valid values of one parameter; ``form`` says them in words, for the one-line error."""

    form = "any value"

    def ok(self, value: Any) -> bool:
        return True


class Flag(Rule):
    form = "true or false"

    def ok(self, value):
        return isinstance(value, bool)


@dataclass(frozen=True)
class Range(Rule):
    lo: float
    hi: float

    @property
    def form(self) -> str:
        return f"a number from {self.lo:g} to {self.hi:g}"

    def ok(self, value):
        return not isinstance(value, bool) and math.isfinite(value) and self.lo <= value <= self.hi


@dataclass(frozen=True)
class IntRange(Range):
    @property
    def form(self) -> str:
        return f"a whole number from {int(self.lo)} to {int(self.hi)}"


@dataclass(frozen=True)
class OneOf(Rule):
    choices: tuple

    @property
    def form(self) -> str:
        return "one of " + ", ".join(str(c) for c in self.choices)

    def ok(self, value):
        return value in self.choices


@dataclass(frozen=True)
class ListOf(Rule):
    """A comma-separated list of ``least``..``most`` items, each valid by ``item`` (text, or ints)."""

    item: Rule
    least: int = 1
    most: int = 16
    ints: bool = False

    @property
    def form(self) -> str:
        what = "whole numbers" if self.ints else "names"
        return f"{self.least} to {self.most} comma-separated {what}, each {self.item.form}"

    def ok(self, value):
        parts = [x.strip() for x in value.split(",")]
        if not self.least <= len(parts) <= self.most or not all(parts):
            return False
        if self.ints:
            if not all(re.fullmatch(r"[+-]?\d+", x) for x in parts):
                return False
            parts = [int(x) for x in parts]
        return all(self.item.ok(x) for x in parts)


class Path_(Rule):
    form = "a folder path (not empty, no line breaks)"

    def ok(self, value):
        return bool(value.strip()) and not any(c in value for c in "\n\r\0")


class Paths(Rule):
    form = "nothing, or comma-separated folder paths"

    def ok(self, value):
        parts = [x.strip() for x in value.split(",")]
        return value.strip() == "" or all(x and not any(c in x for c in "\n\r\0") for x in parts)


class Device(Rule):
    form = "auto, cpu, cuda or cuda:N"

    def ok(self, value):
        return re.fullmatch(r"auto|cpu|cuda|cuda:\d+", value) is not None


# the synthetic speaker's held-out cameras (talklib.speaker.clip.VIEW_ANGLES, a test keeps them equal)
VIEW_NAMES = ("front", "yaw_m30", "yaw_p30", "yaw_m20", "yaw_p20", "yaw_m15", "yaw_p15", "pitch_p15", "pitch_m15")
_STEPS = IntRange(1, 10_000_000)
_WIDTH = IntRange(1, 4096)
_LR = Range(1e-8, 1.0)

RULES: dict[str, Rule] = {
    "run_dir": Path_(), "data_dir": Path_(), "preset": OneOf(PRESETS), "seed": IntRange(0, 2**31 - 1),
    "device": Device(), "resume": Flag(),
    "synth_size": IntRange(64, 2048), "synth_train_seconds": Range(1.0, 3600.0),
    "synth_test_seconds": Range(1.0, 600.0), "synth_identities": IntRange(1, 64),
    "synth_test_identities": IntRange(0, 64), "synth_speech_clips": IntRange(0, 10_000),
    "synth_views": ListOf(OneOf(VIEW_NAMES), 1, len(VIEW_NAMES)), "synth_lighting_drift": Flag(),
    "nb01_detect_frames": IntRange(1, 10_000), "nb01_detect_size": IntRange(256, 2048),
    "nb01_fit_frames": IntRange(1, 100_000),
    "audio_test_every": IntRange(2, 1000), "audio_f0_min": Range(20.0, 1000.0), "audio_f0_max": Range(40.0, 2000.0),
    "audio_ss_steps": _STEPS, "audio_ss_batch": IntRange(1, 4096), "audio_ss_crop": IntRange(16, 8192),
    "audio_ss_conv_content": _WIDTH, "audio_ss_conv_pitch": _WIDTH, "audio_ss_conv_rhythm": _WIDTH,
    "audio_ss_dec_dim": _WIDTH, "audio_ss_dec_layers": IntRange(1, 16), "audio_ss_lr": _LR,
    "audio_rec_steps": _STEPS, "audio_rec_hidden": _WIDTH, "audio_sync_steps": _STEPS,
    "audio_sync_dim": _WIDTH, "audio_sync_max_shift": IntRange(1, 100),
    "nerf_size": IntRange(16, 2048), "nerf_steps": _STEPS, "nerf_frames_per_step": IntRange(1, 256),
    "nerf_fit_seconds": Range(1.0, 1e7), "nerf_lr": _LR, "nerf_samples": IntRange(2, 1024),
    "nerf_upsample": OneOf((1, 2, 4, 8, 16)), "nerf_feat_dim": IntRange(3, 256), "nerf_hidden": _WIDTH,
    "nerf_cond_code": IntRange(1, 1024), "nerf_deform": Flag(),
    "nerf_plane_res": ListOf(IntRange(2, 2048), 1, 8, ints=True), "nerf_occ_res": IntRange(4, 512),
    "nerf_a2e_steps": _STEPS, "nerf_video_frames": IntRange(1, 1_000_000), "nerf_score_size": IntRange(64, 2048),
    "nerf_exp_dims": IntRange(1, 79),
    "nerf_illu": Flag(), "nerf_mask_weight": Range(0.0, 1000.0), "nerf_depth_weight": Range(0.0, 1000.0),
    "nerf_view_dir": Flag(), "nerf_box_scale": Range(0.5, 10.0),
    "sync_steps": _STEPS, "sync_batch": IntRange(2, 4096), "sync_lr": _LR,
    "sync_loss": OneOf(("cosine", "triplet", "both")), "sync_width": IntRange(1, 1024), "sync_dim": _WIDTH,
    "sync_speech_clips": IntRange(-1, 100_000), "sync_speech_renders": IntRange(1, 100), "sync_test_every": IntRange(0, 1000),
    "sync_threads": IntRange(0, 1024), "sync_eval_shifts": ListOf(IntRange(1, 100), 1, 32, ints=True),
    "sync_eval_min_seconds": Range(0.0, 3600.0), "eval_cpbd_every": IntRange(1, 10_000),
    "cond_steps": _STEPS, "cond_audio_dim": IntRange(1, 1024), "cond_frames": IntRange(1, 64),
    "cond_focus_every": IntRange(0, 1000), "cond_score_frames": IntRange(0, 1_000_000),
    "lipwav_steps": _STEPS, "lipwav_batch": IntRange(1, 4096), "lipwav_width": IntRange(4, 1024), "lipwav_lr": _LR,
    "lipwav_lip_weight": Range(0.0, 100.0), "lipwav_lip_from": Range(0.0, 1.0), "regress_steps": _STEPS,
    "regress_width": IntRange(4, 1024), "regress_renders": IntRange(2, 1_000_000),
    "style_steps": _STEPS, "style_batch": IntRange(1, 4096), "style_width": IntRange(4, 1024),
    "style_train_styles": IntRange(1, 100_000), "style_test_styles": IntRange(2, 10_000),
    "au_steps": _STEPS, "au_batch": IntRange(1, 4096), "au_lr": _LR, "au_width": IntRange(1, 1024),
    "au_dim": IntRange(1, 1024), "au_augment": Flag(),
    "space_steps": _STEPS, "space_batch": IntRange(1, 4096), "space_lr": _LR, "space_width": IntRange(1, 1024),
    "space_n_down": IntRange(1, 8), "space_au_codes": IntRange(1, 1_000_000), "space_glo_codes": IntRange(1, 1_000_000),
    "space_glo_dim": IntRange(1, 4096), "space_dead_after": _STEPS, "space_beta1": Range(0.0, 100.0),
    "space_beta2": Range(0.0, 100.0), "space_noise": Range(0.0, 1.0), "space_blur": Range(0.0, 100.0),
    "space_exp_scale": Range(0.0, 10.0),
    "motion_dir": Path_(), "motion_identities": IntRange(2, 100_000), "motion_seconds": Range(4.0, 3600.0),
    "motion_pool_sentences": IntRange(1, 40), "motion_voices": IntRange(1, 6), "motion_persons": IntRange(1, 64),
    "attr_steps": _STEPS, "attr_batch": IntRange(2, 65536), "attr_width": _WIDTH, "attr_mouth_dim": IntRange(1, 256),
    "attr_eye_dim": IntRange(1, 256), "msync_steps": _STEPS, "msync_dim": _WIDTH,
    "vae_steps": _STEPS, "vae_batch": IntRange(1, 4096), "vae_window": IntRange(8, 4096), "vae_width": _WIDTH,
    "vae_z": IntRange(1, 256), "vae_length": Range(0.5, 1000.0), "vae_beta": Range(0.0, 100.0), "vae_lr": _LR,
    "cme_steps": _STEPS, "cme_bop": IntRange(1, 1024),
    "dfa_steps": _STEPS, "dfa_focus_every": IntRange(0, 1000),
    "faces_dir": Path_(), "faces_identities": IntRange(2, 100_000), "faces_test_identities": IntRange(1, 1000),
    "faces_seconds": Range(1.0, 3600.0), "faces_test_seconds": Range(1.0, 600.0),
    "s3d_size": OneOf((64, 128, 256, 512)), "s3d_sr_factor": OneOf((1, 2, 4, 8)), "s3d_samples": IntRange(2, 1024),
    "s3d_window": IntRange(4, 1024), "s3d_plane_channels": IntRange(1, 256), "s3d_width": IntRange(4, 1024),
    "s3d_steps": _STEPS, "s3d_batch": IntRange(1, 4096), "s3d_lr": _LR, "s3d_per_weight": Range(0.0, 100.0),
    "s3d_adv_weight": Range(0.0, 100.0), "s3d_sync_weight": Range(0.0, 100.0), "s3d_deform_weight": Range(0.0, 100.0),
    "s3d_adv_from": Range(0.0, 1.0), "s3d_sync_every": IntRange(0, 1000),
    "s3d_rows": ListOf(OneOf(("full", "nd", "fcd", "none", "nosync")), 1, 5), "s3d_nerf_steps": _STEPS,
    "s3d_score_frames": IntRange(0, 1_000_000),
    "score_frames": IntRange(0, 1_000_000), "score_runs": Paths(),
}


def rule(name: str) -> Rule:
    """The rule parameter ``name``'s values must satisfy."""
    _param(name)
    return RULES.get(name, Rule())


def check_together(values: dict[str, Any]) -> None:
    """The rules between parameters, on a whole set of values (a preset with its overrides)."""
    def has(*names):
        return all(n in values for n in names)

    if has("audio_f0_min", "audio_f0_max") and values["audio_f0_min"] >= values["audio_f0_max"]:
        raise ConfigError(f"audio_f0_min ({values['audio_f0_min']:g}) must be below audio_f0_max "
                          f"({values['audio_f0_max']:g})")
    if has("nerf_size", "nerf_upsample") and values["nerf_size"] % values["nerf_upsample"]:
        raise ConfigError(f"nerf_size ({values['nerf_size']}) must be a multiple of nerf_upsample "
                          f"({values['nerf_upsample']}): the field renders at nerf_size / nerf_upsample")
    if has("nerf_size", "space_n_down") and values["nerf_size"] % max(16, 2 ** values["space_n_down"]):
        raise ConfigError(f"nerf_size ({values['nerf_size']}) must be a multiple of 16 and of 2^space_n_down "
                          f"({2 ** values['space_n_down']}): notebook 07's AU encoder and global encoder halve it "
                          "4 and space_n_down times")
    if has("cme_bop", "vae_window") and values["cme_bop"] >= values["vae_window"]:
        raise ConfigError(f"cme_bop ({values['cme_bop']}) must be shorter than vae_window ({values['vae_window']}): "
                          "the cross-modal encoder generates the rest of each window after the BOP")
    if has("s3d_size", "s3d_sr_factor", "s3d_window") and (
            values["s3d_window"] > values["s3d_size"] // values["s3d_sr_factor"]):
        raise ConfigError(f"s3d_window ({values['s3d_window']}) must fit in the coarse image of "
                          f"s3d_size / s3d_sr_factor = {values['s3d_size'] // values['s3d_sr_factor']} pixels")
    if has("motion_persons", "motion_identities") and values["motion_persons"] > values["motion_identities"]:
        raise ConfigError(f"motion_persons ({values['motion_persons']}) must not exceed motion_identities "
                          f"({values['motion_identities']}): each is an identity of the motion corpus")


def _check_rule(name: str, value: Any) -> Any:
    r = rule(name)
    if not r.ok(value):
        raise ConfigError(f"parameter {name} must be {r.form}, not {value!r} ({_BY_NAME[name].help})")
    return value


def names() -> list[str]:
    """All parameter names, in schema order."""
    return [p.name for p in PARAMS]


def preset(name: str) -> dict[str, Any]:
    """The parameter values of preset ``name`` (``small`` or ``full``)."""
    if name not in PRESETS:
        raise ConfigError(f"unknown preset {name!r}: choose one of {', '.join(PRESETS)}")
    return {p.name: getattr(p, name) for p in PARAMS}


def parse_value(name: str, text: str) -> Any:
    """Turn the text of a ``-p name=value`` override into the parameter's type."""
    param = _param(name)
    if param.type is bool:
        low = text.strip().lower()
        if low in ("1", "true", "yes", "on"):
            return True
        if low in ("0", "false", "no", "off"):
            return False
        raise ConfigError(f"parameter {name} takes true or false, not {text!r}")
    try:
        value = param.type(text)
    except ValueError:
        raise ConfigError(
            f"parameter {name} takes a {param.type.__name__}, not {text!r} ({param.help})"
        ) from None
    return _check_rule(name, value)


def validate(params: dict[str, Any]) -> dict[str, Any]:
    """Check names, types and ranges (``RULES``) of ``params``; return them with ints widened to floats
    where needed."""
    out = {}
    for name, value in params.items():
        param = _param(name)
        if param.type is float and isinstance(value, int) and not isinstance(value, bool):
            value = float(value)
        if param.type is not bool and isinstance(value, bool) or not isinstance(value, param.type):
            raise ConfigError(
                f"parameter {name} takes a {param.type.__name__}, not {type(value).__name__} "
                f"{value!r} ({param.help})"
            )
        out[name] = _check_rule(name, value)
    return out


def _param(name: str) -> Param:
    if name not in _BY_NAME:
        raise ConfigError(f"unknown parameter {name!r}: known parameters are {', '.join(names())}")
    return _BY_NAME[name]
