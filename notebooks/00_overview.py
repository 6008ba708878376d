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
# # 00 · Overview: four talking-head NeRFs, one library
#
# A *talking head* is a video of a face that says what an audio clip says. The four papers this book
# reproduces all do it the same broad way: they turn speech into a **condition** — a handful of
# numbers per video frame — and feed it, with a 3D point and a viewing direction, to a **neural
# radiance field** (NeRF). The NeRF returns colour (or a feature) and density at that point; volume
# rendering sums them along each camera ray into a pixel. Because the head is a 3D field, the same
# model can be rendered from a camera it never saw.
#
# Where they differ is *what the condition is* and *what else keeps the result honest*:
#
# | paper | what the NeRF is conditioned on | what it adds |
# |---|---|---|
# | **NeRF-3DTalker** | 3D morphable-model codes: identity (100), expression split into a speech part and a style part (79 + 79), albedo (100), lighting (27) | audio is mapped onto the 3DMM's expression space with a lip-sync expert's help; a feature NeRF rendered small and upsampled; a codebook "standardized space" with an action-unit encoder pulls odd frames back to the speaker's real motion |
# | **Disentangled audio NeRF** | speech split by SpeechSplit into *content*, *rhythm* and *pitch* codes | each code carries one kind of information, so lip shape follows content while identity-specific micro-expressions follow rhythm and pitch |
# | **S3D-NeRF** | audio, applied as a *deformation* of a canonical head built from **one** photo (tri-planes) | single-shot: a new face needs no per-person training; a lip-sync discriminator keeps the mouth in time |
# | **DFA-NeRF** | lip features predicted from audio, plus head pose and blinks *sampled* from a Transformer GP-VAE | audio only drives what audio explains (the lips); pose and blinks are personal and random, so they are generated, not regressed |
#
# None of this can be learned without data, and none of the papers' data or pretrained parts can be
# downloaded here. So talklib renders its own **ground-truth synthetic speaker**: a morphable head
# textured from a real photo, speaking text with known phoneme timing. Every method is trained on it
# and — this is what the papers could not do — *measured against the truth*, including views from
# cameras the model never saw.

# %% tags=["parameters"]
run_dir = "runs/dev"
preset = "small"
seed = 0

# %%
from talklib.notebook import setup

dev = setup(seed, "cpu", run_dir)

# %% [markdown]
# ## The notebooks, and the paper sections they reproduce
#
# Each notebook narrates one part of the method, equation by equation, and calls `talklib`, which
# owns the code. Later notebooks import what earlier ones built; none re-implements it. The list below
# is read from the `notebooks/` folder itself, so it is always current.

# %%
import pandas as pd

from talklib.pipeline import discover

SECTIONS = {
    "00": "this overview",
    "01": "NeRF-3DTalker Eq. (1), DFA-NeRF Eq. (1): the 3D morphable model, the synthetic speaker",
    "02": "Disentangled audio NeRF Eq. (5)–(6) (SpeechSplit), DFA-NeRF Eq. (3) (contrastive sync)",
    "03": "NeRF-3DTalker Eq. (4)–(6), DFA-NeRF Eq. (10): the conditional NeRF",
    "04": "NeRF-3DTalker Eq. (2), S3D-NeRF Eq. (7)–(8): the lip-sync expert, and every metric the papers report",
    "05": "Disentangled audio NeRF Eq. (7), Table 1; DFA-NeRF Table 5: which audio feature drives the field best",
    "06": "NeRF-3DTalker §II.B, Eq. (1)–(6): Lip-wav, the 3D prior f_exp-aud, StyleNet / FuseNet, the field on both and Table II",
    "07": "NeRF-3DTalker §II.D, Eq. (7)-(11): the local-global standardized space (AU encoder, codebooks S and G, decoder) and Table III",
    "08": "DFA-NeRF §3.2–3.5, Eq. (2)–(11): face attributes f_m / f_e, sync on f_m, the Transformer GP-VAE and the "
          "cross-modal encoder, the field on [f_a, f_e] with generated pose and blinks; Tables 2 and 4, Fig. 6",
    "09": "S3D-NeRF §3–4, Eq. (1)–(9): one photo of an unseen person + speech -> a free-view talking head "
          "(appearance encoder, cross-modal deformation, super-resolution); Tables 2 and 3, Fig. 3",
}


