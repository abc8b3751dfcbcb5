"""Initialisation schemes for recurrent layers and cells (rnnkit's or torch.nn's).

Each function works in place on any module whose parameters follow torch.nn's names
(``weight_ih*``, ``weight_hh*``, ``bias_ih*``, ``bias_hh*``, ``weight_hr*``) and which has a
``hidden_size``; the gate count (4 LSTM, 3 GRU, 1 RNN) is read off ``weight_hh``.

The LSTM forget gate is fed by ``bias_ih + bias_hh``; the schemes below put the whole value in
``bias_ih`` and zero the matching slice of ``bias_hh``.
"""

from __future__ import annotations

import math

import torch
from torch import nn

INITS = ("default", "orthogonal", "chrono")


def _gates(module: nn.Module) -> int:
    for name, p in module.named_parameters():
        if name.startswith("weight_hh"):
            return p.shape[0] // module.hidden_size
    raise ValueError(
        f"expected a recurrent module with weight_hh parameters, found {type(module).__name__}"
    )


def _params(module: nn.Module, prefix: str):
    return [p for name, p in module.named_parameters() if name.startswith(prefix)]


def _gate_slice(module: nn.Module, what: str) -> slice:
    """Where the gate that keeps the old state sits: LSTM forget gate f, GRU update gate z."""
    gates, hidden = _gates(module), module.hidden_size
    if gates == 1:
        raise ValueError(f"expected a gated layer (LSTM or GRU) for {what}, found an Elman RNN")
    if not _params(module, "bias_ih"):
        raise ValueError(f"expected a layer with biases for {what}, found bias=False")
    return slice(hidden, 2 * hidden)  # f in (i, f, g, o); z in (r, z, n)


@torch.no_grad()
def default_(module: nn.Module) -> None:
    """torch.nn's scheme: every parameter uniform in [-1/sqrt(hidden), 1/sqrt(hidden)]."""
    bound = 1.0 / math.sqrt(module.hidden_size) if module.hidden_size > 0 else 0.0
    for p in module.parameters():
        nn.init.uniform_(p, -bound, bound)


@torch.no_grad()
def orthogonal_(module: nn.Module) -> None:
    """Orthogonal recurrent weights, one block per gate (and ``weight_hr``); zero biases.

    Input weights keep torch's default. Orthogonal recurrent matrices keep the norm of the
    state through time at initialisation (Saxe et al. 2014; Le et al. 2015).
    """
    default_(module)
    gates = _gates(module)
    for w in _params(module, "weight_hh"):
        for block in w.chunk(gates, 0):
            nn.init.orthogonal_(block)
    for w in _params(module, "weight_hr"):
        nn.init.orthogonal_(w)
    for b in _params(module, "bias_"):
        b.zero_()


@torch.no_grad()
def chrono_(module: nn.Module, t_max: float) -> None:
    """Chrono initialisation (Tallec & Ollivier 2018) of the gate biases, for dependencies up to
    ``t_max`` steps.

    LSTM: forget bias ``log(U[1, t_max - 1])``, input bias its negative. GRU: torch.nn's update
    gate z keeps the old state (``h' = (1 - z) * n + z * h``), so z takes the forget gate's role and
    its bias is ``log(U[1, t_max - 1])``. Other parameters are left alone.
    """
    if t_max is None or not t_max > 2:
        raise ValueError(
            f"expected chrono's t_max (longest dependency in steps) > 2, found {t_max}"
        )
    keep = _gate_slice(module, "chrono initialisation")
    hidden, lstm = module.hidden_size, _gates(module) == 4
    for b_ih, b_hh in zip(_params(module, "bias_ih"), _params(module, "bias_hh"), strict=True):
        b_keep = torch.log(torch.empty(hidden, device=b_ih.device).uniform_(1, t_max - 1))
        b_ih[keep] = b_keep
        b_hh[keep] = 0
        if lstm:  # input gate i
            b_ih[:hidden] = -b_keep
            b_hh[:hidden] = 0


@torch.no_grad()
def forget_bias_(module: nn.Module, value: float) -> None:
    """Set the LSTM forget-gate bias (GRU: update gate z, its counterpart) to ``value``."""
    keep = _gate_slice(module, "forget_bias")
    for b_ih, b_hh in zip(_params(module, "bias_ih"), _params(module, "bias_hh"), strict=True):
        b_ih[keep] = value
        b_hh[keep] = 0


def initialize_(module: nn.Module, init: str = "default", *, t_max=None, forget_bias=None) -> None:
    """Apply a named scheme, then ``forget_bias`` if given (it wins over chrono's forget bias)."""
    if init not in INITS:
        raise ValueError(f"expected init to be one of {', '.join(INITS)}, found {init!r}")
    if t_max is not None and init != "chrono":
        raise ValueError(f"expected t_max only with init='chrono', found init={init!r}")
    if init == "orthogonal":
        orthogonal_(module)
    else:
        default_(module)
    if init == "chrono":
        chrono_(module, t_max)
    if forget_bias is not None:
        forget_bias_(module, forget_bias)


class Initialised:
    """The keyword-only ``init``, ``forget_bias`` and ``t_max`` of rnnkit's cells and RNN/LSTM/GRU
    layers, kept so that ``reset_parameters`` applies them again."""

    def _keep_init(self, init, forget_bias, t_max) -> None:
        self.init, self.forget_bias, self.t_max = init, forget_bias, t_max

    def reset_parameters(self) -> None:
        initialize_(self, self.init, t_max=self.t_max, forget_bias=self.forget_bias)
