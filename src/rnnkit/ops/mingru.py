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

from rnnkit.ops.scan import g, log_g, scan_ops


def mingru_cell(x_t: Tensor, h: Tensor, weight: Tensor, bias: Tensor | None = None) -> Tensor:
    """One step: the next state from input x_t (batch, input) and state h (batch, hidden)."""
    k, v = F.linear(x_t, weight, bias).chunk(2, dim=-1)
    z = torch.sigmoid(k)
    return (1 - z) * h + z * g(v)


def _log_terms(projections: Tensor) -> tuple[Tensor, Tensor]:
    """log a = log(1 - z) and log b = log(z * g(v)) from the pre-activations [k; v]."""
    k, v = projections.chunk(2, dim=-1)
    # log z = logsigmoid(k) and log(1 - z) = logsigmoid(-k) = log z - k, without forming z.
    log_z = F.logsigmoid(k)
    return log_z - k, log_z + log_g(v)


mingru, naive_mingru = scan_ops("mingru", 2, _log_terms, mingru_cell)
