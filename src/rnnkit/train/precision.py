"""Which precision a run trains in: ``precision: auto`` decided on the machine it runs on.

On a CUDA GPU with bf16, auto means bf16 autocast. On a CPU it means bf16 autocast only where
the processor has bf16 matrix instructions (AMX-BF16, AVX512-BF16, Arm's BF16) and a short probe
of this model on a real batch (a few forward and backward passes, float32 and bf16 interleaved)
finds bf16 faster: the same instructions sped the default recipes' training steps up by 1.07x
(speech, which stays float32) to 1.63x (text generation) on a Zen 4 with AVX512-BF16, and by
1.1-1.9x on a Xeon with AMX (BENCHMARKS.md). Autocast keeps the master weights, the loss and
the optimiser state in float32 either way. The choice is saved in the run's ``config.json``
(``precision``: asked, used, reason); a resumed run keeps it without probing again.
"""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from typing import Any

import torch

from rnnkit import hardware
from rnnkit.train.device import autocast, to_device
from rnnkit.train.reproducibility import get_rng_state, set_rng_state

PROBE_SECONDS = 2.0  # the probe stops after the first pair that ends past this
PROBE_PAIRS = 4  # timed fp32/bf16 pairs when there is time for them
FASTER = 0.85  # bf16 must take at most this fraction of the float32 time: noise is not a
# gain, and a choice that flips between runs (sentiment measured 1.09-1.16x) would make the same
# command train differently from run to run
MIN_SIDE = 64  # models whose matrices all have a side below this are not probed
BF16_FLAGS = ("amx_bf16", "avx512_bf16", "bf16")  # x86 AMX and AVX-512, Arm's BF16 extension


@dataclass(frozen=True)
class Precision:
    """The precision a run trains in (``used``: ``"fp32"`` or ``"bf16"``) and why."""

    asked: str
    used: str
    reason: str

    @property
    def dtype(self) -> torch.dtype | None:
        """The autocast dtype: bfloat16, or None for plain float32."""
        return torch.bfloat16 if self.used == "bf16" else None

    def line(self) -> str:
        name = "bf16 autocast (float32 weights)" if self.used == "bf16" else "float32"
        return f"precision: {name}: {self.reason}"

    def to_json(self) -> dict[str, str]:
        return asdict(self)


def bf16_unit() -> str | None:
    """The processor's bf16 matrix-instruction flag that torch's oneDNN kernels can use, or None."""
    flags = hardware.cpu_flags()
    unit = next((f for f in BF16_FLAGS if f in flags), None)
    if unit is None or not hardware.onednn_bf16():
        return None
    return unit


