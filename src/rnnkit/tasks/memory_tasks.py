"""Long-dependency benchmarks: the adding problem (Hochreiter & Schmidhuber 1997).

Adding problem: each step carries a random value in [0, 1] and a marker; exactly two steps are
marked, one in the first half and one in the second half (the form used by Arjovsky et al. 2016),
and the target is the sum of the two marked values. Predicting 1 whatever the input has MSE
Var(U + U') = 2/12 = 0.167, the baseline a model must beat by remembering the first marked value
across at least half the sequence.
"""

from contextlib import contextmanager
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import torch
from torch import Tensor

from rnnkit.errors import UserError
from rnnkit.models.sequence_regressor import SequenceRegressor, SequenceRegressorConfig

ADDING_BASELINE_MSE = 1 / 6
# A run counts as solving the task when its test MSE is below this fraction of the baseline.
SOLVED_FRACTION = 0.1


def seeded_generator(seed: int, stream: int) -> torch.Generator:
    """An independent random stream for each (seed, stream) pair."""
    state = np.random.SeedSequence([seed, stream]).generate_state(1, dtype=np.uint64)[0]
    return torch.Generator().manual_seed(int(state))


def adding_batch(batch_size: int, length: int, generator: torch.Generator) -> tuple[Tensor, Tensor]:
    """``x`` (batch, length, 2): value and marker channels; ``y`` (batch,): the marked sum."""
    if length < 2:
        raise UserError(f"the adding problem needs a length of at least 2, found {length}")
    values = torch.rand(batch_size, length, generator=generator)
    half = length // 2
    first = torch.randint(0, half, (batch_size,), generator=generator)
    second = torch.randint(half, length, (batch_size,), generator=generator)
    markers = torch.zeros(batch_size, length)
    rows = torch.arange(batch_size)
    markers[rows, first] = 1.0
    markers[rows, second] = 1.0
    y = values[rows, first] + values[rows, second]
    return torch.stack([values, markers], dim=-1), y


@dataclass
class AddingConfig:
    length: int = 100
    batch_size: int = 64
    steps_per_epoch: int = 100
    test_size: int = 1000
    seed: int = 0

    def __post_init__(self) -> None:
        if self.length < 2:
            raise UserError(f"the adding problem needs a length of at least 2, found {self.length}")
        for name in ("batch_size", "steps_per_epoch", "test_size"):
            if getattr(self, name) < 1:
                raise UserError(f"{name} must be at least 1, found {getattr(self, name)}")


class AddingTask:
    """The adding problem as a task for rnnkit.train.Trainer (see rnnkit/train/protocol.py)."""

    def __init__(self, cfg: AddingConfig, model_cfg: SequenceRegressorConfig):
        if model_cfg.input_size != 2 or model_cfg.output_size != 1 or model_cfg.readout != "last":
            raise UserError("the adding problem needs a model with 2 inputs, 1 output and the "
                            f"last-step readout, found {model_cfg}")
        self.cfg = cfg
        self.model_cfg = model_cfg
        self.test_x, self.test_y = adding_batch(cfg.test_size, cfg.length,
                                                seeded_generator(cfg.seed, 0))

    def build_model(self) -> SequenceRegressor:
        return SequenceRegressor(self.model_cfg)

    def train_batches(self, epoch: int):
        # Stream epoch+1 (0 is the test set): the same epoch always yields the same batches.
        g = seeded_generator(self.cfg.seed, epoch + 1)
        for _ in range(self.cfg.steps_per_epoch):
            yield adding_batch(self.cfg.batch_size, self.cfg.length, g)

    def training_step(self, model, batch, state):
        x, y = batch  # already on the model's device: the trainer moves batches
        pred = model(x).squeeze(-1)
        return torch.nn.functional.mse_loss(pred, y), len(y), None

    def evaluate(self, model) -> dict[str, float]:
        device = next(model.parameters()).device
        pred = model(self.test_x.to(device)).squeeze(-1).float().cpu()
        mse = torch.nn.functional.mse_loss(pred, self.test_y).item()
        return {"val_loss": mse, "val_mse": mse, "val_mse_vs_baseline": mse / ADDING_BASELINE_MSE}

    def checkpoint_config(self) -> dict:
        return {"task": "adding", "model": self.model_cfg.to_dict(), "data": asdict(self.cfg)}


@contextmanager
def one_thread():
    """Run torch on one thread inside the block, then restore the count.

    The per-step matrix products of these small models are too small for threads to pay, and on
    a machine whose cores are busy with other work, waiting threads made them 10x slower.
    """
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(threads)


def train_task(model, task, *, steps: int, lr: float, clip: float | None, seed: int,
               run_dir: Path, quiet: bool) -> dict[str, float]:
    """Train ``model`` on ``task`` for ``steps`` steps with rnnkit's trainer (AdamW, constant
    learning rate); the metrics of the final evaluation."""
    from rnnkit.train import TrainConfig, Trainer

    cfg = TrainConfig(epochs=None, max_steps=steps, lr=lr, clip_norm=clip, seed=seed, quiet=quiet)
    with one_thread():
        return Trainer(model, task, cfg, run_dir).fit()
