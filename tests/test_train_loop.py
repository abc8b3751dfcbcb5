"""The training loop: budgets, clipping, schedules, early stopping, TBPTT state, metrics.csv."""

from __future__ import annotations

import csv
import dataclasses
import math
import time

import pytest
import torch
from test_train_toy import ToyNet, ToyTask, train_toy

from rnnkit.errors import UserError
from rnnkit.train import TrainConfig, Trainer
from rnnkit.train import checkpoint as ckpt
from rnnkit.train.schedules import Schedule
from rnnkit.train.trainer import detach_state

pytestmark = pytest.mark.usefixtures("one_thread")


def _rows(run_dir):
    with open(run_dir / "metrics.csv", newline="") as f:
        return list(csv.DictReader(f))


class _ScriptedEval(ToyTask):
    """Validation metrics read from a list, one entry per evaluation."""

    def __init__(self, values, key="val_loss", **kw):
        super().__init__(**kw)
        self.values, self.key, self.evals = list(values), key, 0

    def evaluate(self, model):
        self.evals += 1
        return {self.key: self.values[self.evals - 1]}


def _fit(tmp_path, task=None, **cfg):
    torch.manual_seed(0)
    trainer = Trainer(ToyNet(), task or ToyTask(),
                      TrainConfig(**{"epochs": 1, "lr": 1e-2, "quiet": True, **cfg}),
                      tmp_path / "run")
    trainer.fit()
    return trainer


# -- budgets ------------------------------------------------------------------------------------

def test_max_steps_stops_mid_epoch_then_evaluates_and_saves(tmp_path):
    t = _fit(tmp_path, epochs=5, max_steps=4)
    assert (t.step, t.epoch, t.stop_reason) == (4, 0, "max_steps")
    assert ckpt.pointer(tmp_path / "run", "last") == "step-00000004"
    assert [r["step"] for r in _rows(tmp_path / "run") if r["val_loss"]] == ["4"]


def test_epochs_budget_runs_whole_epochs_with_an_evaluation_after_each(tmp_path):
    t = _fit(tmp_path, epochs=2)
    assert (t.step, t.epoch, t.stop_reason) == (12, 2, "epochs")
    assert [r["step"] for r in _rows(tmp_path / "run") if r["val_loss"]] == ["6", "12"]


class _SlowTask(ToyTask):
    def training_step(self, model, batch, state):
        time.sleep(0.02)
        return super().training_step(model, batch, state)


def test_max_time_stops_at_the_time_budget(tmp_path):
    t = _fit(tmp_path, _SlowTask(), epochs=None, max_time="0.2s")
    assert t.stop_reason == "max_time"
    assert 0.2 <= t.elapsed < 5 and 1 <= t.step < 200
    assert ckpt.pointer(tmp_path / "run", "last") == f"step-{t.step:08d}"


def test_a_finished_run_resumed_does_nothing_more(tmp_path):
    t = _fit(tmp_path, max_steps=3)
    again = Trainer(ToyNet(), ToyTask(), t.cfg, tmp_path / "run")
    assert again.fit(resume=True) == t.last_metrics
    assert again.step == 3 and ckpt.list_checkpoints(tmp_path / "run") == ["step-00000003"]


def test_a_fresh_run_refuses_to_overwrite_an_existing_one(tmp_path):
    _fit(tmp_path, max_steps=1)
    with pytest.raises(UserError, match="already holds a training run"):
        _fit(tmp_path, max_steps=1)


# -- optimisation -------------------------------------------------------------------------------

class _OneBatch(ToyTask):
    def train_batches(self, epoch):
        return super().train_batches(epoch)[:1]


@pytest.mark.parametrize("clip", [0.01, None])
def test_clipping_bounds_the_global_update_norm_and_logs_the_raw_norm(tmp_path, clip):
    torch.manual_seed(0)
    model = ToyNet(dropout=0.0)
    before = torch.cat([p.detach().flatten().clone() for p in model.parameters()])
    cfg = TrainConfig(epochs=1, lr=1.0, optimizer="sgd", momentum=0.0, clip_norm=clip,
                      log_every=1, quiet=True)
    Trainer(model, _OneBatch(), cfg, tmp_path / "run").fit()
    after = torch.cat([p.detach().flatten() for p in model.parameters()])
    raw = float(_rows(tmp_path / "run")[0]["grad_norm"])
    assert raw > 0.05
    # plain SGD with lr 1 moves the weights by exactly the (clipped) gradient
    assert (after - before).norm().item() == pytest.approx(clip or raw, rel=1e-3)


@pytest.mark.parametrize("name,cls", [("sgd", torch.optim.SGD), ("adam", torch.optim.Adam),
                                      ("adamw", torch.optim.AdamW)])
def test_each_optimizer_trains(tmp_path, name, cls):
    t = _fit(tmp_path, epochs=2, optimizer=name, nesterov=name == "sgd",
             lr=0.1 if name == "sgd" else 1e-2)
    assert type(t.optimizer) is cls
    losses = [float(r["val_loss"]) for r in _rows(tmp_path / "run") if r["val_loss"]]
    assert losses[-1] < losses[0]
    assert t.optimizer.param_groups[0]["nesterov"] if name == "sgd" else True