def choose(asked: str, device: torch.device, *, saved: dict[str, Any] | None = None,
           resumed: bool = False, deterministic: bool = False,
           model: torch.nn.Module | None = None,
           probe: Callable[[], tuple[float, float]] | None = None) -> Precision:
    """The precision for ``asked`` (``auto``, ``fp32``, ``bf16``) on ``device``.

    ``saved``: the choice a resumed run made (kept under auto); ``probe() -> (fp32_s, bf16_s)``
    times a training step of the model both ways, called only when auto has to measure.
    """
    if asked != "auto":
        caveat = ""
        if asked == "bf16" and deterministic and device.type == "cpu" and torch.get_num_threads() > 1:
            caveat = "; bf16 on several CPU threads does not repeat bit for bit"
        return Precision(asked, asked, f"precision {asked} was set (by a flag, a config file or "
                         f"the task's defaults){caveat}")
    if saved and saved.get("used") in ("fp32", "bf16"):
        reason = str(saved.get("reason", ""))
        kept = "kept from the run being resumed"
        return Precision(asked, saved["used"],
                         reason if reason.startswith(kept) else f"{kept} ({reason})")
    if device.type == "cuda":
        if torch.cuda.is_bf16_supported():
            return Precision(asked, "bf16", "this CUDA GPU supports bf16")
        return Precision(asked, "fp32", "this CUDA GPU has no bf16")
    if device.type != "cpu":
        return Precision(asked, "fp32", f"auto picks bf16 on CPUs and CUDA GPUs, not {device.type}")
    if resumed:  # runs from before the choice was saved trained in float32 on a CPU
        return Precision(asked, "fp32", "the run being resumed trained in float32")
    unit = bf16_unit()
    if unit is None:
        return Precision(asked, "fp32", "this processor has no bf16 matrix instructions "
                         "(amx_bf16, avx512_bf16)")
    if deterministic:
        # oneDNN's threaded bf16 kernels (LSTM backward) differ in the last bits from one process
        # to the next, and a timed probe could choose differently from one run to the next
        return Precision(asked, "fp32", "deterministic mode: bf16 training on a CPU does not "
                         "repeat bit for bit")
    side = largest_side(model) if model is not None else None
    if side is not None and side < MIN_SIDE:
        # tiny models (tests, smoke runs) stay reproducible and start at once; bf16 could save
        # them only milliseconds
        return Precision(asked, "fp32", f"the model's matrices are small (largest side {side} "
                         f"< {MIN_SIDE}), not worth a probe")
    if probe is None:
        return Precision(asked, "fp32", f"{unit} present but nothing to probe")
    fp32_s, bf16_s = probe()
    timing = (f"a training step took {bf16_s * 1e3:.1f} ms in bf16 and {fp32_s * 1e3:.1f} ms in "
              f"float32 ({fp32_s / bf16_s:.2f}x)")
    if bf16_s <= FASTER * fp32_s:
        return Precision(asked, "bf16", f"{unit} present and {timing}")
    return Precision(asked, "fp32", f"{unit} present but bf16 was not faster: {timing}")


def largest_side(model: torch.nn.Module) -> int | None:
    """The smaller side of the model's largest weight matrix (None without matrices)."""
    mats = [p.shape for p in model.parameters() if p.dim() == 2]
    if not mats:
        return None
    rows, cols = max(mats, key=lambda s: s[0] * s[1])
    return min(rows, cols)


def time_both(step: Callable[[bool], None], budget_s: float = PROBE_SECONDS) -> tuple[float, float]:
    """Median seconds of ``step(bf16)`` for float32 and bf16: one untimed call of each first
    (oneDNN prepares its kernels), then pairs in alternating order, so a change of load on the
    machine falls on both sides, until ``PROBE_PAIRS`` or the budget (warm-up included; one
    pair at least)."""
    start = time.perf_counter()
    for bf16 in (False, True):
        step(bf16)
    times: dict[bool, list[float]] = {False: [], True: []}
    for i in range(PROBE_PAIRS):
        for bf16 in ((False, True) if i % 2 == 0 else (True, False)):
            t0 = time.perf_counter()
            step(bf16)
            times[bf16].append(time.perf_counter() - t0)
        if time.perf_counter() - start > budget_s:
            break
    return statistics.median(times[False]), statistics.median(times[True])


def probe_task(model: torch.nn.Module, task: Any, device: torch.device) -> tuple[float, float]:
    """Time forward and backward of ``task.training_step`` on its first training batch, both
    ways; the model's weights, buffers and gradients and every random state are left as found."""
    rng = get_rng_state()
    buffers = {k: b.clone() for k, b in model.named_buffers()}
    try:
        batch = to_device(next(iter(task.train_batches(0))), device)
        model.train()

        def step(bf16: bool) -> None:
            with autocast(device, torch.bfloat16 if bf16 else None):
                loss, _, _ = task.training_step(model, batch, None)
            loss.backward()
            model.zero_grad(set_to_none=True)

        return time_both(step)
    finally:
        with torch.no_grad():
            for k, b in model.named_buffers():
                b.copy_(buffers[k])
        model.zero_grad(set_to_none=True)
        set_rng_state(rng)
