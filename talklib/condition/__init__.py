"""The conditions stage: what the field is conditioned on, named and sized once.

``spec`` names every condition (3DMM parts such as ``f_exp:12`` or ``f_illu``, audio features such as
``a_content``, ``deepspeech``, ``mfcc``, ``f_a``, NeRF-3DTalker's prior parts, DFA-NeRF's eye-blink embedding
``f_e``) and parses a user's list; ``inputs`` packs a clip's (or
a driving audio's) values into the per-frame vector the NeRF stores, the same way for training and
rendering; ``audionet`` holds AD-NeRF's audio network and its temporal attention, which turn a frame's
audio windows into the smoothed code the field sees (``Conditioner``); ``extract`` recomputes the learned
audio features (SpeechSplit codes, recogniser posteriors, contrastive f_a) from a wav with the networks
notebook 02 trained, so a checkpoint renders from audio alone.
"""
