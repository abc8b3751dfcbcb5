"""The Elman recurrence ``h' = act(W_ih x + b_ih + W_hh h + b_hh)`` with act tanh or relu.

``rnn`` calls torch's fused kernel; ``naive_rnn`` is the plain loop it must agree with. The state
is one tensor of shape ``(layers * directions, batch, hidden)``.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor

from rnnkit.ops._common import layout, prepare, run_fused, run_loop, split

_KERNELS = {"tanh": torch._VF.rnn_tanh, "relu": torch._VF.rnn_relu}
_CELLS = {"tanh": torch.rnn_tanh_cell, "relu": torch.rnn_relu_cell}


def _check(nonlinearity: str) -> None:
    if nonlinearity not in _KERNELS:
        raise ValueError(f"expected nonlinearity 'tanh' or 'relu', found {nonlinearity!r}")


def naive_rnn_cell(x, h, w_ih, w_hh, b_ih=None, b_hh=None, nonlinearity="tanh"):
    """One step, written out."""
    pre = F.linear(x, w_ih, b_ih) + F.linear(h, w_hh, b_hh)
    return torch.tanh(pre) if nonlinearity == "tanh" else torch.relu(pre)


def rnn_cell(x, h, w_ih, w_hh, b_ih=None, b_hh=None, nonlinearity="tanh"):
    """One step with torch's fused cell."""
    _check(nonlinearity)
    return _CELLS[nonlinearity](x, h, w_ih, w_hh, b_ih, b_hh)


def rnn(
    x,
    weights,
    initial_state=None,
    lengths=None,
    *,
    nonlinearity="tanh",
    num_layers=1,
    bidirectional=False,
    dropout=0.0,
    training=False,
    batch_first=False,
) -> tuple[Tensor, Tensor]:
    """Multi-layer Elman RNN through ``torch._VF.rnn_tanh`` / ``rnn_relu``."""
    _check(nonlinearity)
    lay = layout(weights, 1, num_layers, bidirectional)
    state, lengths = prepare(x, lay, initial_state, lengths, batch_first)
    out, final = run_fused(
        _KERNELS[nonlinearity],
        x,
        weights,
        state,
        lengths,
        lay,
        dropout=dropout,
        training=training,
        batch_first=batch_first,
    )
    return out, final[0]


def naive_rnn(
    x,
    weights,
    initial_state=None,
    lengths=None,
    *,
    nonlinearity="tanh",
    num_layers=1,
    bidirectional=False,
    dropout=0.0,
    training=False,
    batch_first=False,
):
    """Reference for ``rnn``: a Python loop over layers, directions and time steps."""
    _check(nonlinearity)
    lay = layout(weights, 1, num_layers, bidirectional)
    state, lengths = prepare(x, lay, initial_state, lengths, batch_first)

    def cell(x_t, s, w):
        return (naive_rnn_cell(x_t, s[0], *split(w)[:4], nonlinearity=nonlinearity),)

    out, final = run_loop(
        cell,
        x,
        weights,
        state,
        lengths,
        lay,
        dropout=dropout,
        training=training,
        batch_first=batch_first,
    )
    return out, final[0]
