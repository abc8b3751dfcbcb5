"""The Elman recurrence ``h' = act(W_ih x + b_ih + W_hh h + b_hh)`` with act tanh or relu.

``rnn`` calls torch's fused kernel; ``naive_rnn`` is the plain loop it must agree with. The state
is one tensor of shape ``(layers * directions, batch, hidden)``.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from rnnkit.ops._common import recurrence, run_fused, run_loop, split

_KERNELS = {"tanh": torch._VF.rnn_tanh, "relu": torch._VF.rnn_relu}
_CELLS = {"tanh": torch.rnn_tanh_cell, "relu": torch.rnn_relu_cell}


def check_nonlinearity(nonlinearity: str) -> str:
    """``nonlinearity`` if it is "tanh" or "relu" (the ops' and the layers' check)."""
    if nonlinearity not in _KERNELS:
        raise ValueError(f"expected nonlinearity 'tanh' or 'relu', found {nonlinearity!r}")
    return nonlinearity


def naive_rnn_cell(x, h, w_ih, w_hh, b_ih=None, b_hh=None, nonlinearity="tanh"):
    """One step, written out."""
    pre = F.linear(x, w_ih, b_ih) + F.linear(h, w_hh, b_hh)
    return torch.tanh(pre) if nonlinearity == "tanh" else torch.relu(pre)


def rnn_cell(x, h, w_ih, w_hh, b_ih=None, b_hh=None, nonlinearity="tanh"):
    """One step with torch's fused cell."""
    check_nonlinearity(nonlinearity)
    return _CELLS[nonlinearity](x, h, w_ih, w_hh, b_ih, b_hh)


def _fused(x, weights, state, lengths, lay, *, nonlinearity="tanh", **options):
    check_nonlinearity(nonlinearity)
    return run_fused(_KERNELS[nonlinearity], x, weights, state, lengths, lay, **options)


def _loop(x, weights, state, lengths, lay, *, nonlinearity="tanh", **options):
    check_nonlinearity(nonlinearity)

    def cell(x_t, s, w):
        return (naive_rnn_cell(x_t, s[0], *split(w)[:4], nonlinearity=nonlinearity),)

    return run_loop(cell, x, weights, state, lengths, lay, **options)


rnn = recurrence(
    "rnn", 1, _fused,
    """Multi-layer Elman RNN through ``torch._VF.rnn_tanh`` / ``rnn_relu``.""",
)
naive_rnn = recurrence(
    "naive_rnn", 1, _loop,
    """Reference for ``rnn``: a Python loop over layers, directions and time steps.""",
)
