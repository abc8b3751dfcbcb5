"""RNN, LSTM and GRU layers: torch.nn's constructor, parameter names, shapes and return values.

On top of torch.nn: ``forward(x, hx=None, lengths=None)`` for padded variable-length batches,
``step(x_t, state)`` for streaming, and keyword-only ``init``, ``forget_bias``, ``t_max`` (see
``rnnkit.nn.init``), and ``impl`` ("fast" | "reference", see ``rnnkit.nn.op_layer``).
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

from rnnkit import ops
from rnnkit.nn import streaming
from rnnkit.nn.init import Initialised
from rnnkit.nn.op_layer import OpLayer, check_impl, check_sizes
from rnnkit.ops.rnn import check_nonlinearity


class RecurrentBase(Initialised, OpLayer):
    """Shared by RNN, LSTM and GRU; subclasses set ``gates`` and the two ops."""

    gates = 1

    def __init__(self, input_size, hidden_size, num_layers=1, bias=True, batch_first=False,
                 dropout=0.0, bidirectional=False, proj_size=0, device=None, dtype=None, *,
                 init="default", forget_bias=None, t_max=None, impl="fast"):
        super().__init__()
        check_sizes(input_size=input_size, hidden_size=hidden_size, num_layers=num_layers)
        check_sizes(0, proj_size=proj_size)
        if not 0 <= dropout <= 1 or isinstance(dropout, bool):
            raise ValueError(f"expected dropout between 0 and 1, found {dropout!r}")
        if proj_size >= hidden_size:
            raise ValueError(
                f"expected proj_size smaller than hidden_size {hidden_size}, found {proj_size}"
            )
        self.input_size, self.hidden_size, self.num_layers = input_size, hidden_size, num_layers
        self.bias, self.batch_first, self.dropout = bias, batch_first, float(dropout)
        self.bidirectional, self.proj_size = bidirectional, proj_size
        self._keep_init(init, forget_bias, t_max)
        self.impl = check_impl(impl)
        directions = 2 if bidirectional else 1
        out = proj_size or hidden_size
        factory = {"device": device, "dtype": dtype}
        self._flat_weights_names = []
        rows = self.gates * hidden_size
        for layer in range(num_layers):
            fan_in = input_size if layer == 0 else out * directions
            for suffix in ("", "_reverse")[:directions]:
                shapes = {"weight_ih": (rows, fan_in), "weight_hh": (rows, out)}
                if bias:
                    shapes.update(bias_ih=(rows,), bias_hh=(rows,))
                if proj_size:
                    shapes["weight_hr"] = (proj_size, hidden_size)
                for name, shape in shapes.items():
                    full = f"{name}_l{layer}{suffix}"
                    self.register_parameter(full, nn.Parameter(torch.empty(shape, **factory)))
                    self._flat_weights_names.append(full)
        self.reset_parameters()

    def flatten_parameters(self) -> None:
        """Kept for torch.nn compatibility; weights are passed to the kernels as they are."""

    def step(self, x_t: Tensor, state=None):
        """One time step: ``x_t`` of shape ``(batch, input_size)`` -> ``(y_t, state)``.

        Same state format as forward. Under ``torch.no_grad()`` (or inference mode) this takes a
        fast path (see ``rnnkit.nn.streaming``); with autograd on it runs forward on one step.
        """
        if self.bidirectional:
            raise ValueError("expected a unidirectional layer for step(), found bidirectional=True")
        if not isinstance(x_t, Tensor) or x_t.dim() != 2 or x_t.shape[1] != self.input_size:
            found = tuple(x_t.shape) if isinstance(x_t, Tensor) else type(x_t).__name__
            raise ValueError(
                f"expected one time step of shape (batch, {self.input_size}), found {found}"
            )
        fast = self.impl == "fast" and not (self.training and self.dropout)
        if fast and not torch.is_grad_enabled():
            dtype = self._parameters[self._flat_weights_names[0]].dtype
            if x_t.dtype != dtype:
                raise ValueError(
                    f"expected input of dtype {dtype} like the weights, found {x_t.dtype}"
                )
            return self._fast_step(x_t, state)
        y, state = self.forward(x_t.unsqueeze(1 if self.batch_first else 0), state)
        return y.squeeze(1 if self.batch_first else 0), state

    def extra_repr(self) -> str:
        s = f"{self.input_size}, {self.hidden_size}"
        defaults = {
            "num_layers": 1,
            "bias": True,
            "batch_first": False,
            "dropout": 0.0,
            "bidirectional": False,
            "proj_size": 0,
            "init": "default",
            "forget_bias": None,
            "t_max": None,
            "impl": "fast",
        }
        for name, default in defaults.items():
            if getattr(self, name) != default:
                s += f", {name}={getattr(self, name)!r}"
        return s


class RNN(RecurrentBase):
    """Elman RNN, ``h' = act(W_ih x + b_ih + W_hh h + b_hh)``, act ``"tanh"`` or ``"relu"``."""

    def __init__(self, input_size, hidden_size, num_layers=1, nonlinearity="tanh", bias=True,
                 batch_first=False, dropout=0.0, bidirectional=False, device=None, dtype=None,
                 **options):
        self.nonlinearity = check_nonlinearity(nonlinearity)
        super().__init__(input_size, hidden_size, num_layers, bias, batch_first, dropout,
                         bidirectional, 0, device, dtype, **options)

    def _options(self) -> dict:
        return {**super()._options(), "nonlinearity": self.nonlinearity}

    fast_op = staticmethod(ops.rnn)
    reference_op = staticmethod(ops.naive_rnn)

    def _fast_step(self, x, state):
        cell = torch.rnn_tanh_cell if self.nonlinearity == "tanh" else torch.rnn_relu_cell
        return streaming.cell_step(self, x, state, cell)

    def extra_repr(self) -> str:
        s = super().extra_repr()
        return s if self.nonlinearity == "tanh" else s + ", nonlinearity='relu'"


class LSTM(RecurrentBase):
    """LSTM with torch.nn's gates (i, f, g, o) and optional projection ``proj_size``.

    ``forget_bias`` sets the forget gate's total bias (``bias_ih`` gets it, ``bias_hh`` zero).
    """

    gates = 4
    fast_op = staticmethod(ops.lstm)
    reference_op = staticmethod(ops.naive_lstm)

    def _fast_step(self, x, state):
        return streaming.lstm_step(self, x, state)


class GRU(RecurrentBase):
    """GRU with torch.nn's gates (r, z, n); ``forget_bias`` sets the update gate z's bias."""

    gates = 3
    fast_op = staticmethod(ops.gru)
    reference_op = staticmethod(ops.naive_gru)

    # torch.nn.GRU's positional order, which has no proj_size
    def __init__(self, input_size, hidden_size, num_layers=1, bias=True, batch_first=False,
                 dropout=0.0, bidirectional=False, device=None, dtype=None, **options):
        super().__init__(input_size, hidden_size, num_layers, bias, batch_first, dropout,
                         bidirectional, 0, device, dtype, **options)

    def _fast_step(self, x, state):
        return streaming.cell_step(self, x, state, torch.gru_cell)
