"""Sampling the next token from logits with numpy alone (temperature, top-k, top-p), for the
onnxruntime predictor and the server's batched generation, which hold logits as arrays.

The same rules as ``rnnkit.models.sampling.filter_logits`` (its tests compare the two): top-k
first, then top-p keeps the most likely tokens whose probabilities reach ``top_p`` (at least one);
temperature 0 is greedy.
"""

from __future__ import annotations

import numpy as np


def filter_logits(logits: np.ndarray, temperature: float = 1.0, top_k: int | None = None,
                  top_p: float | None = None) -> np.ndarray:
    """``logits`` (batch, vocab) scaled by the temperature, -inf outside top-k / top-p."""
    logits = np.asarray(logits, dtype=np.float64) / temperature
    if top_k is not None and top_k < logits.shape[-1]:
        kth = -np.sort(-logits, axis=-1)[:, top_k - 1 : top_k]
        logits = np.where(logits < kth, -np.inf, logits)
    if top_p is not None and top_p < 1.0:
        order = np.argsort(-logits, axis=-1, kind="stable")
        ranked = np.take_along_axis(logits, order, axis=-1)
        probs = softmax(ranked)
        drop = (np.cumsum(probs, axis=-1) - probs) >= top_p
        drop[:, 0] = False
        unsorted = np.empty_like(drop)
        np.put_along_axis(unsorted, order, drop, axis=-1)
        logits = np.where(unsorted, -np.inf, logits)
    return logits


def softmax(logits: np.ndarray) -> np.ndarray:
    z = logits - logits.max(axis=-1, keepdims=True)
    e = np.exp(z)
    return e / e.sum(axis=-1, keepdims=True)


def sample_next(logits: np.ndarray, temperature: float, top_k: int | None, top_p: float | None,
                rng: np.random.Generator) -> np.ndarray:
    """One token id per row of ``logits`` (batch, vocab)."""
    logits = np.asarray(logits)
    if temperature == 0:
        return logits.argmax(axis=-1)
    probs = softmax(filter_logits(logits, temperature, top_k, top_p))
    u = rng.random((probs.shape[0], 1))
    # inverse CDF; the clip keeps a rounding error in the last cumulative sum from overflowing
    return np.minimum((np.cumsum(probs, axis=-1) < u).sum(axis=-1), probs.shape[-1] - 1)
