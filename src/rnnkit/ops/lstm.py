"""The LSTM recurrence (Hochreiter & Schmidhuber 1997), with torch.nn's gate order i, f, g, o.

``lstm`` calls torch's fused kernel (oneDNN on CPU, cuDNN on GPU); ``naive_lstm`` is the plain
loop it must agree with. States are ``(h, c)`` tuples of shape ``(layers * directions, batch, *)``;
with a projection ``h`` has ``proj_size`` features (Sak et al. 2014).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor

from rnnkit.ops._common import layout, prepare, run_fused, run_loop, split


def naive_lstm_cell(x, state, w_ih, w_hh, b_ih=None, b_hh=None, w_hr=None):
    """One step, written out: returns ``(h, c)``."""
    h, c = state
    gates = F.linear(x, w_ih, b_ih) + F.linear(h, w_hh, b_hh)
    i, f, g, o = gates.chunk(4, -1)
    c = torch.sigmoid(f) * c + torch.sigmoid(i) * torch.tanh(g)
    h = torch.sigmoid(o) * torch.tanh(c)
    if w_hr is not None:
        h = F.linear(h, w_hr)
    return h, c


def lstm_cell(x, state, w_ih, w_hh, b_ih=None, b_hh=None, w_hr=None):
    """One step with torch's fused cell (the written-out one with a projection, which the
    fused cell does not support)."""
    if w_hr is not None:
        return naive_lstm_cell(x, state, w_ih, w_hh, b_ih, b_hh, w_hr)
    return torch.lstm_cell(x, tuple(state), w_ih, w_hh, b_ih, b_hh)


def lstm(
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
) -> tuple[Tensor, tuple[Tensor, Tensor]]:
    """Multi-layer LSTM through ``torch._VF.lstm``; x may be a PackedSequence."""
    lay = layout(weights, 4, num_layers, bidirectional)
    state, lengths = prepare(x, lay, initial_state, lengths, batch_first)
    return run_fused(
        torch._VF.lstm,
        x,
        weights,
        state,
        lengths,
        lay,
        dropout=dropout,
        training=training,
        batch_first=batch_first,
    )


def naive_lstm(
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
):
    """Reference for ``lstm``: a Python loop over layers, directions and time steps."""
    lay = layout(weights, 4, num_layers, bidirectional)
    state, lengths = prepare(x, lay, initial_state, lengths, batch_first)
    return run_loop(
        lambda x_t, s, w: naive_lstm_cell(x_t, s, *split(w)),
        x,
        weights,
        state,
        lengths,
        lay,
        dropout=dropout,
        training=training,
        batch_first=batch_first,
    )
