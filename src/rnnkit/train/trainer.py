"""The one training loop every task shares; it knows the model only through ``TrainTask``."""

from __future__ import annotations

import contextlib
import dataclasses
import math
import signal
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import torch

import rnnkit
from rnnkit.errors import UserError
from rnnkit.train import checkpoint as ckpt
from rnnkit.train.config import TrainConfig
from rnnkit.train.metrics_log import MetricsLog
from rnnkit.train.progress import Progress
from rnnkit.train.protocol import TrainTask
from rnnkit.train.reproducibility import (
    get_rng_state,
    seed_everything,
    set_deterministic,
    set_rng_state,
)
from rnnkit.train.schedules import Schedule, improved


def resolve_device(name: str) -> torch.device:
    """``"auto"``: CUDA when available, else the CPU; anything else must exist on this machine."""
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        device = torch.device(name)
    except RuntimeError as e:
        raise UserError(f"device must be auto, cpu, cuda or cuda:N, found {name!r}.") from e
    if device.type == "cuda" and not torch.cuda.is_available():
        raise UserError(f"device {name!r} was asked for, but this machine has no usable CUDA GPU.")
    return device


def detach_state(state: Any) -> Any:
    """The recurrent state cut from the graph: tensors, and tuples/lists/dicts of them."""
    if isinstance(state, torch.Tensor):
        return state.detach()
    if isinstance(state, (tuple, list)):
        return type(state)(detach_state(s) for s in state)
    if isinstance(state, dict):
        return {k: detach_state(v) for k, v in state.items()}
    return state


def to_device(batch: Any, device: torch.device) -> Any:
    """``batch`` with its tensors (alone, or in tuples, named tuples, lists, dicts) on ``device``."""
    if isinstance(batch, torch.Tensor):
        return batch.to(device, non_blocking=True)
    if isinstance(batch, tuple) and hasattr(batch, "_fields"):
        return type(batch)(*(to_device(b, device) for b in batch))
    if isinstance(batch, (tuple, list)):
        return type(batch)(to_device(b, device) for b in batch)
    if isinstance(batch, dict):
        return {k: to_device(v, device) for k, v in batch.items()}
    return batch


def build_optimizer(params: list[torch.nn.Parameter], cfg: TrainConfig) -> torch.optim.Optimizer:
    wd = cfg.weight_decay if cfg.weight_decay is not None else (
        0.01 if cfg.optimizer == "adamw" else 0.0)
    if cfg.optimizer == "sgd":
        return torch.optim.SGD(params, lr=cfg.lr, momentum=cfg.momentum, nesterov=cfg.nesterov,
                               weight_decay=wd)
    if cfg.nesterov:
        raise UserError(f"nesterov applies to the sgd optimizer, not {cfg.optimizer}.")
    opt = torch.optim.Adam if cfg.optimizer == "adam" else torch.optim.AdamW
    # The fused kernel makes one pass over each tensor instead of one per operation: a CPU
    # sentiment step with two large embedding tables takes 0.6-0.7x the time (BENCHMARKS.md).
    fused = all(p.device.type in ("cpu", "cuda") and p.dtype.is_floating_point for p in params)
    return opt(params, lr=cfg.lr, betas=(cfg.beta1, cfg.beta2), weight_decay=wd, fused=fused)


