"""Exact resume: a run SIGKILLed at random moments and resumed ends bit-identical to one that
was never interrupted (CPU, deterministic mode, checkpoint every step)."""

from __future__ import annotations

import csv
import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file
from test_train_toy import ToyNet, ToyTask, train_toy

from rnnkit.train import TrainConfig, Trainer
from rnnkit.train import checkpoint as ckpt

TOY = Path(__file__).with_name("test_train_toy.py")
SETTINGS = {"deterministic": 1, "checkpoint_every": 1, "eval_every": 4, "warmup_steps": 3,
            "keep_last": 2}
ARGS = [f"{k}={v}" for k, v in SETTINGS.items()]


pytestmark = pytest.mark.usefixtures("one_thread")


def _fork_training(run_dir: Path, resume: bool) -> int:
    """Train in a forked child (no second interpreter to start: quick); returns its pid."""
    pid = os.fork()
    if pid == 0:  # the child: never return into pytest
        code = 1
        try:
            torch.manual_seed(random.randrange(2**31))  # a resume must not lean on this state
            train_toy(run_dir, resume=resume, **SETTINGS)
            code = 0
        finally:
            os._exit(code)
    return pid


def _newest_step(run_dir: Path) -> int:
    try:
        names = ckpt.list_checkpoints(run_dir)
    except OSError:  # a checkpoint renamed away while we looked
        return -1
    return ckpt.sort_key(names[-1])[0] if names else -1


def _val_rows(run_dir: Path) -> list[tuple[str, str]]:
    with open(run_dir / "metrics.csv", newline="") as f:
        return [(r["step"], r["val_loss"]) for r in csv.DictReader(f) if r["val_loss"]]


def test_sigkill_at_random_moments_then_resume_gives_identical_weights(tmp_path):
    reference = train_toy(tmp_path / "ref", deterministic=True, checkpoint_every=1, eval_every=4,
                          warmup_steps=3, keep_last=2)
    total = reference.step  # 3 epochs of 6 batches
    assert total == 18

    seed = random.randrange(10**6)
    rng = random.Random(seed)
    run = tmp_path / "run"
    kills = []
    for attempt in range(2):
        pid = _fork_training(run, resume=attempt > 0)
        target = rng.randint(max(0, _newest_step(run)) + 1, total - 2)
        deadline = time.monotonic() + 60
        while _newest_step(run) < target and time.monotonic() < deadline:
            if os.waitpid(pid, os.WNOHANG) != (0, 0):
                break
            time.sleep(0.002)
        time.sleep(rng.uniform(0, 0.02))  # land anywhere: mid-step, mid-save, mid-prune
        os.kill(pid, signal.SIGKILL)
        _, status = os.waitpid(pid, 0)
        kills.append((target, _newest_step(run), os.WIFSIGNALED(status)))
    assert any(killed for *_, killed in kills), f"never killed (seed {seed}): {kills}"

    # the last resume in a fresh interpreter, as after a real crash
    cmd = [sys.executable, str(TOY), str(run), "--resume", *ARGS]
    done = subprocess.run(cmd, capture_output=True, timeout=120)
    assert done.returncode == 0, done.stderr.decode()

    final = load_file(str(run / "last" / ckpt.MODEL_FILE))
    expected = reference.model.state_dict()
    assert final.keys() == expected.keys()
    for k in final:
        assert torch.equal(final[k], expected[k]), f"{k} differs after kills {kills} (seed {seed})"
    # each evaluation appears once, with the uninterrupted run's value
    assert _val_rows(run) == _val_rows(tmp_path / "ref")
    assert not any(p.name.startswith(".tmp-") for p in (run / "checkpoints").iterdir())


class _CtrlCTask(ToyTask):
    """Sends itself SIGINT during step ``at``, like a user pressing Ctrl-C."""

    def __init__(self, at: int) -> None:
        super().__init__()
        self.at, self.calls = at, 0

    def training_step(self, model, batch, state):
        self.calls += 1
        if self.calls == self.at:
            os.kill(os.getpid(), signal.SIGINT)
        return super().training_step(model, batch, state)


def test_ctrl_c_saves_a_checkpoint_then_raises_and_resume_finishes_exactly(tmp_path):
    settings = {"epochs": 2, "lr": 1e-2, "quiet": True, "deterministic": True}
    reference = train_toy(tmp_path / "ref", **settings)

    torch.manual_seed(0)
    trainer = Trainer(ToyNet(), _CtrlCTask(at=8), TrainConfig(**settings), tmp_path / "run")
    with pytest.raises(KeyboardInterrupt):
        trainer.fit()
    assert trainer.step == 8  # the step in flight finished, then the checkpoint was saved
    assert ckpt.pointer(tmp_path / "run", "last") == "step-00000008"

    torch.manual_seed(99)  # the resumed run must not depend on how the model was initialised
    resumed = Trainer(ToyNet(), ToyTask(), TrainConfig(**settings), tmp_path / "run")
    resumed.fit(resume=True)
    assert resumed.step == reference.step
    for k, v in reference.model.state_dict().items():
        assert torch.equal(resumed.model.state_dict()[k], v), k
