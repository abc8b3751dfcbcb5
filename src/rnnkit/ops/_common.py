"""What the recurrences share: input checks, the weight layout, the fused-kernel call, the loop,
and `recurrence`, which makes every op of ``rnnkit.ops`` from its cell or kernel.

Weights are a flat list in torch.nn's ``_flat_weights`` order: for each layer, the forward
direction then the reverse one, each ``w_ih, w_hh, [b_ih, b_hh], [w_hr]`` (``w_hr`` only for an
LSTM with a projection); minGRU and minLSTM, which have no recurrent weights, ``w_ih, [b_ih]``.
States are tuples inside this module: ``(h,)`` or ``(h, c)``.
"""

from __future__ import annotations

import inspect
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import Tensor
from torch.nn.utils.rnn import PackedSequence, pack_padded_sequence, pad_packed_sequence

from rnnkit.ops import varlen


@dataclass
class Layout:
    """Sizes read off the weights."""

    gates: int
    num_layers: int
    directions: int
    per_direction: int  # how many tensors one direction of one layer has
    has_biases: bool
    input_size: int
    hidden_size: int
    output_size: int  # proj_size when the LSTM projects, else hidden_size


def layout(weights, gates: int, num_layers: int, bidirectional: bool) -> Layout:
    directions = 2 if bidirectional else 1
    count = num_layers * directions
    per, rest = divmod(len(weights), count)
    if rest or per not in ((2, 3, 4, 5) if gates == 4 else (2, 4)):
        raise ValueError(
            f"expected {count} groups of recurrent weights (w_ih, w_hh, [b_ih, b_hh]"
            f"{', [w_hr]' if gates == 4 else ''}), found {len(weights)} tensors"
        )
    hidden = weights[1].shape[0] // gates
    output = weights[per - 1].shape[0] if per in (3, 5) else hidden
    return Layout(gates, num_layers, directions, per, per >= 4, weights[0].shape[1], hidden, output)


def input_only_layout(weights, gates: int, num_layers: int, bidirectional: bool) -> Layout:
    """The layout of minGRU / minLSTM weights: ``w_ih, [b_ih]`` per layer and direction."""
    directions = 2 if bidirectional else 1
    count = num_layers * directions
    per, rest = divmod(len(weights), count)
    if rest or per not in (1, 2):
        raise ValueError(
            f"expected {count} groups of input weights (w_ih, [b_ih]), found {len(weights)} tensors"
        )
    hidden = weights[0].shape[0] // gates
    return Layout(gates, num_layers, directions, per, per == 2, weights[0].shape[1], hidden, hidden)


def split(w) -> tuple:
    """One direction's tensors as ``(w_ih, w_hh, b_ih, b_hh, w_hr)``, None where absent."""
    w_ih, w_hh, *rest = w
    b_ih, b_hh = (rest[0], rest[1]) if len(rest) >= 2 else (None, None)
    w_hr = rest[-1] if len(rest) in (1, 3) else None
    return w_ih, w_hh, b_ih, b_hh, w_hr


def _shape(dims) -> str:
    return "(" + ", ".join(str(d) for d in dims) + ")"


def check_lengths(lengths, batch: int, steps: int, device: torch.device) -> Tensor:
    """Return lengths as a CPU int64 tensor, or raise ValueError.

    Lengths may live on the CPU (what packing wants) or on the input's device; any other device
    is a mistake.
    """
    if not isinstance(lengths, Tensor):
        lengths = torch.as_tensor(lengths)
    if lengths.device.type != "cpu" and lengths.device != device:
        raise ValueError(
            f"expected lengths on the cpu or on the input's device {device}, "
            f"found them on {lengths.device}"
        )
    if lengths.dim() != 1 or lengths.numel() != batch:
        raise ValueError(
            f"expected one length per sequence ({batch}), found lengths of shape "
            f"{_shape(lengths.shape)}"
        )
    if lengths.is_floating_point() or lengths.is_complex() or lengths.dtype == torch.bool:
        raise ValueError(f"expected integer lengths, found dtype {lengths.dtype}")
    lengths = lengths.to("cpu", torch.int64)
    if batch and (int(lengths.min()) < 1 or int(lengths.max()) > steps):
        raise ValueError(
            f"expected lengths between 1 and the sequence length {steps}, found {lengths.tolist()}"
        )
    return lengths


def check_state(state, lay: Layout, batch: int, x: Tensor, name: str = "initial_state") -> tuple:
    """Return the initial state as a tuple of tensors (zeros when None), or raise ValueError."""
    rows = lay.num_layers * lay.directions
    shapes = [(rows, batch, lay.output_size)]
    if lay.gates == 4:
        shapes.append((rows, batch, lay.hidden_size))
    if state is None:
        return tuple(x.new_zeros(s) for s in shapes)
    if lay.gates == 4:
        if not (isinstance(state, (tuple, list)) and len(state) == 2):
            raise ValueError(
                f"expected the LSTM {name} as a tuple (h_0, c_0), found {type(state).__name__}"
            )
        state = tuple(state)
    elif isinstance(state, Tensor):
        state = (state,)
    else:
        raise ValueError(f"expected {name} as one tensor, found {type(state).__name__}")
    for s, shape, part in zip(state, shapes, ("hidden", "cell"), strict=False):
        if not isinstance(s, Tensor) or tuple(s.shape) != shape:
            found = _shape(s.shape) if isinstance(s, Tensor) else type(s).__name__
            raise ValueError(f"expected {part} state of shape {_shape(shape)}, found {found}")
        if s.device != x.device:
            raise ValueError(
                f"expected {part} state on {x.device} like the input, found {s.device}"
            )
    return state


