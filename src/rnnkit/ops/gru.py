"""The GRU recurrence (Cho et al. 2014) in torch.nn's form: gates r, z, n and
``h' = (1 - z) * n + z * h``, the reset gate applied after the recurrent product.

``gru`` calls torch's fused kernel; ``naive_gru`` is the plain loop it must agree with. The state
is one tensor of shape ``(layers * directions, batch, hidden)``.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor

from rnnkit.ops._common import layout, prepare, run_fused, run_loop, split


def naive_gru_cell(x, h, w_ih, w_hh, b_ih=None, b_hh=None):
    """One step, written out."""
    gi_r, gi_z, gi_n = F.linear(x, w_ih, b_ih).chunk(3, -1)
    gh_r, gh_z, gh_n = F.linear(h, w_hh, b_hh).chunk(3, -1)
    r = torch.sigmoid(gi_r + gh_r)
    z = torch.sigmoid(gi_z + gh_z)
    n = torch.tanh(gi_n + r * gh_n)
    return (1 - z) * n + z * h


def gru_cell(x, h, w_ih, w_hh, b_ih=None, b_hh=None):
    """One step with torch's fused cell."""
    return torch.gru_cell(x, h, w_ih, w_hh, b_ih, b_hh)


def _unwrap(out, final):
    return out, final[0]


def gru(
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
    """Multi-layer GRU through ``torch._VF.gru``; x may be a PackedSequence."""
    lay = layout(weights, 3, num_layers, bidirectional)
    state, lengths = prepare(x, lay, initial_state, lengths, batch_first)
    return _unwrap(
        *run_fused(
            torch._VF.gru,
            x,
            weights,
            state,
            lengths,
            lay,
            dropout=dropout,
            training=training,
            batch_first=batch_first,
        )
    )


def naive_gru(
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
    """Reference for ``gru``: a Python loop over layers, directions and time steps."""
    lay = layout(weights, 3, num_layers, bidirectional)
    state, lengths = prepare(x, lay, initial_state, lengths, batch_first)
    cell = lambda x_t, s, w: (naive_gru_cell(x_t, s[0], *split(w)[:4]),)  # noqa: E731
    return _unwrap(
        *run_loop(
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
    )
