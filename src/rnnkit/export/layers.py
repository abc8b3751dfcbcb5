"""Export twins of rnnkit's layers: the same weights in modules that torch.onnx and torch.export
trace with a dynamic number of time steps.

rnnkit's layers run their recurrences as Python loops or packed sequences, which a tracer unrolls
for the example's length. A twin runs each layer and direction on its own: as a one-layer
``torch.nn`` LSTM/GRU/RNN (``loop=False``: ONNX's fused LSTM/GRU/RNN ops, any length), or as a
``while_loop`` over the time steps of the layer's cell (``loop=True``: what torch.export needs,
and the minGRU/minLSTM layers in ONNX, as a Loop). Variable lengths are handled without packing:
the reverse direction reads each sequence reversed within its own length, and outputs past an
end are zeroed. With lengths, the final state returned is the top layer's last output of each
direction at each sequence's own end, which is all the models read from it then.
"""

from __future__ import annotations

import copy

import torch
import torch.nn.functional as F
from torch import Tensor, nn
from torch._higher_order_ops.while_loop import while_loop

from rnnkit import nn as rnn_layers
from rnnkit.errors import UserError
from rnnkit.nn.subword_embedding import SubwordEmbedding
from rnnkit.ops.minlstm import _log_ratio as log_ratio
from rnnkit.ops.scan import g
from rnnkit.ops.varlen import time_reverse

FUSED = {rnn_layers.LSTM: nn.LSTM, rnn_layers.GRU: nn.GRU, rnn_layers.RNN: nn.RNN}


def _parts(t: Tensor, n: int) -> list[Tensor]:
    """``t`` cut into ``n`` equal blocks of columns (slices of a static width: chunk() on a
    traced size would add shape guards)."""
    w = t.shape[1] // n
    return [t[:, i * w:(i + 1) * w] for i in range(n)]


def _lstm_cell(p, state, w_hh, b_hh=None, w_hr=None):
    h, c = state
    i, f, g, o = _parts(p + F.linear(h, w_hh, b_hh), 4)
    c = torch.sigmoid(f) * c + torch.sigmoid(i) * torch.tanh(g)
    h = torch.sigmoid(o) * torch.tanh(c)
    return (h if w_hr is None else F.linear(h, w_hr)), c


def _gru_cell(p, state, w_hh, b_hh=None):
    (h,) = state
    xr, xz, xn = _parts(p, 3)
    hr, hz, hn = _parts(F.linear(h, w_hh, b_hh), 3)
    r, z = torch.sigmoid(xr + hr), torch.sigmoid(xz + hz)
    return ((1 - z) * torch.tanh(xn + r * hn) + z * h,)


def _rnn_cell(act):
    def cell(p, state, w_hh, b_hh=None):
        return (act(p + F.linear(state[0], w_hh, b_hh)),)
    return cell


def _mingru_cell(p, state):
    k, v = _parts(p, 2)
    z = torch.sigmoid(k)
    return ((1 - z) * state[0] + z * g(v),)


def _minlstm_cell(p, state):
    k_f, k_i, v = _parts(p, 3)
    d = log_ratio(k_f, k_i)
    return (torch.sigmoid(d) * state[0] + torch.sigmoid(-d) * g(v),)


MIN_CELLS = {rnn_layers.MinGRU: _mingru_cell, rnn_layers.MinLSTM: _minlstm_cell}


