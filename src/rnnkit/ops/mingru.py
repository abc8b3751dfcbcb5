"""minGRU (Feng et al. 2024): z_t = sigmoid(W_z x_t), h~_t = g(W_h x_t), h_t = (1 - z_t) h_{t-1} + z_t h~_t.

The gates do not look at h_{t-1}, so training solves the recurrence with a parallel log-space
scan (`mingru`); `naive_mingru` is the plain loop over `mingru_cell`, which `step` also uses.
One layer, one direction. x is (T, batch, input); weights = (weight (2*hidden, input) with rows
[z; h~], bias (2*hidden,) or None); initial_state (batch, hidden); lengths (batch,) in [1, T].
"""

import torch
import torch.nn.functional as F
from torch import Tensor

from rnnkit.ops.scan import DEFAULT_BLOCK, DEFAULT_CHUNK, g, log_g, scan_sequence, sequential


def mingru_cell(x_t: Tensor, h: Tensor, weight: Tensor, bias: Tensor | None = None) -> Tensor:
    """One step: the next state from input x_t (batch, input) and state h (batch, hidden)."""
    k, v = F.linear(x_t, weight, bias).chunk(2, dim=-1)
    z = torch.sigmoid(k)
    return (1 - z) * h + z * g(v)


def mingru(
    x: Tensor,
    weights: tuple[Tensor, Tensor | None],
    initial_state: Tensor | None = None,
    lengths: Tensor | None = None,
    *,
    reverse: bool = False,
    chunk_size: int = DEFAULT_CHUNK,
    block: int = DEFAULT_BLOCK,
) -> tuple[Tensor, Tensor]:
    """Parallel scan: outputs (T, batch, hidden) and the final state (batch, hidden); the scan
    restarts its prefix sums every `chunk_size` steps and runs `block` steps at a time."""
    return scan_sequence(
        F.linear(x, *weights),
        _log_terms,
        initial_state,
        lengths,
        reverse=reverse,
        chunk_size=chunk_size,
        block=block,
    )


def _log_terms(projections: Tensor) -> tuple[Tensor, Tensor]:
    """log a = log(1 - z) and log b = log(z * g(v)) from the pre-activations [k; v]."""
    k, v = projections.chunk(2, dim=-1)
    # log z = logsigmoid(k) and log(1 - z) = logsigmoid(-k) = log z - k, without forming z.
    log_z = F.logsigmoid(k)
    return log_z - k, log_z + log_g(v)


def naive_mingru(
    x: Tensor,
    weights: tuple[Tensor, Tensor | None],
    initial_state: Tensor | None = None,
    lengths: Tensor | None = None,
    *,
    reverse: bool = False,
) -> tuple[Tensor, Tensor]:
    """Reference: the same recurrence one step at a time."""
    h = initial_state
    if h is None:
        h = x.new_zeros(x.shape[1], weights[0].shape[0] // 2)
    return sequential(mingru_cell, x, weights, h, lengths, reverse=reverse)
