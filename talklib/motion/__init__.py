"""DFA-NeRF's personalised face attributes (Sections 3.2-3.4): what moves the head and the eyes.

Modules: ``attributes`` (the face-attribute autoencoder over 68 3DMM landmarks with the mouth and eye
embeddings f_m, f_e, trained with the random swaps of Eq. (2)), ``vae`` (the Transformer VAE with a
Gaussian-process prior over time, Eq. (4)-(8), Table 4's MLP / LSTM / Transformer baselines, the cross-modal
encoder of Eq. (9) that embeds audio and the Beginning Of Pose, autoregressive generation of any length and
sampling without audio), ``generator`` (the whole motion branch in one file: a wav -> that person's head pose and
eye-blink embedding, what ``render --motion`` uses) and ``command`` (the ``--motion`` option of ``render``). The motion-only pre-training corpus they learn from is the synthetic speaker's
(``talklib.speaker.motion_corpus``). Taught in notebook 08.
"""
