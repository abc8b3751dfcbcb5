"""MinGRU and MinLSTM layers (Feng et al. 2024, "Were RNNs all we needed?").

Same constructor, forward, state and `step` conventions as `rnnkit.nn.GRU`: input (T, batch,
input) or (batch, T, input) with `batch_first`, unbatched (T, input), or a PackedSequence;
state (num_layers * directions, batch, hidden); outputs past a sequence's end are zero and the
final state is taken at each sequence's own last step. Training runs the parallel log-space scan
of `rnnkit.ops`; `step` runs one O(1) update for decoding.

Extra keyword-only options: `init` ("default"; "orthogonal" is accepted and changes nothing, as
there are no recurrent weights; "chrono" with `t_max`), `forget_bias` (how strongly the old state
is kept: MinGRU's 1 - z = sigmoid(forget_bias) at zero input, MinLSTM's forget-gate bias),
`impl` ("fast", the scan, or "reference", the plain-loop ops, as on every rnnkit layer), and
`chunk_size`, how often the scan restarts its prefix sums (float32 precision against speed).
On CUDA tensors (float32, bfloat16, float16) with triton installed, "fast" runs the fused Triton
scan of `rnnkit.ops.triton_scan` instead, which needs no restarts and ignores `chunk_size`.

Each layer and direction has one input projection, `weight_ih_l{k}[_reverse]` (gates x input)
and `bias_ih_l{k}[_reverse]`; there are no recurrent weights. MinGRU's rows are [z; h~],
MinLSTM's [f; i; h~].
"""

import math
from functools import cache

import torch
import torch.nn.functional as F
from torch import Tensor, nn
from torch.nn.utils.rnn import PackedSequence

from rnnkit.nn.op_layer import OpLayer, check_impl
from rnnkit.ops.mingru import mingru, mingru_cell, naive_mingru
from rnnkit.ops.minlstm import minlstm, minlstm_cell, naive_minlstm
from rnnkit.ops.scan import DEFAULT_CHUNK

_TRITON_DTYPES = (torch.float32, torch.bfloat16, torch.float16)


@cache
def _triton_ops():
    """rnnkit.ops.triton_scan, or None without triton; imported on first use, as importing triton
    takes a while and CPU-only users never need it."""
    try:
        from rnnkit.ops import triton_scan
    except ImportError:
        return None
    return triton_scan


def _use_triton(x) -> bool:
    data = x.data if isinstance(x, PackedSequence) else x
    return (isinstance(data, Tensor) and data.is_cuda and data.dtype in _TRITON_DTYPES
            and _triton_ops() is not None)


def _dispatch(scan_op, triton_name: str):
    """The layers' fast op: the fused Triton scan for CUDA tensors, `scan_op` elsewhere."""

    def op(x, weights, initial_state=None, lengths=None, *, chunk_size=DEFAULT_CHUNK, **options):
        if _use_triton(x):
            return getattr(_triton_ops(), triton_name)(x, weights, initial_state, lengths,
                                                       **options)
        return scan_op(x, weights, initial_state, lengths, chunk_size=chunk_size, **options)

    op.__name__ = op.__qualname__ = scan_op.__name__
    op.__doc__ = scan_op.__doc__
    return op


