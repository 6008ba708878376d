"""Conditional neural radiance fields for talking heads: encodings, fields, sampling, compositing
(a PyTorch reference and a fused Triton GPU path), the 2D upsampler H_u, training and rendering.

Modules: ``encoding`` (positional, multi-resolution tri-plane grid), ``field`` (conditional field
F(x, d, condition) -> (z, sigma)), ``rays`` (camera rays, head pose to canonical space, novel views),
``sampling`` (near/far, stratified samples, occupancy grid), ``composite`` (Eq. (5) reference),
``composite_triton`` (fused GPU kernel), ``upsampler`` (H_u), ``model`` (the assembled renderer),
``scene`` (training data in memory, a toy scene), ``train`` (Eq. (6) fitting, resumable checkpoints),
``audio2exp`` (audio windows -> expression condition), ``command`` (``python -m talklib render``).
"""
