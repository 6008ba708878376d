"""talklib: runnable, notebook-first reproductions of four audio-driven NeRF talking-head papers.

Subpackages, in the order imports flow (a module imports only from those above it):
config, outputs, checkpoint, runtime -> data -> face3d, audio -> speaker -> sync -> condition
-> nerf -> codebook, motion, oneshot -> metrics -> pipeline, train, render, scorecard, cli.
"""

__version__ = "0.1.0"
