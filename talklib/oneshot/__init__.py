"""S3D-NeRF (Li et al., ECCV 2024): one photo of an unseen person + speech -> a free-view talking head.

Taught in notebook 09. The pieces, each in its own file, in the order of the paper's Section 3:

- ``encoder``: the Hierarchical Facial Appearance Encoder (Eq. 1) -> multi-scale tri-planes, and the
  feature lookup through the inverse source pose (Eq. 2);
- ``attention``: slot attention over the multi-scale features, the 1-D convolutional audio encoder and
  the multi-head cross-attention of Eq. (3);
- ``deform``: the U-Net-like deformation Δx of Eq. (4), and the ablation variants of Table 3
  (ND, FCD, w/o Deform);
- ``superres``: the super-resolution module that adds the outer face and background from the source;
- ``model``: ``S3DNeRF`` ties them with ``talklib.nerf``'s sampling and compositing (Eq. 5);
- ``discriminator``: the StyleGAN2-style discriminator of L_adv;
- ``train``: the losses of Eq. (8)-(9) and the resumable trainer;
- ``data``: training windows from the multi-identity corpus (``talklib.speaker.faces``);
- ``drive``: a photo and a wav -> video frames (``render --source-image``).
"""
