"""minLSTM (Feng et al. 2024): f_t = sigmoid(W_f x_t), i_t = sigmoid(W_i x_t), h~_t = g(W_h x_t),
normalised gates f'_t = f_t / (f_t + i_t), i'_t = i_t / (f_t + i_t), h_t = f'_t h_{t-1} + i'_t h~_t.

As for minGRU, training runs a parallel log-space scan (`minlstm`) and `naive_minlstm` is the
plain loop over `minlstm_cell`, with the other ops' signature and conventions; weights are the
flat list ``w_ih, [b_ih]`` per layer and direction, w_ih (3*hidden, input) with rows [f; i; h~].
There is no separate cell state: the state is h, (layers * directions, batch, hidden).
"""

import torch
import torch.nn.functional as F
from torch import Tensor

from rnnkit.ops.scan import DEFAULT_BLOCK, DEFAULT_CHUNK, g, log_g, loop_op, scan_op


def _log_ratio(k_f: Tensor, k_i: Tensor) -> Tensor:
    """d = log f - log i, so that f' = sigmoid(d) and i' = sigmoid(-d) exactly, without the
    0 / 0 that f / (f + i) gives when both gates underflow. (log sigmoid(k) = -softplus(-k);
    F.logsigmoid is as fast on long sequences but slow on the small tensors of one step.)"""
    return F.softplus(-k_i) - F.softplus(-k_f)


def minlstm_cell(x_t: Tensor, h: Tensor, weight: Tensor, bias: Tensor | None = None) -> Tensor:
    """One step: the next state from input x_t (batch, input) and state h (batch, hidden)."""
    k_f, k_i, v = F.linear(x_t, weight, bias).chunk(3, dim=-1)
    d = _log_ratio(k_f, k_i)
    return torch.sigmoid(d) * h + torch.sigmoid(-d) * g(v)


def minlstm(
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
    return scan_op(_log_terms, 3, x, weights, initial_state, lengths, num_layers=num_layers,
                   bidirectional=bidirectional, dropout=dropout, training=training,
                   batch_first=batch_first, chunk_size=chunk_size, block=block)


def _log_terms(projections: Tensor) -> tuple[Tensor, Tensor]:
    """log a = log f' and log b = log(i' * g(v)) from the pre-activations [k_f; k_i; v]."""
    k_f, k_i, v = projections.chunk(3, dim=-1)
    d = _log_ratio(k_f, k_i)
    log_a = F.logsigmoid(d)
    return log_a, (log_a - d) + log_g(v)  # log i' = logsigmoid(-d) = logsigmoid(d) - d


def naive_minlstm(
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
    """Reference for `minlstm`: the same recurrence one step at a time."""
    return loop_op(minlstm_cell, 3, x, weights, initial_state, lengths, num_layers=num_layers,
                   bidirectional=bidirectional, dropout=dropout, training=training,
                   batch_first=batch_first)