class LoopDirection(nn.Module):
    """One layer and direction as a ``while_loop`` over time of the layer's cell, which reads
    the input projections (computed for all steps at once) and the recurrent weights."""

    def __init__(self, cell, w_ih: Tensor, b_ih: Tensor | None, weights: list[Tensor]):
        super().__init__()
        self.cell = cell
        self.ih = nn.Linear(w_ih.shape[1], w_ih.shape[0], bias=b_ih is not None)
        self.hh = nn.ParameterList([nn.Parameter(w.detach().clone(), requires_grad=False)
                                    for w in weights])
        with torch.no_grad():
            self.ih.weight.copy_(w_ih)
            if b_ih is not None:
                self.ih.bias.copy_(b_ih)

    def forward(self, x: Tensor, state: tuple[Tensor, ...]) -> tuple[Tensor, tuple]:
        """``x`` (T, B, F), ``state`` a tuple of (B, H) -> outputs (T, B, H), final state."""
        proj = self.ih(x)
        weights = list(self.hh)
        out = x.new_zeros(x.shape[0], x.shape[1], state[0].shape[-1])

        def cond(i, out, *s):
            return i < proj.shape[0]

        def body(i, out, *s):
            # index_select/index_copy with a tensor index: no data-dependent ints to serialise
            at = i.view(1)
            s = self.cell(proj.index_select(0, at).squeeze(0), s, *weights)
            return (i + 1, out.index_copy(0, at, s[0].unsqueeze(0)), *s)

        _, out, *final = while_loop(cond, body, (torch.zeros((), dtype=torch.long), out, *state))
        return out, tuple(final)


class FusedDirection(nn.Module):
    """One layer and direction as a one-layer torch.nn LSTM/GRU/RNN (time first)."""

    def __init__(self, layer: nn.Module, suffix: str, input_size: int):
        super().__init__()
        kind = FUSED[type(layer)]
        options = {"proj_size": layer.proj_size} if kind is nn.LSTM else {}
        if kind is nn.RNN:
            options["nonlinearity"] = layer.nonlinearity
        self.rnn = kind(input_size, layer.hidden_size, 1, bias=layer.bias, **options)
        with torch.no_grad():
            for name, p in self.rnn.named_parameters():
                p.copy_(getattr(layer, name.replace("_l0", suffix)))

    def forward(self, x: Tensor, state: tuple[Tensor, ...]) -> tuple[Tensor, tuple]:
        s = tuple(t.unsqueeze(0) for t in state)
        y, s = self.rnn(x, s if len(s) == 2 else s[0])
        return y, tuple(t.squeeze(0) for t in (s if isinstance(s, tuple) else (s,)))


def _direction(layer, suffix: str, input_size: int, loop: bool) -> nn.Module:
    kind = type(layer)
    if kind in FUSED and not loop:
        return FusedDirection(layer, suffix, input_size)

    def get(name):
        return getattr(layer, name + suffix, None)

    if kind in MIN_CELLS:
        return LoopDirection(MIN_CELLS[kind], get("weight_ih"), get("bias_ih"), [])
    hh = [get("weight_hh")] + ([get("bias_hh")] if layer.bias else [])
    if kind is rnn_layers.LSTM:
        hh += [get("weight_hr")] if layer.proj_size else []
        cell = _lstm_cell if layer.bias or not layer.proj_size else \
            (lambda p, s, w_hh, w_hr: _lstm_cell(p, s, w_hh, None, w_hr))
    elif kind is rnn_layers.GRU:
        cell = _gru_cell
    else:
        cell = _rnn_cell(torch.tanh if layer.nonlinearity == "tanh" else torch.relu)
    return LoopDirection(cell, get("weight_ih"), get("bias_ih"), hh)


