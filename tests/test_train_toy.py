"""A tiny task for the trainer tests: next-step prediction on noisy sine streams with a GRU,
trained in consecutive windows (truncated BPTT). Also runnable as a script, for the resume tests:

    python tests/test_train_toy.py RUN_DIR [--resume] [KEY=VALUE ...]
"""

from __future__ import annotations

import sys
from pathlib import Path

import torch
from torch import nn


class ToyNet(nn.Module):
    def __init__(self, hidden: int = 8, dropout: float = 0.2) -> None:
        super().__init__()
        self.rnn = nn.GRU(2, hidden, batch_first=True)
        self.drop = nn.Dropout(dropout)  # draws from the global RNG: resume must restore it
        self.head = nn.Linear(hidden, 2)

    def forward(self, x, h=None):
        out, h = self.rnn(x, h)
        return self.head(self.drop(out)), h


class ToyTask:
    """``n_batches`` windows of ``window`` steps from ``batch`` streams; each epoch adds its own
    input noise from a generator seeded by (seed, epoch), so epochs differ but replay exactly."""

    def __init__(self, n_batches: int = 6, window: int = 8, batch: int = 4, seed: int = 0) -> None:
        g = torch.Generator().manual_seed(1234)
        t = torch.linspace(0, 12, n_batches * window + 1)
        phase = torch.rand(batch, 1, 1, generator=g) * 6
        stream = torch.stack([torch.sin(t + phase[:, :, 0]), torch.cos(0.5 * t + phase[:, :, 0])], -1)
        self.x, self.y = stream[:, :-1], stream[:, 1:]
        self.n_batches, self.window, self.seed = n_batches, window, seed
        self.states_seen: list = []  # the state argument of every training_step

    def train_batches(self, epoch: int):
        g = torch.Generator().manual_seed(self.seed * 1000 + epoch)
        x = self.x + 0.05 * torch.randn(self.x.shape, generator=g)
        w = self.window
        return [(x[:, i * w:(i + 1) * w], self.y[:, i * w:(i + 1) * w])
                for i in range(self.n_batches)]

    def training_step(self, model, batch, state):
        self.states_seen.append(state)
        x, y = batch
        pred, h = model(x, state)
        return nn.functional.mse_loss(pred, y), y.numel(), h

    def evaluate(self, model):
        pred, _ = model(self.x)
        return {"val_loss": nn.functional.mse_loss(pred, self.y).item()}

    def checkpoint_config(self):
        return {"task": "toy", "model": {"hidden": 8}}


def train_toy(run_dir, resume: bool = False, **overrides):
    """Build the toy model (seeded) and train it; returns the Trainer."""
    from rnnkit.train import TrainConfig, Trainer

    torch.manual_seed(0)
    model = ToyNet()
    cfg = TrainConfig(**{"epochs": 3, "lr": 1e-2, "quiet": True, **overrides})
    trainer = Trainer(model, ToyTask(), cfg, run_dir)
    trainer.fit(resume=resume)
    return trainer


def test_toy_batches_are_the_same_for_an_epoch_and_differ_between_epochs():
    task = ToyTask()
    a, b, c = task.train_batches(1), task.train_batches(1), task.train_batches(2)
    assert all(torch.equal(p[0], q[0]) for p, q in zip(a, b, strict=True))
    assert not torch.equal(a[0][0], c[0][0])


if __name__ == "__main__":
    import dataclasses

    from rnnkit.train import TrainConfig, merge_config

    torch.set_num_threads(1)
    args = sys.argv[1:]
    given = dict(arg.split("=", 1) for arg in args[1:] if "=" in arg)
    (cfg,) = merge_config([TrainConfig], {"epochs": 3, "lr": 1e-2, "quiet": True}, given)
    train_toy(Path(args[0]), resume="--resume" in args, **dataclasses.asdict(cfg))
