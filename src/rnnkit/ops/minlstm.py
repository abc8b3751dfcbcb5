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

from rnnkit.ops.scan import g, log_g, scan_ops


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


def _log_terms(projections: Tensor) -> tuple[Tensor, Tensor]:
    """log a = log f' and log b = log(i' * g(v)) from the pre-activations [k_f; k_i; v]."""
    k_f, k_i, v = projections.chunk(3, dim=-1)
    d = _log_ratio(k_f, k_i)
    log_a = F.logsigmoid(d)
    return log_a, (log_a - d) + log_g(v)  # log i' = logsigmoid(-d) = logsigmoid(d) - d


minlstm, naive_minlstm = scan_ops("minlstm", 3, _log_terms, minlstm_cell)
