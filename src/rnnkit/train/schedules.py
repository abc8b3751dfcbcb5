"""Learning-rate schedules as plain functions of the step, plus the plateau factor.

The trainer sets the learning rate of every parameter group before each optimiser step, so the
whole schedule state is ``{"factor", "best", "bad_evals"}`` and resumes exactly.
"""

from __future__ import annotations

import math

from rnnkit.errors import UserError
from rnnkit.train.config import TrainConfig


class Schedule:
    """``lr(step)``: warm-up, then constant / cosine / step decay; ``plateau`` reacts to evals."""

    def __init__(self, cfg: TrainConfig, total_steps: int | None,
                 max_seconds: float | None = None) -> None:
        if cfg.schedule == "cosine" and total_steps is None and max_seconds is None:
            raise UserError("the cosine schedule needs to know when training ends: give "
                            "max_steps, max_time, or epochs with a task whose train_batches has a "
                            "length.")
        self.cfg = cfg
        self.total_steps = total_steps
        self.max_seconds = max_seconds
        self.factor = 1.0  # plateau reductions so far
        self.best: float | None = None
        self.bad_evals = 0

    def lr(self, step: int, elapsed: float = 0.0) -> float:
        """Learning rate for the optimiser update number ``step`` (0-based), ``elapsed`` training
        seconds into the run."""
        cfg = self.cfg
        warmup = cfg.warmup_steps
        if step < warmup:
            return cfg.lr * (step + 1) / warmup * self.factor
        if cfg.schedule == "cosine":
            # With a time budget the cosine follows whichever end is nearer, the last step or
            # the last second, so a max_time run still anneals (its lr then depends on the clock).
            done = []
            if self.total_steps is not None:
                done.append((step - warmup) / max(1, self.total_steps - warmup))
            if self.max_seconds is not None:
                done.append(elapsed / self.max_seconds)
            progress = min(1.0, max(done))
            return cfg.min_lr + (cfg.lr - cfg.min_lr) * 0.5 * (1.0 + math.cos(math.pi * progress))
        if cfg.schedule == "step":
            return cfg.lr * cfg.gamma ** ((step - warmup) // cfg.step_size)
        return cfg.lr * self.factor  # constant, plateau

    def on_eval(self, value: float | None) -> None:
        """Reduce-on-plateau: after ``plateau_patience`` evaluations without improvement of the
        monitored metric, multiply the learning rate by ``plateau_factor``."""
        if self.cfg.schedule != "plateau" or value is None or math.isnan(value):
            return
        if improved(value, self.best, self.cfg.mode, self.cfg.min_delta):
            self.best, self.bad_evals = value, 0
            return
        self.bad_evals += 1
        if self.bad_evals >= self.cfg.plateau_patience:
            self.factor *= self.cfg.plateau_factor
            self.bad_evals = 0

    def state_dict(self) -> dict:
        return {"factor": self.factor, "best": self.best, "bad_evals": self.bad_evals}

    def load_state_dict(self, state: dict) -> None:
        self.factor, self.best, self.bad_evals = state["factor"], state["best"], state["bad_evals"]


def improved(value: float, best: float | None, mode: str, min_delta: float = 0.0) -> bool:
    """Whether ``value`` beats ``best`` by more than ``min_delta`` in direction ``mode``."""
    if best is None:
        return not math.isnan(value)
    return value < best - min_delta if mode == "min" else value > best + min_delta
