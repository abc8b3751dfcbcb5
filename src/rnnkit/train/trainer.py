"""The one training loop every task shares; it knows the model only through ``TrainTask``.

The loop, evaluation and early stopping live here; the device and precision in ``device``, the
optimiser in ``optimizer``, Ctrl-C in ``interrupt``, the state that a checkpoint saves and a
resume puts back in ``resume``, and data parallelism under torchrun in ``distributed``.
"""

from __future__ import annotations

import contextlib
import dataclasses
import math
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import torch

import rnnkit
from rnnkit.errors import UserError
from rnnkit.train import checkpoint as ckpt
from rnnkit.train import distributed
from rnnkit.train.config import TrainConfig
from rnnkit.train.device import autocast, resolve_device, to_device
from rnnkit.train.interrupt import CtrlC
from rnnkit.train.metrics_log import MetricsLog, NoLog
from rnnkit.train.optimizer import build_optimizer
from rnnkit.train.precision import Precision, choose, probe_task
from rnnkit.train.progress import Progress
from rnnkit.train.protocol import TrainTask
from rnnkit.train.reproducibility import seed_everything, set_deterministic
from rnnkit.train.resume import SaveAndResume
from rnnkit.train.schedules import Schedule, improved


def detach_state(state: Any) -> Any:
    """The recurrent state cut from the graph: tensors, and tuples/lists/dicts of them."""
    if isinstance(state, torch.Tensor):
        return state.detach()
    if isinstance(state, (tuple, list)):
        return type(state)(detach_state(s) for s in state)
    if isinstance(state, dict):
        return {k: detach_state(v) for k, v in state.items()}
    return state


