"""Vanishing gradients, measured: how the gradient of the last step's loss reaches earlier inputs.

For a model read out at the last step T, the norm ||dL_T/dx_t|| against the lag T - t shows how
far back the training signal reaches. A plain tanh RNN multiplies it by roughly the spectral
radius of its recurrent Jacobian at every step, so it falls exponentially; gates (an LSTM forget
gate near 1, the GRU/minGRU update gate) let it pass almost unchanged. The diagnostic measures it
on adding-problem sequences (whose target needs the early inputs) at initialisation and after
training on that problem.
"""

import copy
import csv
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
from torch import Tensor

from rnnkit.errors import UserError
from rnnkit.models.sequence_regressor import check_init
from rnnkit.nn.registry import LAYERS, check_arch
from rnnkit.tasks.memory_tasks import (
    AddingTask,
    MemoryTaskConfig,
    adding_batch,
    seeded_generator,
    train_task,
)
from rnnkit.threads import one_thread

# The relative norm below which the signal from that lag counts as gone.
VANISHED = 1e-6
PROBE_STREAM = 1_000_003  # random stream of the probe sequences, apart from training and test


def gradient_norms_by_lag(model: torch.nn.Module, x: Tensor, y: Tensor) -> Tensor:
    """Mean over the batch of ||dL_b/dx_{b,t}||, indexed by lag = T-1-t (entry 0 is the last step).

    ``L_b`` is sample b's squared error at the last step. Computed in float64 on a copy of the
    model, so that norms far below float32's smallest number (about 1e-38, reached by a tanh RNN
    within 100 steps) are still measured rather than flushed to zero.
    """
    probe = copy.deepcopy(model).double().eval()
    device = next(probe.parameters()).device
    x = x.detach().to(device, torch.float64).requires_grad_(True)
    pred = probe(x).reshape(len(x))
    # A sum, not a mean: samples do not interact, so each one's input gets its own loss's gradient.
    loss = ((pred - y.to(device, torch.float64)) ** 2).sum()
    (grad,) = torch.autograd.grad(loss, x)
    return grad.norm(dim=-1).mean(dim=0).flip(0).cpu()


@dataclass
class GradientDiagnosticConfig:
    archs: list[str] = field(default_factory=lambda: ["rnn", "lstm", "gru", "mingru"])
    length: int = 200
    hidden: int = 64
    init: str = "default"
    forget_bias: float | None = None
    clip: float | None = 1.0
    steps: int = 300  # training steps between the two measurements; 0 measures at init only
    batch_size: int = 64
    lr: float = 3e-3
    probe_size: int = 32
    seed: int = 0

    def __post_init__(self) -> None:
        if not self.archs:
            raise UserError("expected at least one arch, found none")
        for arch in self.archs:
            check_arch(arch, tuple(LAYERS))
        check_init(self.init)
        if self.length < 2:
            raise UserError(f"the length must be at least 2 steps, found {self.length}")
        if self.steps < 0:
            raise UserError(f"the number of training steps must be >= 0, found {self.steps}")
        if self.hidden < 1 or self.batch_size < 1 or self.probe_size < 1:
            raise UserError("hidden, batch size and probe size must be at least 1, found "
                            f"{self.hidden}, {self.batch_size}, {self.probe_size}")


@dataclass
class GradientDecay:
    """The measured norms: ``norms[(arch, phase)]`` indexed by lag; phase is init or trained."""

    length: int
    steps: int
    norms: dict[tuple[str, str], np.ndarray] = field(default_factory=dict)
    val_mse: dict[str, float] = field(default_factory=dict)  # test MSE after training, per arch

    def relative(self, arch: str, phase: str) -> np.ndarray:
        """The norms divided by the norm at lag 0 (the last input)."""
        n = self.norms[(arch, phase)]
        return n / n[0] if n[0] > 0 else np.full_like(n, np.nan)


