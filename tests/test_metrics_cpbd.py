"""CPBD: the vectorised edge widths against a direct loop transcription of Marziliano's method, and
CPBD against edges of known width (the probability model evaluated by hand)."""

import math

import numpy as np
import pytest
from scipy.ndimage import gaussian_filter
from skimage import data

from talklib.metrics.sharpness import cpbd, edge_widths, sobel_edges, to_grey


def _widths_loop(image, edges):
    """Straight transcription of the reference loop (cpbd's marziliano_method)."""
    h, w = image.shape
    gy, gx = np.gradient(image)
    out = np.zeros_like(image)
    for r in range(1, h - 1):
        for c in range(1, w - 1):
            if not edges[r, c]:
                continue
            ang = math.degrees(math.atan2(gy[r, c], gx[r, c])) if gx[r, c] != 0 else 0.0
            q = 45 * round(ang / 45)
            if q not in (0, 180, -180):
                continue
            rising = q == 0
            for m in range(101):
                inner, outer = c - 1 - m, c - 2 - m
                if outer < 0 or (image[r, outer] - image[r, inner] >= 0 if rising else image[r, outer] - image[r, inner] <= 0):
                    break
            wl = m + 1
            for m in range(101):
                inner, outer = c + 1 + m, c + 2 + m
                if outer >= w or (image[r, outer] - image[r, inner] <= 0 if rising else image[r, outer] - image[r, inner] >= 0):
                    break
            out[r, c] = wl + m + 1
    return out


def test_widths_match_loop_reference():
    img = to_grey(data.astronaut()[150:214, 180:276])
    edges = sobel_edges(img)
    assert edges.sum() > 50
    np.testing.assert_array_equal(edge_widths(img, edges), _widths_loop(img, edges))


def _ramp_image(width, lo=30.0, hi=230.0, size=128, period=32):
    """Vertical edges every ``period`` pixels, alternately rising and falling: raised-cosine ramps
    ``width`` pixels wide centred on whole pixels (so the gradient has one strict maximum)."""
    x = np.arange(size, dtype=float)
    row = np.full(size, lo)
    for k, centre in enumerate(range(period // 2, size, period)):
        t = np.clip((x - centre) / width + 0.5, 0, 1)
        step = (1 - np.cos(np.pi * t)) / 2
        row = row + (hi - lo) * (step if k % 2 == 0 else -step)
    return np.tile(row, (size, 1))


@pytest.mark.parametrize("width", [1, 2, 4, 7, 12])
def test_cpbd_known_edge_width(width):
    img = _ramp_image(width)
    edges = sobel_edges(img)
    w = edge_widths(img, edges)
    measured = w[w > 0]
    # the probability of blur detection at the measured widths (contrast 200 > 50 -> w_JNB = 3)
    p = 1 - np.exp(-(measured / 3.0) ** 3.6)
    want = float(np.mean(np.floor(p * 100 + 0.5) <= 63))
    assert cpbd(img) == pytest.approx(want, abs=1e-12)
    if width <= 2:
        assert cpbd(img) == 1.0  # sharp steps: every edge below the just-noticeable width
    if width >= 4:
        assert cpbd(img) == 0.0  # every edge visibly blurred


def test_cpbd_falls_with_blur_and_is_in_unit_interval():
    img = data.astronaut()[:256, :256]
    vals = [cpbd(img)] + [cpbd(gaussian_filter(img.astype(float), sigma=(s, s, 0)).astype(np.uint8)) for s in (1, 2)]
    assert all(0 <= v <= 1 for v in vals)
    assert vals[0] > vals[1] > vals[2]
    assert math.isnan(cpbd(np.zeros((32, 32, 3), np.uint8)))  # no 64x64 block: undefined