def title(path):
    for line in path.read_text().splitlines():
        if line.startswith("# # "):
            return line[4:].split("·", 1)[-1].strip()
    return path.stem


notebooks = discover()
table = pd.DataFrame(
    [{"notebook": nb.name, "title": title(nb.path), "reproduces": SECTIONS.get(nb.number, "")} for nb in notebooks]
)
table

# %%
assert table.notebook.iloc[0] == "00_overview"
assert len(notebooks) >= 1 and all(nb.defaults for nb in notebooks), "every notebook has a parameters cell"

# %% [markdown]
# ## The pipeline, as a picture
#
# Speech enters at the left. The synthetic speaker gives every stage its ground truth; the audio
# front-end turns speech into conditions; the conditional NeRF renders frames; the lip-sync expert and
# the metrics judge them; the report gathers the numbers. The width of each band is only a guide to how
# much of the work flows that way.

# %%
import plotly.graph_objects as go

stages = [
    "speech (TTS, ARCTIC, your wav)",  # 0
    "synthetic speaker · 01",          # 1
    "3DMM codes (id, exp, alb, illu)", # 2
    "audio features · 02",             # 3
    "conditional NeRF · 03",           # 4
    "rendered frames, any view",       # 5
    "lip-sync expert + metrics · 04, audio-driven NeRF · 05",  # 6
    "report",                          # 7
]
links = [(0, 1, 3), (0, 3, 3), (1, 2, 2), (1, 5, 1), (2, 4, 2), (3, 4, 2), (3, 6, 1), (4, 5, 4), (5, 6, 4), (6, 7, 5)]
fig = go.Figure(
    go.Sankey(
        node=dict(label=stages, pad=18, thickness=16),
        link=dict(source=[a for a, _, _ in links], target=[b for _, b, _ in links], value=[v for _, _, v in links]),
    )
)
fig.update_layout(title="talklib: from speech to a measured talking head", height=380, margin=dict(l=10, r=10, t=40, b=10))
fig.show()

# %%
from talklib.outputs import save_figure

save_figure(fig, run_dir, "00_overview", "pipeline")

# %% [markdown]
# ## Small and full: one source, two sizes
#
# Every size a notebook uses — image resolution, clip length, network widths, training steps — comes
# from a **preset** in `talklib/config.py`. `small` runs the whole book on a 2-core laptop CPU in about a
# quarter of an hour; `full` is the papers' scale on one GPU. The table shows every parameter whose
# value differs between the two.

# %%
from talklib import config

small, full = config.preset("small"), config.preset("full")
sizes = pd.DataFrame(
    [{"parameter": p.name, "small": p.small, "full": p.full, "meaning": p.help} for p in config.PARAMS if p.small != p.full]
)
sizes

# %%
assert set(small) == set(full) == set(config.names())

# %% [markdown]
# To run it all, from the repository root:
#
# ```bash
# make reproduce                      # small preset -> runs/small/report.html
# make reproduce PRESET=full          # on a GPU machine -> runs/full/report.html
# python -m talklib reproduce --preset small --only 03 -p seed=1 --out runs/seed1
# make test                           # unit tests + every notebook under nbval + the book
# ```
#
# The device is chosen for you (CUDA when a GPU is visible, else the CPU), and every random number
# generator is seeded from `seed`, so two `small` runs with one seed give the same numbers.

# %%
# NBVAL_IGNORE_OUTPUT
import platform

import torch

print(f"python {platform.python_version()}, torch {torch.__version__}, device for training: "
      f"{'cuda' if torch.cuda.is_available() else 'cpu'}, threads {torch.get_num_threads()}")

# %% [markdown]
# ## Numbers for the report

# %%
from talklib.outputs import write_metrics

write_metrics(run_dir, "00_overview", {
    "notebooks": len(notebooks),
    "parameters": len(config.PARAMS),
    "parameters_differing_small_full": len(sizes),
})