class Trainer:
    """Train ``model`` on ``task`` with ``cfg``, writing checkpoints and logs to ``run_dir``.

    Each step: ``loss, count, state = task.training_step(model, batch, state)`` (the state of the
    previous batch of the epoch, detached), backward, clip the global gradient norm, set the
    scheduled learning rate, optimiser step. Evaluations (``task.evaluate``) come after each epoch
    and every ``eval_every`` steps; a checkpoint follows each evaluation and every
    ``checkpoint_every`` steps.

    After ``fit``: ``step``, ``epoch``, ``stop_reason`` (``epochs``, ``max_steps``, ``max_time``,
    ``early_stopping``), ``best_metric`` and ``last_metrics`` describe the run.
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
        if self.cfg.precision == "bf16" or (
            self.cfg.precision == "auto" and self.device.type == "cuda"
            and torch.cuda.is_bf16_supported()
        ):
            self.autocast_dtype: torch.dtype | None = torch.bfloat16
        else:  # on a 2-core CPU bf16 autocast gave LSTM/GRU training no consistent speed-up
            self.autocast_dtype = None
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
        self._interrupted = False
        self._updating = False
        self._handler_installed = False
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
        self.run_dir.mkdir(parents=True, exist_ok=True)
        ckpt.clean_leftovers(self.run_dir)
        was_deterministic = torch.are_deterministic_algorithms_enabled()
        if cfg.deterministic:
            set_deterministic(True)
        try:
            return self._fit(resume)
        finally:
            if cfg.deterministic and not was_deterministic:
                set_deterministic(False)

    def _fit(self, resume: bool) -> dict[str, float]:
        cfg = self.cfg
        self.model.to(self.device)
        params = [p for p in self.model.parameters() if p.requires_grad]
        if not params:
            raise UserError("the model has no trainable parameters.")
        self.params = params
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
        ckpt.write_json_atomic(self.run_dir / ckpt.CONFIG_FILE, self.config_json)
        self.log = MetricsLog(self.run_dir, keep_rows=self._log_rows if resumed else None)
        self.progress = Progress(cfg.quiet, self.total_steps, self.step)
        if resumed:
            self.progress.line(f"resuming from {resumed} (step {self.step}, epoch "
                               f"{self.epoch + 1}, batch {self.batch_index})")
        self._install_sigint()
        try:
            self._run()
        except KeyboardInterrupt:
            # A raw KeyboardInterrupt (no handler, e.g. not the main thread) between updates
            # still leaves a consistent state to save; a second Ctrl-C means quit now.
            if not self._handler_installed and not self._updating:
                self._save(is_best=False)
            raise
        finally:
            self._remove_sigint()
            self.progress.close()
            self.log.close()
        if self._interrupted:
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
        while stop is None and not self._interrupted:
            batches = self._epoch_batches()
            finished = True
            for batch in batches:
                self._train_step(batch)
                if self._interrupted:
                    finished = False
                    break
                if self.cfg.eval_every and self.step % self.cfg.eval_every == 0:
                    self._evaluate_and_save()
                elif self.cfg.checkpoint_every and self.step % self.cfg.checkpoint_every == 0:
                    self._save(is_best=False)
                stop = self.stop_reason or self._budget_reached()
                if stop is not None or self._interrupted:
                    finished = False
                    break
            if finished:
                self._end_epoch()
                stop = self.stop_reason or self._budget_reached()
        if self._interrupted:
            self._save(is_best=False)
            return
        self.stop_reason = stop
        if self.last_eval_step != self.step:
            self._evaluate_and_save()
        elif self.last_save_step != self.step:
            self._save(is_best=False)
        self.progress.line(f"stopped by {stop} at step {self.step}: " + _fmt(self.last_metrics))

    def _epoch_batches(self) -> Iterator[Any]:
        """The batches of the current epoch, past the ones a resumed checkpoint already used."""
        if self.batch_index == 0:
            self._epoch_rng = get_rng_state()
            return iter(self.task.train_batches(self.epoch))
        # Replay: the epoch's batches are built from the random state the epoch started with,
        # the first k skipped, then the random state of the checkpoint is put back.
        assert self._epoch_rng is not None
        rng_now = get_rng_state()
        set_rng_state(self._epoch_rng)
        it = iter(self.task.train_batches(self.epoch))
        for i in range(self.batch_index):
            if next(it, _END) is _END:
                raise UserError(
                    f"train_batches({self.epoch}) yielded {i} batches on resume, but the checkpoint"
                    f" had used {self.batch_index}: a task's batches must be the same for each "
                    "epoch.")
        set_rng_state(rng_now)
        return it

    def _train_step(self, batch: Any) -> None:
        cfg = self.cfg
        self.model.train()
        batch = to_device(batch, self.device)
        self.optimizer.zero_grad(set_to_none=True)
        with self._autocast():
            loss, count, new_state = self.task.training_step(self.model, batch, self.carried)
        loss.backward()
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
        self.elapsed = self._elapsed0 + time.monotonic() - self._t0
        self._updating = False

        count = int(count)
        loss_sum = loss.detach().double() * count
        self._window[0] += loss_sum
        self._window[1] += count
        self._epoch_loss[0] += loss_sum
        self._epoch_loss[1] += count
        if self.step % cfg.log_every == 0 or self.step == 1:
            self._log_window(lr, float(norm))
        else:
            self.progress.advance(self.step)

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
        self.model.eval()
        try:
            with torch.no_grad(), self._autocast():
                metrics = {k: float(v) for k, v in self.task.evaluate(self.model).items()}
        finally:
            self.model.train()
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

    def _save(self, is_best: bool) -> None:
        name = ckpt.new_name(self.run_dir, self.step)
        if is_best:
            self.best_name = name
        ckpt.save_checkpoint(self.run_dir, name, self.model.state_dict(), self.config_json,
                             self._trainer_state())
        ckpt.set_pointer(self.run_dir, "last", name)
        if is_best:
            ckpt.set_pointer(self.run_dir, "best", name)
        ckpt.prune(self.run_dir, self.cfg.keep_last)
        self.last_save_step = self.step

    def _trainer_state(self) -> dict[str, Any]:
        return {
            "format": 1, "step": self.step, "epoch": self.epoch, "batch_index": self.batch_index,
            "elapsed": self.elapsed, "optimizer_name": self.cfg.optimizer,
            "optimizer": self.optimizer.state_dict(),
            "schedule": self.schedule.state_dict(), "carried": self.carried,
            "rng": get_rng_state(), "epoch_rng": self._epoch_rng,
            "best_metric": self.best_metric, "best_name": self.best_name,
            "best_metrics": self.best_metrics, "bad_evals": self.bad_evals,
            "last_eval_step": self.last_eval_step, "last_metrics": self.last_metrics,
            "stop_reason": self.stop_reason, "log_rows": len(self.log.rows),
            "window": [float(self._window[0]), self._window[1]],
            "epoch_loss": [float(self._epoch_loss[0]), self._epoch_loss[1]],
        }

    def _restore(self) -> str | None:
        """Load the last checkpoint of ``run_dir`` into the model and trainer; its name, or None
        when the run has no checkpoint yet."""
        name = ckpt.pointer(self.run_dir, "last")
        if name is None:
            names = ckpt.list_checkpoints(self.run_dir)
            if not names:
                return None
            name = names[-1]
        path = self.run_dir / ckpt.CHECKPOINTS / name
        config = ckpt.read_config(path)
        if config.get("task") != self.config_json.get("task"):
            raise UserError(f"{self.run_dir} holds a run of task {config.get('task')!r}, "
                            f"not {self.config_json.get('task')!r}; it cannot be resumed here.")
        _, state_dict = ckpt.load_for_inference(path)
        try:
            self.model.load_state_dict(state_dict)
        except RuntimeError as e:
            raise UserError(f"the checkpoint in {path} does not fit this model: the model "
                            "settings differ from the run's.") from e
        st = ckpt.load_trainer_state(path, map_location=self.device)
        try:
            if st["optimizer_name"] != self.cfg.optimizer:
                raise ValueError(st["optimizer_name"])
            self.optimizer.load_state_dict(st["optimizer"])
        except (ValueError, KeyError) as e:
            raise UserError(f"the optimizer state in {path} does not fit a "
                            f"{self.cfg.optimizer} optimizer for this model; resume with the "
                            "run's own optimizer settings.") from e
        self.schedule.load_state_dict(st["schedule"])
        self.step, self.epoch, self.batch_index = st["step"], st["epoch"], st["batch_index"]
        self.elapsed, self.carried = st["elapsed"], st["carried"]
        self._epoch_rng = st["epoch_rng"]
        self.best_metric, self.best_name = st["best_metric"], st["best_name"]
        self.best_metrics, self.bad_evals = st["best_metrics"], st["bad_evals"]
        self.last_eval_step, self.last_metrics = st["last_eval_step"], st["last_metrics"]
        self.stop_reason = st["stop_reason"] if st["stop_reason"] == "early_stopping" else None
        self.last_save_step = self.step
        self._log_rows = st["log_rows"]
        self._window = [*st["window"], 0.0]
        self._epoch_loss = list(st["epoch_loss"])
        set_rng_state(st["rng"])
        # Checkpoints after this one belong to the abandoned continuation: the pointers go back
        # to this run's own, then those are removed.
        if self.best_name and ckpt.pointer(self.run_dir, "best") != self.best_name and (
                self.run_dir / ckpt.CHECKPOINTS / self.best_name).is_dir():
            ckpt.set_pointer(self.run_dir, "best", self.best_name)
        ckpt.set_pointer(self.run_dir, "last", name)
        for other in ckpt.list_checkpoints(self.run_dir):
            if ckpt.sort_key(other) > ckpt.sort_key(name) and other != self.best_name:
                ckpt.remove_checkpoint(self.run_dir, other)
        return name

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

    def _autocast(self) -> contextlib.AbstractContextManager:
        if self.autocast_dtype is None:
            return contextlib.nullcontext()
        return torch.autocast(device_type=self.device.type, dtype=self.autocast_dtype)

    def _install_sigint(self) -> None:
        if threading.current_thread() is not threading.main_thread():
            return

        def handler(signum: int, frame: Any) -> None:
            if self._interrupted:  # second Ctrl-C: leave now
                raise KeyboardInterrupt
            self._interrupted = True
            self.progress.line("interrupt: saving a checkpoint after this step "
                               "(Ctrl-C again to quit at once)")

        self._old_handler = signal.signal(signal.SIGINT, handler)
        self._handler_installed = True

    def _remove_sigint(self) -> None:
        if self._handler_installed:
            signal.signal(signal.SIGINT, self._old_handler)
            self._handler_installed = False


_END = object()


def _fmt(metrics: dict[str, float]) -> str:
    return "  ".join(f"{k} {v:.4f}" for k, v in metrics.items())