def check_input(x: Tensor, lay: Layout, batch_first: bool) -> None:
    if not isinstance(x, Tensor):
        raise ValueError(
            f"expected the input as a Tensor or PackedSequence, found {type(x).__name__}"
        )
    if x.dim() != 3:
        dims = "(batch, seq_len, features)" if batch_first else "(seq_len, batch, features)"
        raise ValueError(f"expected input of rank 3 {dims}, found shape {_shape(x.shape)}")
    if x.shape[-1] != lay.input_size:
        raise ValueError(
            f"expected input with {lay.input_size} features in its last dimension, "
            f"found {x.shape[-1]}"
        )
    if x.shape[1 if batch_first else 0] == 0:
        raise ValueError("expected at least one time step, found a sequence of length 0")


def prepare(x, lay: Layout, initial_state, lengths, batch_first):
    """Check everything against the weights' layout; return ``(state tuple, CPU lengths or
    None)``.

    Lengths that all equal the sequence length come back as None: nothing needs masking.
    """
    if isinstance(x, PackedSequence):
        if lengths is not None:
            raise ValueError("expected lengths=None with a PackedSequence, found both")
        if x.data.dim() != 2 or x.data.shape[-1] != lay.input_size:
            raise ValueError(
                f"expected packed data of shape (total, {lay.input_size}), "
                f"found {_shape(x.data.shape)}"
            )
        return check_state(initial_state, lay, int(x.batch_sizes[0]), x.data), None
    check_input(x, lay, batch_first)
    batch, steps = (x.shape[0], x.shape[1]) if batch_first else (x.shape[1], x.shape[0])
    state = check_state(initial_state, lay, batch, x)
    if lengths is not None:
        lengths = check_lengths(lengths, batch, steps, x.device)
        if batch and int(lengths.min()) == steps:
            lengths = None
    return state, lengths


def _permute(state: tuple, index) -> tuple:
    return state if index is None else tuple(s.index_select(1, index) for s in state)


def run_fused(kernel, x, weights, state, lengths, lay: Layout, *, dropout, training, batch_first):
    """Call a torch._VF recurrence (lstm, gru, rnn_tanh, rnn_relu): what torch.nn calls.
    Variable lengths on the devices of ``rnnkit.ops.varlen.DEVICES`` run in length segments
    (from ``varlen.MIN_FUSED_HIDDEN`` hidden units up)."""
    data = x.data if isinstance(x, PackedSequence) else x
    if lengths is not None or isinstance(x, PackedSequence):
        if data.device.type in varlen.DEVICES and lay.hidden_size >= varlen.MIN_FUSED_HIDDEN:
            return _run_fused_by_length(kernel, x, weights, state, lengths, lay,
                                        dropout=dropout, training=training,
                                        batch_first=batch_first)
    hx = state if lay.gates == 4 else state[0]
    args = (weights, lay.has_biases, lay.num_layers, dropout, training, lay.directions == 2)
    if lengths is None and not isinstance(x, PackedSequence):
        out, *final = kernel(x, hx, *args, batch_first)
        return out, tuple(final)
    packed = x
    if not isinstance(x, PackedSequence):
        packed = pack_padded_sequence(x, lengths, batch_first, enforce_sorted=False)
    hx = _permute(state, packed.sorted_indices)
    out, *final = kernel(packed.data, packed.batch_sizes, hx if lay.gates == 4 else hx[0], *args)
    final = _permute(tuple(final), packed.unsorted_indices)
    out = PackedSequence(out, packed.batch_sizes, packed.sorted_indices, packed.unsorted_indices)
    if isinstance(x, PackedSequence):
        return out, final
    steps = x.shape[1 if batch_first else 0]
    return pad_packed_sequence(out, batch_first, total_length=steps)[0], final


def _run_fused_by_length(kernel, x, weights, state, lengths, lay, *, dropout, training,
                        batch_first):
    """``run_fused`` for padded or packed variable-length input: torch's fused kernel on the
    padded segments of each layer and direction, so every call takes its fast padded path."""

    def direction(x, w, s, lengths, reverse):
        def segment(x, carry, _lengths):
            hx = tuple(c.unsqueeze(0) for c in carry)
            out, *final = kernel(x, hx if lay.gates == 4 else hx[0], w, lay.has_biases, 1, 0.0,
                                 training, False, False)
            return out, tuple(f.squeeze(0) for f in final)

        return varlen.run_by_length(segment, x, s, lengths, reverse, exact=True)

    return run_layers(direction, x, weights, state, lengths, lay, dropout=dropout,
                      training=training, batch_first=batch_first)