class RecurrentTwin(nn.Module):
    """An rnnkit recurrent layer's twin: ``forward(x, hx=None, lengths=None)`` and ``step``
    with the layer's conventions (batch_first as the layer, states as torch.nn's)."""

    def __init__(self, layer: nn.Module, loop: bool):
        super().__init__()
        self.batch_first, self.num_layers = layer.batch_first, layer.num_layers
        self.bidirectional = layer.bidirectional
        self.lstm = isinstance(layer, rnn_layers.LSTM)
        self.hidden_size = layer.hidden_size
        self.out_size = getattr(layer, "proj_size", 0) or layer.hidden_size
        dirs = 2 if self.bidirectional else 1
        units = []
        for k in range(layer.num_layers):
            width = layer.input_size if k == 0 else self.out_size * dirs
            for suffix in ("", "_reverse")[:dirs]:
                units.append(_direction(layer, f"_l{k}{suffix}", width, loop))
        self.units = nn.ModuleList(units)

    def _initial(self, x: Tensor, hx) -> list[tuple[Tensor, ...]]:
        n, b = len(self.units), x.shape[1]
        if hx is None:
            h = x.new_zeros(n, b, self.out_size)
            hx = (h, x.new_zeros(n, b, self.hidden_size)) if self.lstm else h
        parts = hx if isinstance(hx, tuple | list) else (hx,)
        return [tuple(p[i].clone() for p in parts) for i in range(n)]  # no views into while_loop

    def forward(self, x: Tensor, hx=None, lengths: Tensor | None = None):
        if self.batch_first:
            x = x.transpose(0, 1)
        states, finals = self._initial(x, hx), []
        dirs = 2 if self.bidirectional else 1
        if lengths is not None:
            lengths = torch.as_tensor(lengths).to(x.device)
        for k in range(self.num_layers):
            outs = []
            for d in range(dirs):
                unit = self.units[k * dirs + d]
                inp = time_reverse(x, lengths) if d else x
                y, final = unit(inp, states[k * dirs + d])
                outs.append(time_reverse(y, lengths) if d else y)
                finals.append(final)
            x = torch.cat(outs, 2) if dirs == 2 else outs[0]
        if lengths is None:
            state = tuple(torch.stack([f[i] for f in finals]) for i in range(len(finals[0])))
            state = state if self.lstm else state[0]
        else:
            live = torch.arange(x.shape[0], device=x.device)[:, None] < lengths[None, :]
            x = x * live[:, :, None].to(x.dtype)
            last = (lengths - 1).view(1, -1, 1).expand(1, x.shape[1], self.out_size)
            state = x[..., : self.out_size].gather(0, last)  # forward direction at each end
            if dirs == 2:
                state = torch.cat([state, x[:1, :, self.out_size:]])  # reverse ends at step 0
        return (x.transpose(0, 1) if self.batch_first else x), state

    def step(self, x_t: Tensor, state=None):
        time = 1 if self.batch_first else 0
        y, state = self.forward(x_t.unsqueeze(time), state)
        return y.squeeze(time), state


class SubwordTwin(nn.Module):
    """A SubwordEmbedding whose n-gram buckets come with the input: ``ids`` (B, T, 1 + G),
    the token id then its buckets padded with -1 (the graph's ``tokens`` and ``ngrams``)."""

    def __init__(self, emb: SubwordEmbedding):
        super().__init__()
        self.num_words, self.unk_id = emb.num_words, emb.unk_id
        self.word = copy.deepcopy(emb.word)
        self.grams = nn.Parameter(emb.grams.weight.detach().clone(), requires_grad=False)

    def forward(self, ids: Tensor) -> Tensor:
        tokens, grams = ids[..., 0], ids[..., 1:]
        rows = torch.where(tokens < self.num_words, tokens, torch.full_like(tokens, self.unk_id))
        have = (grams >= 0).to(self.grams.dtype).unsqueeze(-1)
        return self.word(rows) + (self.grams[grams.clamp(min=0)] * have).sum(-2)


def twin(model: nn.Module, loop: bool) -> nn.Module:
    """A copy of ``model`` in eval mode with every rnnkit recurrent layer (and subword
    embedding) replaced by its export twin; a UserError for a layer that has none."""
    model = copy.deepcopy(model).eval()
    for name, module in list(model.named_modules()):
        if type(module) in FUSED or type(module) in MIN_CELLS:
            new = RecurrentTwin(module, loop)
        elif isinstance(module, SubwordEmbedding):
            new = SubwordTwin(module)
        elif isinstance(module, nn.RNNBase) or type(module).__module__.startswith("rnnkit.nn"):
            raise UserError(f"export does not support the layer {type(module).__name__} "
                            f"of this model.")
        else:
            continue
        parent, _, child = name.rpartition(".")
        setattr(model.get_submodule(parent) if parent else model, child, new)
    for m in model.modules():  # the classifiers asked their old layer whether it takes lengths
        if hasattr(m, "_takes_lengths"):
            m._takes_lengths = True
    return model
