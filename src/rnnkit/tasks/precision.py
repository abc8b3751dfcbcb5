"""Which precision a loaded model infers in: ``precision="auto"`` decided where it is loaded.

Auto means bf16 only on a CPU with bf16 matrix instructions (``rnnkit.train.precision.bf16_unit``),
and only when a short probe of this model, the predictor's own inference on a made-up input of
typical size, finds bf16 faster (at most ``FASTER`` of the float32 time) and its outputs within
``TOLERANCE`` of float32's. Elsewhere float32. Measured gains differ by task and processor (on
a Zen 4 with AVX512-BF16: language-model sampling 1.02x, classification, translation and
forecasting 1.3-1.6x; emulated bf16 0.14-1.08x on an AMD without bf16 instructions,
BENCHMARKS.md), so the probe, not a rule, decides. Each predictor has
a ``precision`` (``rnnkit.train.precision.Precision``: asked, used, reason).
"""

from __future__ import annotations

import functools
from collections.abc import Callable

import torch

from rnnkit.errors import UserError
from rnnkit.train.config import PRECISIONS
from rnnkit.train.device import autocast
from rnnkit.train.precision import FASTER, MIN_SIDE, Precision, bf16_unit, largest_side, time_both

PROBE_SECONDS = 1.0  # inference is probed at every load: keep it short
# Largest difference bf16 may make: probabilities (classes, tokens, characters) or forecasts in
# the training data's standard deviations
TOLERANCE = 0.05

# what a predictor's probe does: run its inference in bf16 (True) or float32 (False) on a fixed
# made-up input and return the probabilities or scaled values to compare
Probe = Callable[[bool], torch.Tensor]


def check(asked: str) -> str:
    if asked not in PRECISIONS:
        raise UserError(f"precision must be one of {', '.join(PRECISIONS)}, found {asked!r}.")
    return asked


def choose(asked: str, device: torch.device | str, model: torch.nn.Module,
           probe: Probe) -> Precision:
    """The precision a predictor of ``model`` on ``device`` infers in, for ``asked``."""
    check(asked)
    device = torch.device(device)
    if asked != "auto":
        return Precision(asked, asked, f"precision {asked} was asked for")
    if device.type != "cpu":
        return Precision(asked, "fp32", f"auto tries bf16 inference on CPUs only, not on "
                         f"{device.type}")
    unit = bf16_unit()
    if unit is None:
        return Precision(asked, "fp32", "this processor has no bf16 matrix instructions "
                         "(amx_bf16, avx512_bf16)")
    side = largest_side(model)
    if side is None or side < MIN_SIDE:
        return Precision(asked, "fp32", f"the model's matrices are small (largest side {side} "
                         f"< {MIN_SIDE}), not worth a probe")
    with torch.no_grad():
        diff = float((probe(False).float() - probe(True).float()).abs().max())
        if diff > TOLERANCE:
            return Precision(asked, "fp32", f"{unit} present but bf16 changed the outputs by "
                             f"{diff:.3f} (more than {TOLERANCE})")
        fp32_s, bf16_s = time_both(probe, PROBE_SECONDS)
    timing = (f"inference took {bf16_s * 1e3:.1f} ms in bf16 and {fp32_s * 1e3:.1f} ms in "
              f"float32 ({fp32_s / bf16_s:.2f}x; outputs within {diff:.3f})")
    if bf16_s <= FASTER * fp32_s:
        return Precision(asked, "bf16", f"{unit} present and {timing}")
    return Precision(asked, "fp32", f"{unit} present but bf16 was not faster: {timing}")


def made_up_ids(shape: tuple[int, ...], low: int, high: int) -> torch.Tensor:
    """Token ids of a fixed draw (a probe's input: the same at every load)."""
    gen = torch.Generator().manual_seed(0)
    return torch.randint(low, max(low + 1, high), shape, generator=gen)


def made_up_values(*shape: int) -> torch.Tensor:
    gen = torch.Generator().manual_seed(0)
    return torch.randn(*shape, generator=gen)


FLOAT32 = Precision("fp32", "fp32", "float32 unless a loader chose otherwise")


def autocast_of(module: torch.nn.Module, bf16: bool):
    """bf16 autocast on ``module``'s device, or nothing (a probe's two sides)."""
    return autocast(next(module.parameters()).device, torch.bfloat16 if bf16 else None)


def in_precision(method: Callable) -> Callable:
    """Run a predictor's method under its ``precision``: bf16 autocast, or plain float32."""

    @functools.wraps(method)
    def run(self, *args, **kwargs):
        with autocast_of(self.module, self.precision.used == "bf16"):
            return method(self, *args, **kwargs)

    return run
