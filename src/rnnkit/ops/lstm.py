"""The LSTM recurrence (Hochreiter & Schmidhuber 1997), with torch.nn's gate order i, f, g, o.

``lstm`` calls torch's fused kernel (oneDNN on CPU, cuDNN on GPU); ``naive_lstm`` is the plain
loop it must agree with. States are ``(h, c)`` tuples of shape ``(layers * directions, batch, *)``;
with a projection ``h`` has ``proj_size`` features (Sak et al. 2014).
"""

from __future__ import annotations

from functools import partial

import torch
import torch.nn.functional as F
from torch.nn.utils.rnn import PackedSequence

from rnnkit import hardware
from rnnkit.ops._common import recurrence, run_fused, run_loop, split


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


def _cpu_has_bf16_lstm() -> bool:  # its own name, so a test can force the fallback here alone
    return hardware.onednn_bf16()


def _run_lstm(x, weights, state, lengths, lay, **kw):
    """torch's fused LSTM; in float32 where it would run in bf16 (autocast or bf16 tensors) on
    a CPU without bf16 support, since oneDNN then has no bf16 LSTM and torch fails ("could not
    create a primitive descriptor"). The layers around it keep bf16."""
    data = x.data if isinstance(x, PackedSequence) else x
    if data.device.type != "cpu" or _cpu_has_bf16_lstm() or not (
            data.dtype == torch.bfloat16 or torch.is_autocast_enabled("cpu")
            and torch.get_autocast_dtype("cpu") == torch.bfloat16):
        return run_fused(torch._VF.lstm, x, weights, state, lengths, lay, **kw)
    with torch.autocast("cpu", enabled=False):
        out, final = run_fused(torch._VF.lstm, x.to(torch.float32), [w.float() for w in weights],
                               tuple(s.float() for s in state), lengths, lay, **kw)
    return out.to(data.dtype), tuple(f.to(data.dtype) for f in final)


lstm = recurrence(
    "lstm", 4, _run_lstm,
    """Multi-layer LSTM through ``torch._VF.lstm``; x may be a PackedSequence.""",
)
naive_lstm = recurrence(
    "naive_lstm", 4, partial(run_loop, lambda x_t, s, w: naive_lstm_cell(x_t, s, *split(w))),
    """Reference for ``lstm``: a Python loop over layers, directions and time steps.""",
)
