"""minGRU (Feng et al. 2024): z_t = sigmoid(W_z x_t), h~_t = g(W_h x_t), h_t = (1 - z_t) h_{t-1} + z_t h~_t.

The gates do not look at h_{t-1}, so training solves the recurrence with a parallel log-space
scan (`mingru`); `naive_mingru` is the plain loop over `mingru_cell`, which `step` also uses.
Both have the other ops' signature and conventions (torch.nn's ``batch_first``, states
(layers * directions, batch, hidden), lengths or a PackedSequence); weights are the flat list
``w_ih, [b_ih]`` per layer and direction, w_ih (2*hidden, input) with rows [z; h~].
"""

import torch
import torch.nn.functional as F
from torch import Tensor

from rnnkit.ops.scan import DEFAULT_BLOCK, DEFAULT_CHUNK, g, log_g, loop_op, scan_op


def mingru_cell(x_t: Tensor, h: Tensor, weight: Tensor, bias: Tensor | None = None) -> Tensor:
    """One step: the next state from input x_t (batch, input) and state h (batch, hidden)."""
    k, v = F.linear(x_t, weight, bias).chunk(2, dim=-1)
    z = torch.sigmoid(k)
    return (1 - z) * h + z * g(v)


def mingru(
    x,
    weights,
    initial_state=None,
    lengths=None,
    *,
    num_layers=1,
    bidirectional=False,
    dropout=0.0,
    training=False,
    batch_first=False,
    chunk_size: int = DEFAULT_CHUNK,
    block: int = DEFAULT_BLOCK,
) -> tuple[Tensor, Tensor]:
    """Parallel scan over every layer and direction; x may be a PackedSequence. The scan restarts
    its prefix sums every `chunk_size` steps and runs `block` steps at a time."""
    return scan_op(_log_terms, 2, x, weights, initial_state, lengths, num_layers=num_layers,
                   bidirectional=bidirectional, dropout=dropout, training=training,
                   batch_first=batch_first, chunk_size=chunk_size, block=block)


def _log_terms(projections: Tensor) -> tuple[Tensor, Tensor]:
    """log a = log(1 - z) and log b = log(z * g(v)) from the pre-activations [k; v]."""
    k, v = projections.chunk(2, dim=-1)
    # log z = logsigmoid(k) and log(1 - z) = logsigmoid(-k) = log z - k, without forming z.
    log_z = F.logsigmoid(k)
    return log_z - k, log_z + log_g(v)


def naive_mingru(
    x,
    weights,
    initial_state=None,
    lengths=None,
    *,
    num_layers=1,
    bidirectional=False,
    dropout=0.0,
    training=False,
    batch_first=False,
) -> tuple[Tensor, Tensor]:
    """Reference for `mingru`: the same recurrence one step at a time."""
    return loop_op(mingru_cell, 2, x, weights, initial_state, lengths, num_layers=num_layers,
                   bidirectional=bidirectional, dropout=dropout, training=training,
                   batch_first=batch_first)