class Trainer(SaveAndResume):
    """Train ``model`` on ``task`` with ``cfg``, writing checkpoints and logs to ``run_dir``.

    Each step: ``loss, count, state = task.training_step(model, batch, state)`` (the state of the
    previous batch of the epoch, detached), backward, clip the global gradient norm, set the
    scheduled learning rate, optimiser step. Evaluations (``task.evaluate``) come after each epoch
    and every ``eval_every`` steps; a checkpoint follows each evaluation and every
    ``checkpoint_every`` steps.

    After ``fit``: ``step``, ``epoch``, ``stop_reason`` (``epochs``, ``max_steps``, ``max_time``,
    ``early_stopping``), ``best_metric`` and ``last_metrics`` describe the run.

    Under torchrun (``WORLD_SIZE`` > 1) each rank trains a DDP replica on its share of every
    global batch of ``batch_size`` (``distributed``), with the loss weighted by its share of the
    batch's count so the update is the one process's; the step's count and loss are summed over
    the ranks for the log. Rank 0 evaluates (the others get its metrics), prints and writes the
    run directory; ``fit`` returns there and ends the other ranks (``distributed.WorkerDone``).
    """

    def __init__(self, model: torch.nn.Module, task: TrainTask, cfg: TrainConfig | None = None,
                 run_dir: str | Path = "run") -> None:
        missing = [name for name in ("train_batches", "training_step", "evaluate",
                                     "checkpoint_config") if not callable(getattr(task, name, None))]
        if missing:  # a programming mistake in a task, not a user's
            raise TypeError(f"{type(task).__name__} is not a training task (rnnkit.train.protocol): "
                            f"it lacks {', '.join(missing)}")
        self.model = model
        self.task = task
        self.cfg = cfg or TrainConfig()
        self.run_dir = Path(run_dir)
        self.device = resolve_device(self.cfg.device)
        self.group = distributed.Group()
        self.precision: Precision | None = None  # decided in fit
        self._saved_precision: dict[str, Any] | None = None  # a resumed run's choice
        self.step = 0
        self.epoch = 0
        self.batch_index = 0  # batches of the current epoch already trained on
        self.elapsed = 0.0  # training seconds, over all sessions of this run
        self.carried: Any = None
        self.best_metric: float | None = None
        self.best_name: str | None = None
        self.best_metrics: dict[str, float] = {}
        self.bad_evals = 0
        self.last_eval_step: int | None = None
        self.last_save_step: int | None = None
        self.last_metrics: dict[str, float] = {}
        self.stop_reason: str | None = None
        self._epoch_rng: dict[str, Any] | None = None
        self._ctrl_c = CtrlC(lambda: self.progress.line(
            "interrupt: saving a checkpoint after this step (Ctrl-C again to quit at once)"))
        self._updating = False
        self._window: list[Any] = [0.0, 0, 0.0]  # loss sum and count since the last log, since
        self._epoch_loss: list[Any] = [0.0, 0]  # loss sum and count this epoch
        self._log_rows = 0  # rows in metrics.csv

    # -- public ---------------------------------------------------------------------------------

    def fit(self, resume: bool = False) -> dict[str, float]:
        """Train until the first budget is reached, evaluate and save; returns the final
        evaluation's metrics. With ``resume``, continue the run in ``run_dir`` exactly where its
        last checkpoint left it (a fresh start when it has none).

        Ctrl-C saves a checkpoint, then raises ``KeyboardInterrupt`` (a second Ctrl-C quits
        at once).
        """
        cfg = self.cfg
        self.group, self.device = distributed.join(self.device)
        if self.group.main:
            self.run_dir.mkdir(parents=True, exist_ok=True)
            ckpt.clean_leftovers(self.run_dir)
        was_deterministic = torch.are_deterministic_algorithms_enabled()
        if cfg.deterministic:
            set_deterministic(True)
        try:
            metrics = self._fit(resume)
        finally:
            if cfg.deterministic and not was_deterministic:
                set_deterministic(False)
        if not self.group.main:
            raise distributed.WorkerDone
        return metrics

    def _fit(self, resume: bool) -> dict[str, float]:
        cfg = self.cfg
        self.model.to(self.device)
        params = [p for p in self.model.parameters() if p.requires_grad]
        if not params:
            raise UserError("the model has no trainable parameters.")
        self.params = params
        if self.group.active and cfg.batch_size < self.group.world:
            raise UserError(f"batch_size {cfg.batch_size} is smaller than the number of processes "
                            f"({self.group.world}); each process takes its share of every batch.")
        self.optimizer = build_optimizer(params, cfg)
        self.total_steps = self._total_steps()
        self.max_seconds = cfg.max_seconds()
        self.schedule = Schedule(cfg, self.total_steps, self.max_seconds)
        self.config_json = {**self.task.checkpoint_config(), "train": dataclasses.asdict(cfg),
                            "rnnkit_version": rnnkit.__version__}

        resumed = self._restore() if resume else None
        if resumed is None:
            if ckpt.list_checkpoints(self.run_dir) and not resume:
                raise UserError(f"{self.run_dir} already holds a training run; resume it with "
                                "--resume or choose another output directory.")
            seed_everything(cfg.seed)
        self._choose_precision(resumed is not None)
        # the replica starts from rank 0's weights, once every rank has built or restored them
        self.net = distributed.wrap(self.model, self.device) if self.group.active else self.model
        if self.group.main:
            ckpt.write_json_atomic(self.run_dir / ckpt.CONFIG_FILE, self.config_json)
            self.log = MetricsLog(self.run_dir, keep_rows=self._log_rows if resumed else None)
        else:
            self.log = NoLog()
        self.progress = Progress(cfg.quiet or not self.group.main, self.total_steps, self.step)
        self.progress.line(self.precision.line())
        if resumed:
            self.progress.line(f"resuming from {resumed} (step {self.step}, epoch "
                               f"{self.epoch + 1}, batch {self.batch_index})")
        if not self.group.active:  # under torchrun a signal ends the job; --resume continues it
            self._ctrl_c.install()
        try:
            self._run()
        except KeyboardInterrupt:
            # A raw KeyboardInterrupt (no handler, e.g. not the main thread) between updates
            # still leaves a consistent state to save; a second Ctrl-C means quit now.
            if not self._ctrl_c.installed and not self._updating and not self.group.active:
                self._save(is_best=False)
            raise
        finally:
            self._ctrl_c.remove()
            self.progress.close()
            self.log.close()
        if self._ctrl_c.requested:
            self.progress.line(f"interrupted: checkpoint saved in {self.run_dir} "
                               "(continue with --resume)")
            raise KeyboardInterrupt
        return dict(self.last_metrics)

    # -- the loop -------------------------------------------------------------------------------

    def _run(self) -> None:
        self._t0 = time.monotonic()
        self._elapsed0 = self.elapsed
        self._window[2] = time.monotonic()
        stop = self.stop_reason or self._budget_reached()
        while stop is None and not self._ctrl_c.requested:
            batches = self._epoch_batches()
            finished = True
            for batch in batches:
                self._train_step(batch)
                if self._ctrl_c.requested:
                    finished = False
                    break
                if self.cfg.eval_every and self.step % self.cfg.eval_every == 0:
                    self._evaluate_and_save()
                elif self.cfg.checkpoint_every and self.step % self.cfg.checkpoint_every == 0:
                    self._save(is_best=False)
                stop = self.stop_reason or self._budget_reached()
                if stop is not None or self._ctrl_c.requested:
                    finished = False
                    break
            if finished:
                self._end_epoch()
                stop = self.stop_reason or self._budget_reached()
        if self._ctrl_c.requested:
            self._save(is_best=False)
            return
        self.stop_reason = stop
        if self.last_eval_step != self.step:
            self._evaluate_and_save()
        elif self.last_save_step != self.step:
            self._save(is_best=False)
        self.progress.line(f"stopped by {stop} at step {self.step}: " + _fmt(self.last_metrics))

    def _train_step(self, batch: Any) -> None:
        cfg = self.cfg
        self.model.train()
        owned = None
        if self.group.active:
            batch, owned = distributed.my_rows(batch, self.group)
        batch = to_device(batch, self.device)
        self.optimizer.zero_grad(set_to_none=True)
        with self._autocast(), self._rank_rng():
            loss, count, new_state = self.task.training_step(self.net, batch, self.carried)
        if owned is None:
            loss.backward()
            count = int(count)
            loss_sum = loss.detach().double() * count
        else:
            count, loss_sum = self._backward_share(loss, int(count) if owned else 0)
            new_state = new_state if owned else None
        max_norm = cfg.clip_norm if cfg.clip_norm else math.inf
        norm = torch.nn.utils.clip_grad_norm_(self.params, max_norm)
        lr = self.schedule.lr(self.step, self.elapsed)
        for group in self.optimizer.param_groups:
            group["lr"] = lr
        self._updating = True
        if torch.isfinite(norm):
            self.optimizer.step()
        else:  # one bad batch must not poison the weights: skip the update, keep the log
            self.progress.line(f"step {self.step + 1}: gradient norm is {norm.item()}, "
                               "update skipped")
        self.carried = detach_state(new_state)
        self.step += 1
        self.batch_index += 1
        if owned is None or self.max_seconds is None:
            self.elapsed = self._elapsed0 + time.monotonic() - self._t0
        self._updating = False

        self._window[0] += loss_sum
        self._window[1] += count
        self._epoch_loss[0] += loss_sum
        self._epoch_loss[1] += count
        if self.step % cfg.log_every == 0 or self.step == 1:
            self._log_window(lr, float(norm))
        else:
            self.progress.advance(self.step)

    def _backward_share(self, loss: torch.Tensor, count: int) -> tuple[int, torch.Tensor]:
        """Backward of this rank's share: one small all-reduce gives the batch's count and loss
        sum (and, under a time budget, the ranks' mean training time, so all stop at one step);
        DDP averages the gradients over the ranks, so each rank's mean loss is weighted by its
        share of the count times the world size."""
        world = self.group.world
        elapsed = self._elapsed0 + time.monotonic() - self._t0
        stats = torch.stack([torch.tensor(float(count), dtype=torch.float64, device=self.device),
                             loss.detach().double() * count,
                             torch.tensor(elapsed / world, dtype=torch.float64,
                                          device=self.device)])
        total, loss_sum, mean_elapsed = distributed.all_sum(stats)
        (loss * (count * world / total.clamp(min=1)).to(loss.dtype)).backward()
        if self.max_seconds is not None:
            self.elapsed = float(mean_elapsed)
        return int(total), loss_sum

    @contextlib.contextmanager
    def _rank_rng(self) -> Iterator[None]:
        """Under torchrun, the step's random draws (dropout) from a stream of its own per rank
        and step, so ranks draw different masks and a restarted job draws the same ones; the
        shared random state, which batches may use, stays the same on every rank."""
        if not self.group.active:
            yield
            return
        with torch.random.fork_rng(devices=[self.device] if self.device.type == "cuda" else []):
            torch.manual_seed(((self.cfg.seed * 1_000_003 + self.step) * 4099 + self.group.rank)
                              % 2**63)
            yield

    def _log_window(self, lr: float, norm: float) -> None:
        loss_sum, count, since = self._window
        now = time.monotonic()
        loss = float(loss_sum) / max(1, count)
        rate = count / max(1e-9, now - since)
        self.log.log({"step": self.step, "epoch": self.epoch + 1, "time": round(self.elapsed, 3),
                      "train_loss": loss, "grad_norm": norm, "lr": lr, "tokens_per_s": rate})
        eta = None if self.max_seconds is None else self.max_seconds - self.elapsed
        self.progress.update(self.step, loss, lr, rate, eta)
        self._window = [0.0, 0, now]

    def _end_epoch(self) -> None:
        if self.batch_index == 0:
            raise UserError(f"train_batches({self.epoch}) yielded no batches: the training data "
                            "is too small for one batch.")
        done = self.epoch + 1
        self.epoch += 1
        self.batch_index = 0
        self.carried = None
        if self.last_eval_step != self.step:
            self._evaluate_and_save()
        else:  # evaluated at this very step already (eval_every): save the new epoch counters
            self._save(is_best=False)
        total = self._epoch_loss[1]
        train = f"train_loss {float(self._epoch_loss[0]) / total:.4f}  " if total else ""
        of = f"/{self.cfg.epochs}" if self.cfg.epochs is not None else ""
        self.progress.line(f"epoch {done}{of}  step {self.step}  {train}{_fmt(self.last_metrics)}"
                           f"  ({self.elapsed:.0f}s)")
        self._epoch_loss = [0.0, 0]

    def _budget_reached(self) -> str | None:
        cfg = self.cfg
        if cfg.epochs is not None and self.epoch >= cfg.epochs:
            return "epochs"
        if cfg.max_steps is not None and self.step >= cfg.max_steps:
            return "max_steps"
        if self.max_seconds is not None and self.elapsed >= self.max_seconds:
            return "max_time"
        return None

    # -- evaluation, early stopping, checkpoints ------------------------------------------------

    def _evaluate_and_save(self) -> None:
        cfg = self.cfg
        metrics = None
        if self.group.main:  # one evaluation, exact: rank 0's replica is every rank's
            self.model.eval()
            try:
                with torch.no_grad(), self._autocast():
                    metrics = {k: float(v) for k, v in self.task.evaluate(self.model).items()}
            finally:
                self.model.train()
        if self.group.active:
            metrics = distributed.broadcast(metrics)
        self.last_metrics = metrics
        self.last_eval_step = self.step
        self.log.log({"step": self.step, "epoch": self.epoch if self.batch_index == 0
                      else self.epoch + 1, "time": round(self.elapsed, 3), **metrics})
        value = metrics.get(cfg.monitor)
        if value is None and (cfg.patience is not None or cfg.schedule == "plateau"):
            raise UserError(f"monitor {cfg.monitor!r} is not among the validation metrics "
                            f"({', '.join(metrics) or 'none'}); set monitor to one of them.")
        self.schedule.on_eval(value)
        is_best = value is None or improved(value, self.best_metric, cfg.mode, cfg.min_delta)
        if is_best:
            self.best_metric, self.best_metrics, self.bad_evals = value, dict(metrics), 0
        else:
            self.bad_evals += 1
            if cfg.patience is not None and self.bad_evals >= cfg.patience:
                self.stop_reason = "early_stopping"
        self._save(is_best=is_best)

    # -- helpers --------------------------------------------------------------------------------

    def _total_steps(self) -> int | None:
        totals = []
        if self.cfg.max_steps is not None:
            totals.append(self.cfg.max_steps)
        if self.cfg.epochs is not None:
            batches = self.task.train_batches(0)
            if hasattr(batches, "__len__"):
                totals.append(self.cfg.epochs * len(batches))
        return min(totals) if totals else None

    def _choose_precision(self, resumed: bool) -> None:
        """Rank 0 decides (a probe under ``auto`` on a fresh run) and every rank follows; the
        choice goes into config.json."""
        choice = None
        if self.group.main:
            choice = choose(self.cfg.precision, self.device, saved=self._saved_precision,
                            resumed=resumed, deterministic=self.cfg.deterministic,
                            model=self.model,
                            probe=lambda: probe_task(self.model, self.task, self.device))
        if self.group.active:
            choice = distributed.broadcast(choice)
        self.precision = choice
        self.config_json["precision"] = choice.to_json()

    def _autocast(self):
        return autocast(self.device, self.precision.dtype if self.precision else None)


def _fmt(metrics: dict[str, float]) -> str:
    return "  ".join(f"{k} {v:.4f}" for k, v in metrics.items())
