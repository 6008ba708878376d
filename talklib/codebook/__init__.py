"""NeRF-3DTalker's local-global Standardized Space (Section II.D, Eq. (7)-(11)).

Rendered frames that stray from the speaker's motion space are pulled back into it by re-drawing them
from two learned codebooks: a local AU semantic codebook S, queried with the features of an AU encoder
(Eq. (9)), and a global codebook G, queried with the features of a whole-face encoder (Eq. (10)); a
decoder turns the two standardized features into the standardized frame F_t+, trained with Eq. (11).

Modules: ``au`` (the AU encoder, its AU weights w_i and the weighted BCE / Dice AU losses, Eq. (7)-(8)),
``vq`` (the vector quantiser used for S and G: nearest-code query, straight-through gradients, the
codebook / commitment terms of Eq. (11), usage and perplexity, data initialisation and dead-code
restarts), ``space`` (``StandardizedSpace``: both branches, the decoder, Eq. (11), the resumable
trainers, ``standardize`` for inference, save / load), ``command`` (``render --standardize``: the option and its
frame stage for ``talklib.nerf.command``'s renderer, a layer above it; ``talklib.render`` composes the command).
"""
