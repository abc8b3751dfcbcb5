"""The GRU recurrence (Cho et al. 2014) in torch.nn's form: gates r, z, n and
``h' = (1 - z) * n + z * h``, the reset gate applied after the recurrent product.

``gru`` calls torch's fused kernel; ``naive_gru`` is the plain loop it must agree with. The state
is one tensor of shape ``(layers * directions, batch, hidden)``.
"""

from __future__ import annotations

from functools import partial

import torch
import torch.nn.functional as F

from rnnkit.ops._common import recurrence, run_fused, run_loop, split


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


gru = recurrence(
    "gru", 3, partial(run_fused, torch._VF.gru),
    """Multi-layer GRU through ``torch._VF.gru``; x may be a PackedSequence.""",
)
naive_gru = recurrence(
    "naive_gru", 3,
    partial(run_loop, lambda x_t, s, w: (naive_gru_cell(x_t, s[0], *split(w)[:4]),)),
    """Reference for ``gru``: a Python loop over layers, directions and time steps.""",
)
