"""RNNCell, LSTMCell and GRUCell: torch.nn's constructor, parameter names and return values.

``impl="reference"`` (a keyword or an attribute, as on the layers) switches from torch's fused
cell to the written-out formula.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

from rnnkit import ops
from rnnkit.nn.init import Initialised
from rnnkit.nn.op_layer import check_impl, check_sizes
from rnnkit.ops.rnn import check_nonlinearity


class CellBase(Initialised, nn.Module):
    """Shared by the three cells; subclasses set ``gates`` and the two cell functions."""

    gates = 1

    def __init__(self, input_size, hidden_size, bias=True, device=None, dtype=None, *,
                 init="default", forget_bias=None, t_max=None, impl="fast"):
        super().__init__()
        check_sizes(input_size=input_size, hidden_size=hidden_size)
        self.input_size, self.hidden_size, self.bias = input_size, hidden_size, bias
        self._keep_init(init, forget_bias, t_max)
        self.impl = check_impl(impl)
        factory = {"device": device, "dtype": dtype}
        rows = self.gates * hidden_size
        self.weight_ih = nn.Parameter(torch.empty(rows, input_size, **factory))
        self.weight_hh = nn.Parameter(torch.empty(rows, hidden_size, **factory))
        if bias:
            self.bias_ih = nn.Parameter(torch.empty(rows, **factory))
            self.bias_hh = nn.Parameter(torch.empty(rows, **factory))
        else:
            self.register_parameter("bias_ih", None)
            self.register_parameter("bias_hh", None)
        self.reset_parameters()

    def _weights(self) -> tuple:
        return self.weight_ih, self.weight_hh, self.bias_ih, self.bias_hh

    def _cell(self):
        check_impl(self.impl)
        return self.fast_cell if self.impl == "fast" else self.reference_cell

    def _prepare(self, x: Tensor, hx, parts: int) -> tuple[Tensor, tuple, bool]:
        """Check shapes; return a batched input, a state tuple (zeros if None), and unbatched."""
        if not isinstance(x, Tensor) or x.dim() not in (1, 2) or x.shape[-1] != self.input_size:
            found = tuple(x.shape) if isinstance(x, Tensor) else type(x).__name__
            raise ValueError(
                f"expected input of shape (batch, {self.input_size}) or ({self.input_size},), "
                f"found {found}"
            )
        unbatched = x.dim() == 1
        x = x.unsqueeze(0) if unbatched else x
        shape = (x.shape[0], self.hidden_size)
        if hx is None:
            return x, tuple(x.new_zeros(shape) for _ in range(parts)), unbatched
        state = tuple(hx) if parts == 2 and isinstance(hx, (tuple, list)) else (hx,)
        if len(state) != parts:
            raise ValueError(
                f"expected the LSTMCell state as a tuple (h, c), found {type(hx).__name__}"
            )
        for s in state:
            s_batched = s.unsqueeze(0) if isinstance(s, Tensor) and unbatched else s
            if not isinstance(s, Tensor) or tuple(s_batched.shape) != shape:
                found = tuple(s.shape) if isinstance(s, Tensor) else type(s).__name__
                want = shape[1:] if unbatched else shape
                raise ValueError(f"expected state of shape {want}, found {found}")
        if unbatched:
            state = tuple(s.unsqueeze(0) for s in state)
        return x, state, unbatched

    def extra_repr(self) -> str:
        s = f"{self.input_size}, {self.hidden_size}"
        return s if self.bias else s + ", bias=False"


class RNNCell(CellBase):
    """One Elman step, ``h' = act(W_ih x + b_ih + W_hh h + b_hh)``; returns ``h'``."""

    fast_cell = staticmethod(ops.rnn_cell)
    reference_cell = staticmethod(ops.naive_rnn_cell)

    def __init__(self, input_size, hidden_size, bias=True, nonlinearity="tanh", device=None,
                 dtype=None, **options):
        self.nonlinearity = check_nonlinearity(nonlinearity)
        super().__init__(input_size, hidden_size, bias, device, dtype, **options)

    def forward(self, input: Tensor, hx: Tensor | None = None) -> Tensor:
        x, (h,), unbatched = self._prepare(input, hx, 1)
        h = self._cell()(x, h, *self._weights(), nonlinearity=self.nonlinearity)
        return h.squeeze(0) if unbatched else h


class LSTMCell(CellBase):
    """One LSTM step; returns ``(h', c')``."""

    gates = 4
    fast_cell = staticmethod(ops.lstm_cell)
    reference_cell = staticmethod(ops.naive_lstm_cell)

    def forward(self, input: Tensor, hx=None) -> tuple[Tensor, Tensor]:
        x, state, unbatched = self._prepare(input, hx, 2)
        h, c = self._cell()(x, state, *self._weights())
        return (h.squeeze(0), c.squeeze(0)) if unbatched else (h, c)


class GRUCell(CellBase):
    """One GRU step; returns ``h'``."""

    gates = 3
    fast_cell = staticmethod(ops.gru_cell)
    reference_cell = staticmethod(ops.naive_gru_cell)

    def forward(self, input: Tensor, hx: Tensor | None = None) -> Tensor:
        x, (h,), unbatched = self._prepare(input, hx, 1)
        h = self._cell()(x, h, *self._weights())
        return h.squeeze(0) if unbatched else h
