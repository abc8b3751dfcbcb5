"""The trainer's side of checkpoints: everything a run needs to continue exactly where it
stopped (step, epoch and batch position, optimiser, schedule, random state, carried recurrent
state, best metric, log position), saved with each checkpoint and put back on resume; then the
interrupted epoch's batches are rebuilt from its starting random state and the used ones skipped.

Under torchrun rank 0 writes the checkpoint, with the carried state of every rank's rows put
back together, and every rank reads it back, taking its own rows: a run resumes on any number
of processes (the run directory must be on a filesystem every node sees).
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from rnnkit.errors import UserError
from rnnkit.train import checkpoint as ckpt
from rnnkit.train import distributed
from rnnkit.train.reproducibility import get_rng_state, set_rng_state


class SaveAndResume:
    """Mixed into ``Trainer``, whose attributes these methods read and set."""

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

    def _save(self, is_best: bool) -> None:
        carried = distributed.gather_state(self.carried) if self.group.active else self.carried
        self.last_save_step = self.step
        if not self.group.main:
            return
        name = ckpt.new_name(self.run_dir, self.step)
        if is_best:
            self.best_name = name
        ckpt.save_checkpoint(self.run_dir, name, self.model.state_dict(), self.config_json,
                             self._trainer_state(carried))
        ckpt.set_pointer(self.run_dir, "last", name)
        if is_best:
            ckpt.set_pointer(self.run_dir, "best", name)
        ckpt.prune(self.run_dir, self.cfg.keep_last)

    def _trainer_state(self, carried: Any) -> dict[str, Any]:
        return {
            "format": 1, "step": self.step, "epoch": self.epoch, "batch_index": self.batch_index,
            "elapsed": self.elapsed, "optimizer_name": self.cfg.optimizer,
            "optimizer": self.optimizer.state_dict(),
            "schedule": self.schedule.state_dict(), "carried": carried,
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
        name = self._last_checkpoint() if self.group.main else None
        if self.group.active:  # rank 0 moves pointers below: every rank reads the one it chose
            name = distributed.broadcast(name)
        if name is None:
            return None
        path = self.run_dir / ckpt.CHECKPOINTS / name
        config = ckpt.read_config(path)
        self._saved_precision = config.get("precision")
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
        if self.group.active:
            self.carried = distributed.split_state(self.carried, self.group)
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
        if not self.group.main:
            return name
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

    def _last_checkpoint(self) -> str | None:
        name = ckpt.pointer(self.run_dir, "last")
        if name is None:
            names = ckpt.list_checkpoints(self.run_dir)
            name = names[-1] if names else None
        return name


_END = object()