def measure_gradient_decay(cfg: GradientDiagnosticConfig, run_root: Path,
                           quiet: bool = True, log=print) -> GradientDecay:
    """Measure every arch at initialisation, train it ``cfg.steps`` steps on the adding problem
    (run directories under ``run_root/<arch>``), and measure it again."""
    probe_x, probe_y = adding_batch(cfg.probe_size, cfg.length,
                                    seeded_generator(cfg.seed, PROBE_STREAM))
    data_cfg = MemoryTaskConfig(length=cfg.length, batch_size=cfg.batch_size,
                                steps_per_epoch=max(1, min(cfg.steps, 100)), seed=cfg.seed)
    # Build every model first, so that an arch missing from this build fails before any training.
    tasks, models = {}, {}
    for arch in cfg.archs:
        torch.manual_seed(cfg.seed)
        tasks[arch] = AddingTask(data_cfg, AddingTask.model_config(
            arch, cfg.hidden, cfg.length, init=cfg.init, forget_bias=cfg.forget_bias))
        models[arch] = tasks[arch].build_model()
    result = GradientDecay(length=cfg.length, steps=cfg.steps)
    for arch in cfg.archs:
        model = models[arch]
        with one_thread():
            result.norms[(arch, "init")] = gradient_norms_by_lag(model, probe_x, probe_y).numpy()
        if cfg.steps == 0:
            continue
        if not quiet:
            log(f"training {arch} for {cfg.steps} steps on the adding problem (T={cfg.length})")
        metrics = train_task(model, tasks[arch], steps=cfg.steps, lr=cfg.lr, clip=cfg.clip,
                             seed=cfg.seed, run_dir=run_root / arch, quiet=quiet)
        result.val_mse[arch] = metrics["val_mse"]
        with one_thread():
            result.norms[(arch, "trained")] = gradient_norms_by_lag(model, probe_x,
                                                                    probe_y).numpy()
    return result


def write_csv(result: GradientDecay, path: Path) -> None:
    with open(path, "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["arch", "phase", "lag", "grad_norm"])
        for (arch, phase), norms in result.norms.items():
            for lag, value in enumerate(norms):
                w.writerow([arch, phase, lag, f"{value:.6e}"])


def table_lags(length: int) -> list[int]:
    return sorted({lag for lag in (1, 10, 50, 100, length - 1) if lag < length})


def vanishing_lag(relative: np.ndarray) -> int | None:
    """The first lag where the relative norm falls below VANISHED, None if it never does."""
    below = np.flatnonzero(~(relative >= VANISHED))  # NaN (no signal at all) counts as vanished
    return int(below[0]) if len(below) else None


def format_table(result: GradientDecay) -> str:
    lags = table_lags(result.length)
    header = ["arch", "phase"] + [f"lag {lag}" for lag in lags] + [f"< {VANISHED:.0e} at"]
    if result.val_mse:
        header.append("val MSE")
    lines = [header]
    for arch, phase in result.norms:
        rel = result.relative(arch, phase)
        gone = vanishing_lag(rel)
        row = [arch, phase] + [f"{rel[lag]:.1e}" for lag in lags]
        row.append(f"lag {gone}" if gone is not None else "never")
        if result.val_mse:
            row.append(f"{result.val_mse[arch]:.4f}" if phase == "trained" else "")
        lines.append(row)
    widths = [max(len(r[i]) for r in lines) for i in range(len(header))]
    text = ["  ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)).rstrip() for r in lines]
    return "\n".join(text)


def plot_gradient_decay(result: GradientDecay, path: Path, title_note: str = "") -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.lines import Line2D

    archs = list(dict.fromkeys(arch for arch, _ in result.norms))
    colors = {arch: f"C{i}" for i, arch in enumerate(archs)}
    fig, ax = plt.subplots(figsize=(8, 5), dpi=120)
    lags = np.arange(result.length)
    for (arch, phase), _ in result.norms.items():
        rel = result.relative(arch, phase)
        rel = np.where(rel > 0, rel, np.nan)  # log axis: an exact zero cannot be drawn
        ax.plot(lags, rel, color=colors[arch], linestyle="-" if phase == "init" else "--",
                linewidth=1.8)
    ax.axhline(VANISHED, color="0.5", linestyle=":", linewidth=1)
    ax.set_yscale("log")
    ax.set_xlim(0, result.length - 1)
    ax.set_xlabel(r"lag $T - t$ (steps back from the last input)")
    ax.set_ylabel(r"$\Vert\partial L_T / \partial x_t\Vert$ relative to lag 0")
    title = f"Gradient reaching earlier inputs: adding problem, T = {result.length}"
    ax.set_title(title + (f"\n{title_note}" if title_note else ""), fontsize=11)
    ax.grid(True, which="major", alpha=0.3)
    handles = [Line2D([], [], color=colors[a], linewidth=2, label=a) for a in archs]
    handles.append(Line2D([], [], color="k", linestyle="-", label="at initialisation"))
    if any(phase == "trained" for _, phase in result.norms):
        handles.append(Line2D([], [], color="k", linestyle="--",
                              label=f"after {result.steps} training steps"))
    handles.append(Line2D([], [], color="0.5", linestyle=":", label=f"{VANISHED:.0e}"))
    ax.legend(handles=handles, loc="lower left", fontsize=9, framealpha=0.9)
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)
