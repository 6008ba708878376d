"""One call at the top of every notebook: seeds, device, and figures that render everywhere."""

from __future__ import annotations

from pathlib import Path


def setup(seed: int, device: str = "auto", run_dir: str | None = None):
    """Seed everything, pick the torch device, make plotly render in Lab, papermill and the book.

    Plotly figures carry both their JSON (JupyterLab renders it) and an HTML version with plotly.js
    embedded once per notebook (Jupyter Book 1.x shows that, offline). Returns the torch device.
    """
    import plotly.io as pio

    from talklib.runtime import pick_device, seed_everything

    pio.renderers.default = "plotly_mimetype+notebook"
    seed_everything(seed)
    if run_dir is not None:
        Path(run_dir).mkdir(parents=True, exist_ok=True)
    return pick_device(device)