class _MinRNN(OpLayer):
    gates: int  # rows of the input projection, in units of hidden_size
    forget_row: int  # which block of rows holds the gate that keeps the old state
    forget_sign: float  # +1 if a larger bias keeps more of the old state, -1 if less

    def __init__(
        self,
        input_size: int,
        hidden_size: int,
        num_layers: int = 1,
        bias: bool = True,
        batch_first: bool = False,
        dropout: float = 0.0,
        bidirectional: bool = False,
        device=None,
        dtype=None,
        *,
        init: str = "default",
        forget_bias: float | None = None,
        t_max: float | None = None,
        impl: str = "fast",
        chunk_size: int = DEFAULT_CHUNK,
    ):
        super().__init__()
        name = type(self).__name__
        if input_size < 1 or hidden_size < 1 or num_layers < 1:
            raise ValueError(
                f"{name} needs input_size, hidden_size and num_layers of at least 1, got "
                f"{input_size}, {hidden_size} and {num_layers}."
            )
        if not 0.0 <= dropout <= 1.0:
            raise ValueError(f"{name} dropout must be between 0 and 1, got {dropout}.")
        # "orthogonal" shapes recurrent weights, which these layers lack: it leaves the default,
        # so one init setting can be passed to every rnnkit layer.
        if init not in ("default", "orthogonal", "chrono"):
            raise ValueError(
                f"{name} init must be 'default', 'orthogonal' or 'chrono', got {init!r}."
            )
        if init == "chrono" and (t_max is None or t_max <= 2):
            raise ValueError(f"{name} init='chrono' needs t_max greater than 2, got {t_max}.")
        if not bias and (init == "chrono" or forget_bias is not None):
            raise ValueError(f"{name} init='chrono' and forget_bias need bias=True.")
        self.input_size = input_size
        self.hidden_size = hidden_size
        self.num_layers = num_layers
        self.bias = bias
        self.batch_first = batch_first
        self.dropout = float(dropout)
        self.bidirectional = bidirectional
        self.impl = check_impl(impl)
        self.chunk_size = chunk_size
        factory = {"device": device, "dtype": dtype}
        directions = 2 if bidirectional else 1
        self._names, self._flat_weights_names = [], []
        for layer in range(num_layers):
            layer_input = input_size if layer == 0 else hidden_size * directions
            for direction in range(directions):
                suffix = f"_l{layer}" + ("_reverse" if direction else "")
                weight = nn.Parameter(torch.empty(self.gates * hidden_size, layer_input, **factory))
                self.register_parameter("weight_ih" + suffix, weight)
                self._flat_weights_names.append("weight_ih" + suffix)
                if bias:
                    b = nn.Parameter(torch.empty(self.gates * hidden_size, **factory))
                    self.register_parameter("bias_ih" + suffix, b)
                    self._flat_weights_names.append("bias_ih" + suffix)
                self._names.append(suffix)
        self.reset_parameters(init=init, forget_bias=forget_bias, t_max=t_max)

    def reset_parameters(self, init="default", forget_bias=None, t_max=None) -> None:
        """torch's default uniform(-1/sqrt(hidden), 1/sqrt(hidden)), then the gate biases:
        `forget_bias` sets how strongly the old state is kept; chrono (Tallec & Ollivier 2018)
        draws it as log(U(1, t_max - 1)) so that memory spans range up to t_max steps."""
        bound = 1.0 / math.sqrt(self.hidden_size)
        for p in self.parameters():
            nn.init.uniform_(p, -bound, bound)
        if not self.bias:
            return
        h = self.hidden_size
        with torch.no_grad():
            for suffix in self._names:
                b = getattr(self, "bias_ih" + suffix)
                keep = b[self.forget_row * h : (self.forget_row + 1) * h]
                if init == "chrono":
                    keep.uniform_(1, t_max - 1).log_()
                    self._chrono_input_gate(b, keep)
                elif forget_bias is not None:
                    keep.fill_(forget_bias)
                else:
                    continue
                keep.mul_(self.forget_sign)

    def _chrono_input_gate(self, bias: Tensor, keep: Tensor) -> None:
        """MinLSTM sets its input gate to the opposite bias; MinGRU has one gate."""

    def extra_repr(self) -> str:
        s = f"{self.input_size}, {self.hidden_size}"
        if self.num_layers != 1:
            s += f", num_layers={self.num_layers}"
        for name, default in (
            ("bias", True),
            ("batch_first", False),
            ("dropout", 0.0),
            ("bidirectional", False),
            ("impl", "fast"),
        ):
            if getattr(self, name) != default:
                s += f", {name}={getattr(self, name)}"
        return s

    def _weights(self, suffix: str):
        return getattr(self, "weight_ih" + suffix), getattr(self, "bias_ih" + suffix, None)

    def _options(self) -> dict:
        options = super()._options()
        return {**options, "chunk_size": self.chunk_size} if self.impl == "fast" else options

    def _check_state(self, hx, batch: int, x: Tensor) -> Tensor:
        expected = (self.num_layers, batch, self.hidden_size)
        if not isinstance(hx, Tensor) or tuple(hx.shape) != expected:
            found = tuple(hx.shape) if isinstance(hx, Tensor) else type(hx).__name__
            raise ValueError(
                f"{type(self).__name__} expects an initial state of shape {expected}, got {found}."
            )
        if hx.device != x.device:
            raise ValueError(
                f"{type(self).__name__} expects the initial state on {x.device}, got {hx.device}."
            )
        return hx

    def step(self, x_t: Tensor, state: Tensor | None = None) -> tuple[Tensor, Tensor]:
        """One time step: x_t (batch, input) and state (num_layers, batch, hidden) or None
        give (y_t (batch, hidden), new state); unidirectional layers only."""
        name = type(self).__name__
        if self.bidirectional:
            raise ValueError(f"{name}.step needs a unidirectional layer, got bidirectional=True.")
        if not isinstance(x_t, Tensor) or x_t.dim() != 2 or x_t.shape[1] != self.input_size:
            found = tuple(x_t.shape) if isinstance(x_t, Tensor) else type(x_t).__name__
            raise ValueError(
                f"{name}.step expects x_t of shape (batch, {self.input_size}), got {found}."
            )
        batch = x_t.shape[0]
        if state is None:
            state = x_t.new_zeros(self.num_layers, batch, self.hidden_size)
        else:
            state = self._check_state(state, batch, x_t)
        new_states = []
        y = x_t
        for layer in range(self.num_layers):
            if layer and self.dropout and self.training:
                y = F.dropout(y, self.dropout, True)
            y = self._cell(y, state[layer], *self._weights(self._names[layer]))
            new_states.append(y)
        return y, torch.stack(new_states)


class MinGRU(_MinRNN):
    """minGRU: z = sigmoid(W_z x + b_z), h_t = (1 - z) h_{t-1} + z g(W_h x + b_h)."""

    gates, forget_row, forget_sign = 2, 0, -1.0
    fast_op = staticmethod(_dispatch(mingru, "triton_mingru"))
    reference_op = staticmethod(naive_mingru)
    _cell = staticmethod(mingru_cell)


class MinLSTM(_MinRNN):
    """minLSTM: f' h_{t-1} + i' g(W_h x + b_h) with gates normalised to f' + i' = 1."""

    gates, forget_row, forget_sign = 3, 0, 1.0
    fast_op = staticmethod(_dispatch(minlstm, "triton_minlstm"))
    reference_op = staticmethod(naive_minlstm)
    _cell = staticmethod(minlstm_cell)

    def _chrono_input_gate(self, bias: Tensor, keep: Tensor) -> None:
        h = self.hidden_size
        bias[h : 2 * h] = -keep