def test_nesterov_outside_sgd_is_a_user_error(tmp_path):
    with pytest.raises(UserError, match="nesterov"):
        _fit(tmp_path, optimizer="adam", nesterov=True)


def test_bf16_autocast_runs_the_steps_under_autocast(tmp_path):
    seen = []

    class Task(ToyTask):
        def training_step(self, model, batch, state):
            seen.append(torch.is_autocast_enabled("cpu"))
            return super().training_step(model, batch, state)

    t = _fit(tmp_path, Task(), precision="bf16", max_steps=2)
    assert seen == [True, True] and math.isfinite(t.last_metrics["val_loss"])
    seen.clear()
    _fit(tmp_path / "b", Task(), max_steps=1)  # auto: fp32 on the CPU
    assert seen == [False]


# -- schedules ----------------------------------------------------------------------------------

def test_schedule_shapes():
    cos = Schedule(TrainConfig(lr=1.0, schedule="cosine", warmup_steps=4, min_lr=0.1), 14)
    assert [cos.lr(s) for s in range(4)] == [0.25, 0.5, 0.75, 1.0]
    assert cos.lr(9) == pytest.approx(0.55) and cos.lr(14) == pytest.approx(0.1)
    assert cos.lr(100) == pytest.approx(0.1)
    step = Schedule(TrainConfig(lr=1.0, schedule="step", step_size=3, gamma=0.1), None)
    assert [step.lr(s) for s in (0, 2, 3, 6)] == pytest.approx([1.0, 1.0, 0.1, 0.01])
    const = Schedule(TrainConfig(lr=0.5), None)
    assert const.lr(0) == const.lr(10**6) == 0.5
    with pytest.raises(UserError, match="cosine"):
        Schedule(TrainConfig(schedule="cosine"), None)


def test_cosine_with_a_time_budget_follows_the_nearer_end():
    cfg = TrainConfig(lr=1.0, schedule="cosine", min_lr=0.0)
    timed = Schedule(cfg, None, max_seconds=100.0)
    assert timed.lr(5, elapsed=0.0) == 1.0
    assert timed.lr(5, elapsed=50.0) == pytest.approx(0.5)
    assert timed.lr(5, elapsed=150.0) == pytest.approx(0.0)
    both = Schedule(cfg, 10, max_seconds=100.0)
    assert both.lr(5, elapsed=10.0) == pytest.approx(0.5)  # steps are nearer their end
    assert both.lr(1, elapsed=100.0) == pytest.approx(0.0)  # time is up


def test_plateau_reduces_after_patience_bad_evaluations_and_resumes_its_state():
    s = Schedule(TrainConfig(lr=1.0, schedule="plateau", plateau_patience=2, plateau_factor=0.5),
                 None)
    for v in (1.0, 0.9, 0.95, 0.92):  # two evaluations without beating 0.9
        s.on_eval(v)
    assert s.lr(7) == 0.5
    s.on_eval(0.91)
    s2 = Schedule(s.cfg, None)
    s2.load_state_dict(s.state_dict())
    s2.on_eval(0.93)  # the second bad one since the reduction
    assert s2.lr(0) == 0.25


def test_trainer_sets_the_scheduled_lr_for_every_step(tmp_path):
    _fit(tmp_path, epochs=2, schedule="cosine", warmup_steps=3, log_every=1, lr=0.1)
    cfg = TrainConfig(lr=0.1, schedule="cosine", warmup_steps=3)
    lrs = [float(r["lr"]) for r in _rows(tmp_path / "run") if r["lr"]]
    assert lrs == pytest.approx([Schedule(cfg, 12).lr(s) for s in range(12)], rel=1e-5)


# -- early stopping and best ----------------------------------------------------------------------

@pytest.mark.parametrize("mode,values", [("min", [1.0, 0.8, 0.9, 0.85, 0.1]),
                                         ("max", [0.1, 0.3, 0.2, 0.25, 0.9])])
def test_early_stopping_after_patience_keeps_the_best_checkpoint(tmp_path, mode, values):
    task = _ScriptedEval(values, key="val_metric")
    t = _fit(tmp_path, task, epochs=10, monitor="val_metric", mode=mode, patience=2, keep_last=1)
    assert (t.stop_reason, t.epoch, t.best_metric) == ("early_stopping", 4, values[1])
    run = tmp_path / "run"
    assert ckpt.pointer(run, "best") == "step-00000012"  # after the second epoch
    assert ckpt.list_checkpoints(run) == ["step-00000012", "step-00000024"]  # best + last 1
    config, _ = ckpt.load_for_inference(run)
    assert config["task"] == "toy"
    again = Trainer(ToyNet(), _ScriptedEval(values, key="val_metric"), t.cfg, run)
    again.fit(resume=True)  # an early-stopped run stays stopped
    assert (again.step, again.stop_reason) == (24, "early_stopping")


def test_monitor_missing_from_the_metrics_is_a_user_error_when_needed(tmp_path):
    with pytest.raises(UserError, match="monitor 'val_acc'"):
        _fit(tmp_path, monitor="val_acc", patience=3)


