"""Datasets on disk: the synthetic speaker's corpus and clip folders (AD-NeRF compatible layout)."""
