"""AV offset / LSE-D / LSE-C: syncnet_python's definitions, checked against a literal transcription and
against embeddings with a known shift."""

import numpy as np
import pytest
import torch

from talklib.sync.offset import calc_pdist, sync_score


def _calc_pdist_reference(feat1, feat2, vshift):
    """syncnet_python's loop, verbatim in behaviour."""
    win_size = vshift * 2 + 1
    feat2p = torch.nn.functional.pad(feat2, (0, 0, vshift, vshift))
    return [torch.nn.functional.pairwise_distance(feat1[[i], :].repeat(win_size, 1), feat2p[i:i + win_size, :])
            for i in range(len(feat1))]


def test_calc_pdist_matches_syncnet_python_loop():
    g = torch.Generator().manual_seed(0)
    v, a = torch.randn(40, 8, generator=g), torch.randn(40, 8, generator=g)
    ref = torch.stack(_calc_pdist_reference(v, a, 15))
    torch.testing.assert_close(calc_pdist(v, a, 15), ref)
    s = sync_score(v.numpy(), a.numpy(), 15)
    mdist = ref.mean(0)
    assert s.lse_d == pytest.approx(float(mdist.min()))
    assert s.lse_c == pytest.approx(float(torch.median(mdist) - mdist.min()))
    assert s.offset == 15 - int(torch.argmin(mdist))
    assert s.mean_dists.shape == (31,) and s.framewise_conf.shape == (40,)


@pytest.mark.parametrize("delay", [-10, -3, 0, 4, 9])
def test_known_shift_is_recovered_with_syncnet_sign(delay):
    rng = np.random.default_rng(1)
    content = rng.normal(size=(120, 16))  # one embedding per window of "speech content"
    video = content[20:80]
    audio = content[20 - delay:80 - delay]  # audio delayed by `delay` windows: a_j shows content j - delay
    s = sync_score(video, audio)
    assert s.offset == -delay  # syncnet_python: audio lagging by d frames reads as offset -d
    if delay == 0:
        assert s.lse_d == pytest.approx(0.0, abs=1e-4)  # matched pairs identical (pairwise_distance adds 1e-6)
    assert s.lse_d < 0.3 * float(np.median(s.mean_dists))  # only the |delay| edge windows meet zero padding
    assert s.lse_c > 1.0
    shuffled = sync_score(video, rng.permutation(audio))
    assert shuffled.lse_c < s.lse_c / 2
