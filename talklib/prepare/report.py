"""``prepare_report.html``: what ``prepare`` saw and fitted, to check by eye before training.

One self-contained page (figures inlined as PNG): sample frames with the detected landmarks (green), the
fitted mesh (white wireframe) and its landmarks (red); the head pose curves before and after the
temporal smoothing; the per-frame landmark error of the fit; and the frames where the face was lost,
with what was done about them.
"""

from __future__ import annotations

import base64
import html
import io
from pathlib import Path

import numpy as np


def _png_b64(fig) -> str:
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=90, bbox_inches="tight")
    return base64.b64encode(buf.getvalue()).decode()


def _samples_figure(folder: Path, lmk, lmk2d_fit, geo, t, cam, n: int = 6):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from PIL import Image

    from talklib.prepare.fit import project_fit

    T = len(lmk)
    idx = np.unique(np.linspace(0, T - 1, min(n, T)).round().astype(int))
    pix = project_fit(t, geo["id"], geo["exp"][idx], geo["pose"][idx], cam)["pix"]
    faces = t["faces"].numpy()
    fig, axes = plt.subplots(1, len(idx), figsize=(2.6 * len(idx), 2.8))
    for ax, k, p in zip(np.atleast_1d(axes), idx, pix):
        ax.imshow(np.asarray(Image.open(folder / "ori_imgs" / f"{k}.png")))
        ax.triplot(p[:, 0], p[:, 1], faces, color="white", lw=0.25, alpha=0.6)
        ax.scatter(lmk[k, :, 0], lmk[k, :, 1], s=0.6, c="lime")
        ax.scatter(lmk2d_fit[k, :, 0], lmk2d_fit[k, :, 1], s=0.6, c="red")
        ax.set_title(f"frame {k}", fontsize=8)
        ax.axis("off")
    return fig


def _pose_figure(geo):
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(2, 3, figsize=(12, 4.5), sharex=True)
    names = ("yaw (deg)", "pitch (deg)", "roll (deg)", "tx (mm)", "ty (mm)", "tz (mm)")
    scale = (1, 1, 1, 1000, 1000, 1000)
    x = np.arange(len(geo["pose"])) / 25.0
    for k, ax in enumerate(axes.reshape(-1)):
        ax.plot(x, geo["pose_raw"][:, k] * scale[k], lw=0.6, color="0.6", label="fitted")
        ax.plot(x, geo["pose"][:, k] * scale[k], lw=1.0, color="C0", label="smoothed")
        ax.set_title(names[k], fontsize=9)
    axes[1, 0].set_xlabel("seconds (kept frames)")
    axes[0, 0].legend(fontsize=7)
    fig.tight_layout()
    return fig


def _error_figure(geo, found):
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 2, figsize=(12, 2.4))
    axes[0].plot(np.arange(len(geo["err_px"])) / 25.0, geo["err_px"], lw=0.7)
    axes[0].set_title("landmark error of the fit per kept frame (pixels)", fontsize=9)
    axes[0].set_xlabel("seconds (kept frames)")
    axes[1].plot(np.arange(len(found)) / 25.0, found.astype(int), lw=0.7, drawstyle="steps-post", color="C2")
    axes[1].set_ylim(-0.1, 1.1)
    axes[1].set_yticks([0, 1], ["lost", "found"])
    axes[1].set_title("face found in the source video (25 fps timeline)", fontsize=9)
    axes[1].set_xlabel("seconds (source)")
    fig.tight_layout()
    return fig


def write_report(folder: Path, tr, box, lmk, lmk2d_fit, geo, t, cam) -> Path:
    """Write ``folder / prepare_report.html``; returns its path. t: the model's tensors, cam: the
    ``talklib.prepare.fit.Camera`` of the fit."""
    import json

    import matplotlib.pyplot as plt

    meta = json.loads((folder / "dataset.json").read_text())
    info = meta["prepare"]
    figs = [("Sample frames: detected landmarks (green), fitted mesh (white) and its landmarks (red)",
             _samples_figure(folder, lmk, lmk2d_fit, geo, t, cam)),
            ("Head pose: as fitted per frame (grey) and smoothed over time (blue)", _pose_figure(geo)),
            ("Fit error and face tracking", _error_figure(geo, tr.found))]
    parts = []
    for title, fig in figs:
        parts.append(f"<h2>{html.escape(title)}</h2><img src='data:image/png;base64,{_png_b64(fig)}'>")
        plt.close(fig)
    rows = "".join(f"<tr><td>{g['start']}</td><td>{g['end'] - 1}</td><td>{g['frames'] / 25:.2f} s</td>"
                   f"<td>{g['action']}</td></tr>" for g in info["gaps"]) or "<tr><td colspan=4>none: the face was found in "\
                                                                      "every frame</td></tr>"
    notes = "".join(f"<li>{html.escape(n)}</li>" for n in info["notes"])
    lost = int((~tr.found).sum())
    summary = (f"<p>Source: <code>{html.escape(info['video'])}</code>, {info['source_size'][0]}x{info['source_size'][1]}"
               f" at {info['source_fps']:.2f} fps, {info['source_seconds']:.1f} s; {info['source_frames_25fps']} frames "
               f"at 25 fps, face lost in {lost}, {info['kept_frames']} kept ({info['kept_frames'] / 25:.1f} s).<br>"
               f"Crop: {box[2]:.0f} px square at ({box[0]:.0f}, {box[1]:.0f}), resized to {meta['width']} px. "
               f"Median landmark error of the fit: {info['fit_err_px_median']:.2f} px.</p>")
    doc = (f"<!doctype html><html><head><meta charset='utf-8'><title>prepare: {html.escape(meta['name'])}</title>"
           "<style>body{font-family:sans-serif;max-width:1200px;margin:2em auto}img{max-width:100%}"
           "td,th{padding:2px 10px;border-bottom:1px solid #ddd}</style></head><body>"
           f"<h1>prepare report: {html.escape(meta['name'])}</h1>{summary}"
           f"{'<ul>' + notes + '</ul>' if notes else ''}"
           "<h2>Frames where the face was lost</h2><table><tr><th>first</th><th>last</th><th>length</th>"
           f"<th>what was done</th></tr>{rows}</table>"
           f"{''.join(parts)}</body></html>\n")
    path = folder / "prepare_report.html"
    path.write_text(doc)
    return path