def _pack_like(padded: Tensor, packed: PackedSequence) -> PackedSequence:
    """Time-major padded outputs in the batch order and layout of ``packed``."""
    order = packed.sorted_indices
    if order is None:
        order = torch.arange(padded.shape[1], device=padded.device)
    sizes = packed.batch_sizes.tolist()
    data = torch.cat([padded[t, order[:n]] for t, n in enumerate(sizes)])
    return PackedSequence(data, packed.batch_sizes, packed.sorted_indices, packed.unsorted_indices)


def run_layers(direction, x, weights, state, lengths, lay: Layout, *, dropout, training,
               batch_first):
    """Run ``direction`` over layers and directions, with dropout between layers.

    ``direction(x, w, s, lengths, reverse) -> (y, s)`` runs one layer in one direction over the
    time-major ``x`` from the state tuple ``s`` (None when ``state`` is None); its outputs past a
    sequence's end are zero, and its final state is the one at each sequence's own last step.
    """
    if isinstance(x, PackedSequence):
        padded, lengths = pad_packed_sequence(x)
        out, final = run_layers(direction, padded, weights, state, lengths, lay, dropout=dropout,
                                training=training, batch_first=False)
        return _pack_like(out, x), final
    if batch_first:
        x = x.transpose(0, 1)
    finals = []
    for layer in range(lay.num_layers):
        outputs = []
        for reverse in range(lay.directions):
            k = layer * lay.directions + reverse
            w = weights[k * lay.per_direction : (k + 1) * lay.per_direction]
            s = None if state is None else tuple(part[k] for part in state)
            y, s = direction(x, w, s, lengths, bool(reverse))
            outputs.append(y)
            finals.append(s)
        x = outputs[0] if len(outputs) == 1 else torch.cat(outputs, 2)
        if dropout and training and layer + 1 < lay.num_layers:
            x = F.dropout(x, dropout, training=True)
    final = tuple(torch.stack(parts) for parts in zip(*finals, strict=True))
    return (x.transpose(0, 1) if batch_first else x), final


def run_loop(cell, x, weights, state, lengths, lay: Layout, *, dropout, training, batch_first):
    """The plain reference: one cell call per layer, direction and time step.

    ``cell(x_t, state, w) -> state`` where ``state[0]`` is the output. Past a sequence's end the
    state is held (so the reverse direction starts at each sequence's own last element) and the
    output is zero.
    """

    def direction(x, w, s, lengths, reverse):
        steps = x.shape[0]
        mask = None
        if lengths is not None:
            mask = torch.arange(steps).unsqueeze(1) < lengths.cpu().unsqueeze(0)  # (T, B)
            mask = mask.to(x.device).unsqueeze(2)
        # x[t] in the loop would make backward write a full-size zero tensor per step
        inputs, ys = x.unbind(0), [None] * steps
        for t in reversed(range(steps)) if reverse else range(steps):
            new = cell(inputs[t], s, w)
            if mask is not None:
                new = tuple(torch.where(mask[t], n, old) for n, old in zip(new, s, strict=True))
            s = new
            ys[t] = s[0]
        y = torch.stack(ys)
        return (y if mask is None else y * mask), s

    return run_layers(direction, x, weights, state, lengths, lay, dropout=dropout,
                      training=training, batch_first=batch_first)


def recurrence(name: str, gates: int, run, doc: str, *, input_only=False, zero_state=True):
    """An op with the shared signature: check x, weights, state and lengths against the weights'
    layout, then ``run(x, weights, state, lengths, lay, *, dropout, training, batch_first,
    **extra)`` (``run_fused`` or ``run_loop`` with their first argument bound, or a scan), whose
    keyword-only arguments with defaults become the op's extra keywords.

    ``input_only``: minGRU / minLSTM weights (``w_ih, [b_ih]``). ``zero_state=False``: ``run`` gets
    None for a missing initial state instead of zeros (a scan then starts without a carry). The
    op returns ``(outputs, final)``, final ``(h, c)`` for an LSTM and the tensor ``h`` otherwise.
    """
    read_layout = input_only_layout if input_only else layout
    extra = [p for p in inspect.signature(run).parameters.values()
             if p.kind is p.KEYWORD_ONLY and p.default is not p.empty]

    def op(x, weights, initial_state=None, lengths=None, *, num_layers=1, bidirectional=False,
           dropout=0.0, training=False, batch_first=False, **options):
        lay = read_layout(weights, gates, num_layers, bidirectional)
        state, lengths = prepare(x, lay, initial_state, lengths, batch_first)
        if initial_state is None and not zero_state:
            state = None
        out, final = run(x, weights, state, lengths, lay, dropout=dropout, training=training,
                         batch_first=batch_first, **options)
        return out, final if len(final) == 2 else final[0]

    # what help() and inspect show: the shared parameters and run's extras instead of **options
    shared = [p for p in inspect.signature(op).parameters.values() if p.kind is not p.VAR_KEYWORD]
    op.__signature__ = inspect.Signature(shared + extra)
    op.__name__ = op.__qualname__ = name
    op.__doc__ = doc
    return op