# -- truncated BPTT -----------------------------------------------------------------------------

def test_state_is_carried_detached_within_an_epoch_and_reset_at_each_epoch(tmp_path):
    returned = []

    class Task(ToyTask):
        def training_step(self, model, batch, state):
            loss, count, h = super().training_step(model, batch, state)
            returned.append(h)
            return loss, count, h

    task = Task()
    _fit(tmp_path, task, epochs=2)
    seen = task.states_seen
    assert len(seen) == 12
    assert seen[0] is None and seen[6] is None
    for i in [*range(1, 6), *range(7, 12)]:
        assert torch.equal(seen[i], returned[i - 1])
        assert returned[i - 1].grad_fn is not None and seen[i].grad_fn is None
        assert not seen[i].requires_grad


def test_detach_state_handles_tuples_lists_and_dicts():
    x = torch.ones(2, requires_grad=True) * 2
    out = detach_state({"lstm": (x, [x, None]), "n": 3})
    assert out["n"] == 3 and out["lstm"][1][1] is None
    assert isinstance(out["lstm"], tuple) and isinstance(out["lstm"][1], list)
    assert out["lstm"][0].grad_fn is None and torch.equal(out["lstm"][1][0], x)


# -- metrics.csv ----------------------------------------------------------------------------------

def test_metrics_csv_has_train_rows_and_a_column_for_a_key_that_appears_later(tmp_path):
    class Task(ToyTask):
        evals = 0

        def evaluate(self, model):
            self.evals += 1
            return {"val_loss": 1.0, **({"val_late": 2.0} if self.evals > 1 else {})}

    _fit(tmp_path, Task(), epochs=2, log_every=2)
    rows = _rows(tmp_path / "run")
    assert list(rows[0])[:7] == ["step", "epoch", "time", "train_loss", "grad_norm", "lr",
                                 "tokens_per_s"]
    assert list(rows[0])[7:] == ["val_loss", "val_late"]
    evals = [r for r in rows if r["val_loss"]]
    assert [(r["step"], r["val_late"]) for r in evals] == [("6", ""), ("12", "2")]
    train = [r for r in rows if r["train_loss"]]
    assert [r["step"] for r in train] == ["1", "2", "4", "6", "8", "10", "12"]
    assert all(float(r["tokens_per_s"]) > 0 and float(r["grad_norm"]) > 0 for r in train)


def test_run_directory_config_holds_task_train_config_and_version(tmp_path):
    import json

    import rnnkit

    train_toy(tmp_path / "run", max_steps=1, schedule="step")
    config = json.loads((tmp_path / "run" / "config.json").read_text())
    assert config["task"] == "toy" and config["model"] == {"hidden": 8}
    assert config["train"]["schedule"] == "step" and config["train"]["max_steps"] == 1
    assert config["rnnkit_version"] == rnnkit.__version__


def test_a_non_finite_gradient_skips_the_update_and_training_goes_on(tmp_path):
    class Task(ToyTask):
        calls = 0

        def training_step(self, model, batch, state):
            self.calls += 1
            loss, count, h = super().training_step(model, batch, state)
            return (loss * float("nan") if self.calls == 2 else loss), count, h

    t = _fit(tmp_path, Task(), max_steps=3, log_every=1)
    rows = [r for r in _rows(tmp_path / "run") if r["grad_norm"]]
    assert rows[1]["grad_norm"] == "nan" and float(rows[2]["grad_norm"]) > 0
    assert all(torch.isfinite(p).all() for p in t.model.parameters())


def test_tensorboard_gets_every_scalar_when_it_is_installed(tmp_path, monkeypatch):
    import sys
    import types

    scalars = []

    class Writer:
        def __init__(self, log_dir):
            self.log_dir = log_dir

        def add_scalar(self, tag, value, step):
            scalars.append((tag, step))

        def close(self):
            scalars.append(("closed", 0))

    fake = types.ModuleType("torch.utils.tensorboard")
    fake.SummaryWriter = Writer
    monkeypatch.setitem(sys.modules, "torch.utils.tensorboard", fake)
    _fit(tmp_path, max_steps=2, log_every=1)
    assert ("train_loss", 1) in scalars and ("lr", 2) in scalars and ("val_loss", 2) in scalars
    assert scalars[-1] == ("closed", 0)


def test_a_task_missing_protocol_methods_is_named(tmp_path):
    class Half:
        def train_batches(self, epoch):
            return []

    with pytest.raises(TypeError, match="lacks training_step, evaluate, checkpoint_config"):
        Trainer(ToyNet(), Half(), TrainConfig(), tmp_path)


def test_resuming_with_another_optimizer_is_a_user_error(tmp_path):
    t = _fit(tmp_path, max_steps=1)
    cfg = dataclasses.replace(t.cfg, optimizer="sgd", max_steps=2)
    with pytest.raises(UserError, match="optimizer state .* does not fit a sgd optimizer"):
        Trainer(ToyNet(), ToyTask(), cfg, tmp_path / "run").fit(resume=True)
