"""One time step without autograd, for streaming and generation (what ``layer.step`` runs under
``torch.no_grad()``).

The LSTM keeps, per layer, one fused matrix ``[W_ih | W_hh]`` with its gate rows reordered to
(i, f, o, g) and the two biases summed, so a step is one matrix product per layer (the weights are
read once) and a few element-wise ops. The copy is rebuilt whenever a parameter changes (its
``data_ptr`` or in-place version counter moves). On the CPU the fused matrix is pre-packed for
oneDNN (float32, and bfloat16 where the CPU supports it): its blocked matrix-vector product ran
about 2.5x faster than ``addmm`` on the plain matrix here for the 2x512 LSTM, and torch's plain
bf16 ``addmm`` is slower than float32. GRU and RNN call torch's fused cells directly.
"""

from __future__ import annotations

import weakref

import torch
from torch import Tensor

from rnnkit import hardware
from rnnkit.ops._common import check_state, layout, split
from rnnkit.ops.lstm import lstm_cell

# module -> (key, fused weights); kept outside the module so copies and pickles skip it
_CACHE: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()


def _key(weights) -> tuple:
    return tuple((id(w), w.data_ptr(), w._version) for w in weights)


def _direction(weights, lay, k) -> tuple:
    """``(w_ih, w_hh, b_ih, b_hh, w_hr)`` of layer k (unidirectional)."""
    return split(weights[k * lay.per_direction : (k + 1) * lay.per_direction])


def _packable(w: Tensor) -> bool:
    """oneDNN-packed weights where this torch build and CPU have them (float32, or bfloat16 on a
    CPU with bf16 support)."""
    return (
        w.dtype in (torch.float32, torch.bfloat16)
        and w.device.type == "cpu"
        and torch.backends.mkldnn.is_available()
        and hasattr(torch.ops.mkldnn, "_reorder_linear_weight")
        and (w.dtype == torch.float32 or hardware.onednn_bf16())
    )


def _linear(x: Tensor, w: Tensor, b: Tensor) -> Tensor:
    """``x @ W.T + b`` with ``w`` either oneDNN-packed ``W`` or the dense ``W.T``."""
    if w.layout == torch._mkldnn:
        return torch.ops.mkldnn._linear_pointwise(x, w, b, "none", [], "")
    return torch.addmm(b, x, w)


def _fuse_lstm(weights, lay) -> list[tuple]:
    hidden = lay.hidden_size
    order = torch.cat(
        [
            torch.arange(2 * hidden),
            torch.arange(3 * hidden, 4 * hidden),
            torch.arange(2 * hidden, 3 * hidden),
        ]
    ).to(weights[0].device)
    fused = []
    for k in range(lay.num_layers):
        w_ih, w_hh, b_ih, b_hh, w_hr = _direction(weights, lay, k)
        w = torch.cat([w_ih, w_hh], 1)[order].detach()
        b = (b_ih + b_hh)[order].detach() if b_ih is not None else w.new_zeros(4 * hidden)
        w = torch.ops.mkldnn._reorder_linear_weight(w, 1) if _packable(w) else w.t()
        fused.append((w, b, None if w_hr is None else w_hr.detach().t()))
    return fused


def lstm_step(module, x: Tensor, state) -> tuple[Tensor, tuple[Tensor, Tensor]]:
    weights = module._flat_weights
    lay = layout(weights, 4, module.num_layers, False)
    h0, c0 = check_state(state, lay, x.shape[0], x, name="state")
    try:
        key = _key(weights)
    except RuntimeError:  # inference-mode parameters have no version counter to validate a cache
        return _lstm_cells(weights, lay, x, h0, c0)
    cache = _CACHE.get(module)
    if cache is None or cache[0] != key:
        cache = _CACHE[module] = (key, _fuse_lstm(weights, lay))
    fused = cache[1]
    h_n, c_n = torch.empty_like(h0), torch.empty_like(c0)
    three = 3 * lay.hidden_size
    inp = x
    for k, (w, b, w_hr) in enumerate(fused):
        gates = _linear(torch.cat((inp, h0[k]), 1), w, b)
        gates[:, :three].sigmoid_()
        gates[:, three:].tanh_()
        i, f, o, g = gates.chunk(4, 1)
        c = torch.mul(f, c0[k], out=c_n[k]).addcmul_(i, g)
        if w_hr is None:
            torch.mul(o, torch.tanh(c), out=h_n[k])
        else:
            torch.mm(o * torch.tanh(c), w_hr, out=h_n[k])
        inp = h_n[k]
    return inp, (h_n, c_n)


def _lstm_cells(weights, lay, x, h0, c0):
    """The step with torch's LSTM cell, straight from the parameters (no cache)."""
    inp, hs, cs = x, [], []
    for k in range(lay.num_layers):
        inp, c = lstm_cell(inp, (h0[k], c0[k]), *_direction(weights, lay, k))
        hs.append(inp)
        cs.append(c)
    return inp, (torch.stack(hs), torch.stack(cs))


def cell_step(module, x: Tensor, state, cell) -> tuple[Tensor, Tensor]:
    """GRU / RNN: ``cell(x, h, w_ih, w_hh, b_ih, b_hh)`` per layer."""
    weights = module._flat_weights
    lay = layout(weights, 3 if cell is torch.gru_cell else 1, module.num_layers, False)
    (h0,) = check_state(state, lay, x.shape[0], x, name="state")
    inp, hs = x, []
    for k in range(lay.num_layers):
        inp = cell(inp, h0[k], *_direction(weights, lay, k)[:4])
        hs.append(inp)
    return inp, torch.stack(hs)
