"""PSNR / SSIM with known answers, and SSIM against scikit-image to 1e-4."""

import math

import numpy as np
import pytest
from scipy.ndimage import gaussian_filter
from skimage import data
from skimage.metrics import structural_similarity

from talklib.errors import UserError
from talklib.metrics.image import psnr, ssim, ssim_map_mean


def test_psnr_known_answers():
    ref = np.full((16, 16, 3), 128, np.uint8)
    assert psnr(ref, ref) == math.inf
    assert psnr(ref + 10, ref) == pytest.approx(10 * math.log10(255 ** 2 / 100.0), abs=1e-9)  # MSE 100
    f = ref.astype(np.float64) / 255
    assert psnr(f + 0.1, f) == pytest.approx(20.0, abs=1e-9)  # MSE 0.01 on data range 1
    rng = np.random.default_rng(0)
    noise = rng.choice([-5.0, 5.0], size=ref.shape)  # |noise| = 5 everywhere: MSE exactly 25
    assert psnr(ref + noise, ref.astype(np.float64), data_range=255) == pytest.approx(
        10 * math.log10(255 ** 2 / 25.0), abs=1e-9)
    video = np.stack([ref, ref + 10])
    assert psnr(video, np.stack([ref + 10, ref + 10])) == math.inf  # one frame identical -> inf mean


def test_ssim_identical_and_shape_error():
    img = data.astronaut()[:64, :64]
    assert ssim(img, img) == pytest.approx(1.0, abs=1e-12)
    with pytest.raises(UserError, match="shape"):
        ssim(img, img[:32])
    with pytest.raises(UserError, match="smaller than"):
        ssim(img[:5, :5], img[:5, :5])


@pytest.mark.parametrize("gaussian", [False, True])
def test_ssim_matches_scikit_image(gaussian):
    rng = np.random.default_rng(1)
    img = data.astronaut()[100:228, 150:278]
    noisy = np.clip(img + rng.normal(0, 15, img.shape), 0, 255).astype(np.uint8)
    kw = dict(gaussian_weights=True, sigma=1.5, use_sample_covariance=False) if gaussian else {}
    want = structural_similarity(noisy, img, channel_axis=-1, data_range=255, **kw)
    assert abs(ssim(noisy, img, gaussian=gaussian) - want) < 1e-4
    f1, f2 = noisy / 255.0, img / 255.0
    want_f = structural_similarity(f1, f2, channel_axis=-1, data_range=1.0, **kw)
    assert abs(ssim(f1, f2, gaussian=gaussian) - want_f) < 1e-4
    g1, g2 = noisy[..., 0], img[..., 0]  # grey
    assert abs(ssim(g1, g2, gaussian=gaussian) - structural_similarity(g1, g2, data_range=255, **kw)) < 1e-4
    batch = ssim_map_mean(np.stack([noisy, img]), np.stack([img, img]), gaussian=gaussian)
    assert batch[1] == pytest.approx(1.0) and abs(batch[0] - want) < 1e-4


def test_blur_lowers_psnr_and_ssim_monotonically():
    img = data.astronaut()[100:228, 150:278].astype(np.float64) / 255
    scores = [(psnr(b, img), ssim(b, img)) for b in
              (gaussian_filter(img, sigma=(s, s, 0)) for s in (0.5, 1.0, 2.0, 4.0))]
    assert all(a[0] > b[0] and a[1] > b[1] for a, b in zip(scores, scores[1:]))
