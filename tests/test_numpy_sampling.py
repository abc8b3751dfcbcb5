"""The numpy sampler (onnxruntime predictor, server) keeps the same tokens as torch's."""

import numpy as np
import pytest
import torch

from rnnkit.export import sampling as np_sampling
from rnnkit.models import sampling


@pytest.mark.parametrize("top_k,top_p", [(None, None), (5, None), (None, 0.7), (8, 0.5)])
def test_filter_matches_torch(top_k, top_p):
    logits = torch.randn(6, 40, generator=torch.Generator().manual_seed(1)) * 3
    ref = sampling.filter_logits(logits.double(), 0.8, top_k, top_p).numpy()
    got = np_sampling.filter_logits(logits.numpy(), 0.8, top_k, top_p)
    assert np.array_equal(np.isinf(ref), np.isinf(got))
    keep = ~np.isinf(ref)
    np.testing.assert_allclose(got[keep], ref[keep], rtol=1e-6)


def test_sampling_follows_the_probabilities_and_greedy_is_argmax():
    logits = np.log(np.array([[0.1, 0.6, 0.3]]))
    rng = np.random.default_rng(0)
    draws = np.concatenate([np_sampling.sample_next(logits, 1.0, None, None, rng)
                            for _ in range(4000)])
    freq = np.bincount(draws, minlength=3) / len(draws)
    np.testing.assert_allclose(freq, [0.1, 0.6, 0.3], atol=0.03)
    assert np_sampling.sample_next(logits, 0.0, None, None, rng).tolist() == [1]
    only = np_sampling.sample_next(logits, 1.0, 1, None, rng)
    assert only.tolist() == [1]
