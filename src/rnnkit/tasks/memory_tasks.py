"""Long-dependency benchmarks: the adding problem and the copy task (Hochreiter & Schmidhuber 1997).

Adding problem: each step carries a random value in [0, 1] and a marker; exactly two steps are
marked, one in the first half and one in the second half (the form used by Arjovsky et al. 2016),
and the target is the sum of the two marked values. Predicting 1 whatever the input has MSE
Var(U + U') = 2/12 = 0.167, the baseline a model must beat by remembering the first marked value
across at least half the sequence.

Copy task (the form of Arjovsky et al. 2016): 10 symbols drawn from 8, then ``delay`` - 1 blanks,
a delimiter and 10 more blanks; the model must output blanks until the delimiter's 10 blanks
and then the 10 symbols in order. Outputting blanks, then uniform guesses, has cross-entropy
10 ln 8 / (delay + 20) per step, the baseline.
"""

import math
import shutil
import tempfile
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor

from rnnkit.errors import UserError
from rnnkit.models.sequence_regressor import SequenceRegressor, SequenceRegressorConfig
from rnnkit.threads import one_thread

ADDING_BASELINE_MSE = 1 / 6
COPY_SYMBOLS = 10  # how many symbols to remember
COPY_ALPHABET = 8  # symbols are 1..8; 0 is the blank, 9 the delimiter
# A run counts as solving a task when its test loss is below this fraction of the baseline.
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


def copy_batch(batch_size: int, delay: int, generator: torch.Generator) -> tuple[Tensor, Tensor]:
    """``x`` (batch, delay + 20, 10): one-hot inputs; ``y`` (batch, delay + 20): target ids."""
    if delay < 1:
        raise UserError(f"the copy task needs a delay of at least 1 step, found {delay}")
    k = COPY_SYMBOLS
    symbols = torch.randint(1, COPY_ALPHABET + 1, (batch_size, k), generator=generator)
    ids = torch.zeros(batch_size, delay + 2 * k, dtype=torch.long)
    ids[:, :k] = symbols
    ids[:, delay + k - 1] = COPY_ALPHABET + 1
    y = torch.zeros_like(ids)
    y[:, -k:] = symbols
    return F.one_hot(ids, COPY_ALPHABET + 2).float(), y


@dataclass
class MemoryTaskConfig:
    length: int = 100  # adding: the sequence length; copy: the delay
    batch_size: int = 64
    steps_per_epoch: int = 100
    test_size: int = 1000
    seed: int = 0

    def __post_init__(self) -> None:
        for name in ("length", "batch_size", "steps_per_epoch", "test_size"):
            if getattr(self, name) < 1:
                raise UserError(f"{name} must be at least 1, found {getattr(self, name)}")


class MemoryTask:
    """A long-dependency task for rnnkit.train.Trainer (see rnnkit/train/protocol.py): fresh
    random batches each epoch, a fixed test set, the loss compared with an input-blind baseline."""

    name: str
    input_size: int
    output_size: int
    readout: str

    def __init__(self, cfg: MemoryTaskConfig, model_cfg: SequenceRegressorConfig):
        expected = (self.input_size, self.output_size, self.readout)
        found = (model_cfg.input_size, model_cfg.output_size, model_cfg.readout)
        if found != expected:
            raise UserError(f"the {self.name} task needs a model with (inputs, outputs, readout) "
                            f"= {expected}, found {found}")
        self.cfg = cfg
        self.model_cfg = model_cfg
        self.test_x, self.test_y = self.make_batch(cfg.test_size, seeded_generator(cfg.seed, 0))

    @classmethod
    def span(cls, length: int) -> int:
        """The longest dependency in steps (chrono init's t_max) for this ``length``."""
        return length

    @classmethod
    def model_config(cls, arch: str, hidden: int, length: int, init: str = "default",
                     forget_bias: float | None = None) -> SequenceRegressorConfig:
        return SequenceRegressorConfig(
            arch=arch, input_size=cls.input_size, hidden_size=hidden, output_size=cls.output_size,
            readout=cls.readout, init=init, forget_bias=forget_bias,
            t_max=cls.span(length) if init == "chrono" else None)

    def make_batch(self, batch_size: int, generator: torch.Generator) -> tuple[Tensor, Tensor]:
        raise NotImplementedError

    def loss(self, out: Tensor, y: Tensor) -> Tensor:
        raise NotImplementedError

    def baseline(self) -> float:
        """The test loss of the best prediction that ignores the input."""
        raise NotImplementedError

    def extra_metrics(self, out: Tensor, y: Tensor) -> dict[str, float]:
        return {}

    def build_model(self) -> SequenceRegressor:
        return SequenceRegressor(self.model_cfg)

    def train_batches(self, epoch: int):
        # Stream epoch+1 (0 is the test set): the same epoch always yields the same batches.
        g = seeded_generator(self.cfg.seed, epoch + 1)
        for _ in range(self.cfg.steps_per_epoch):
            yield self.make_batch(self.cfg.batch_size, g)

    def training_step(self, model, batch, state):
        x, y = batch  # already on the model's device: the trainer moves batches
        return self.loss(model(x), y), len(y), None

    def evaluate(self, model) -> dict[str, float]:
        device = next(model.parameters()).device
        # in chunks, so that long sequences do not hold every test output's activations at once
        out = torch.cat([model(x.to(device)).float() for x in self.test_x.split(250)])
        y = self.test_y.to(device)
        loss = self.loss(out, y).item()
        return {"val_loss": loss, "val_loss_vs_baseline": loss / self.baseline(),
                **self.extra_metrics(out, y)}

    def checkpoint_config(self) -> dict:
        return {"task": self.name, "model": self.model_cfg.to_dict(), "data": asdict(self.cfg)}


class AddingTask(MemoryTask):
    name, input_size, output_size, readout = "adding", 2, 1, "last"

    def __init__(self, cfg: MemoryTaskConfig, model_cfg: SequenceRegressorConfig):
        if cfg.length < 2:
            raise UserError(f"the adding problem needs a length of at least 2, found {cfg.length}")
        super().__init__(cfg, model_cfg)

    def make_batch(self, batch_size, generator):
        return adding_batch(batch_size, self.cfg.length, generator)

    def loss(self, out, y):
        return F.mse_loss(out.squeeze(-1), y)

    def baseline(self) -> float:
        return ADDING_BASELINE_MSE

    def extra_metrics(self, out, y):
        return {"val_mse": F.mse_loss(out.squeeze(-1), y).item()}


class CopyTask(MemoryTask):
    name, input_size, output_size, readout = "copy", COPY_ALPHABET + 2, COPY_ALPHABET + 1, "all"

    @classmethod
    def span(cls, length: int) -> int:
        return length + 2 * COPY_SYMBOLS

    def make_batch(self, batch_size, generator):
        return copy_batch(batch_size, self.cfg.length, generator)

    def loss(self, out, y):
        return F.cross_entropy(out.flatten(0, 1), y.flatten())

    def baseline(self) -> float:
        return COPY_SYMBOLS * math.log(COPY_ALPHABET) / (self.cfg.length + 2 * COPY_SYMBOLS)

    def extra_metrics(self, out, y):
        """The fraction of the recalled symbols that are right (chance: 1/8)."""
        recalled = out[:, -COPY_SYMBOLS:].argmax(-1) == y[:, -COPY_SYMBOLS:]
        return {"val_recall_accuracy": recalled.float().mean().item()}


TASKS = {"adding": AddingTask, "copy": CopyTask}


def train_task(model, task, *, steps: int, lr: float, clip: float | None, seed: int,
               run_dir: Path, quiet: bool) -> dict[str, float]:
    """Train ``model`` on ``task`` for ``steps`` steps with rnnkit's trainer (AdamW, constant
    learning rate); the metrics of the final evaluation."""
    from rnnkit.train import TrainConfig, Trainer

    cfg = TrainConfig(epochs=None, max_steps=steps, lr=lr, clip_norm=clip, seed=seed, quiet=quiet)
    with one_thread():
        return Trainer(model, task, cfg, run_dir).fit()


def run_memory_benchmark(task_cls: type[MemoryTask], archs: list[str], *, length: int, steps: int,
                         hidden: int, init: str = "default", forget_bias: float | None = None,
                         clip: float | None = 1.0, batch_size: int = 64, lr: float = 3e-3,
                         seed: int = 0, curves_dir: Path | None = None, quiet: bool = True,
                         log=print) -> list[dict]:
    """Train each arch ``steps`` steps on the task; one result row per arch.

    The runs live in temporary directories (only their metrics.csv is kept, in ``curves_dir``),
    so that a benchmark can be rerun into the same place.
    """
    if steps < 1:
        raise UserError(f"the number of training steps must be at least 1, found {steps}")
    data_cfg = MemoryTaskConfig(length=length, batch_size=batch_size,
                                steps_per_epoch=min(steps, 250), seed=seed)
    tasks, models = {}, {}
    for arch in archs:  # build every model first: a missing arch fails before any training
        tasks[arch] = task_cls(data_cfg, task_cls.model_config(arch, hidden, length, init=init,
                                                                forget_bias=forget_bias))
        torch.manual_seed(seed)
        models[arch] = tasks[arch].build_model()
    threshold = SOLVED_FRACTION * tasks[archs[0]].baseline()
    rows = []
    for arch in archs:
        if not quiet:
            log(f"training {arch} for {steps} steps ({task_cls.name}, length {length}, "
                f"hidden {hidden})")
        t0 = time.perf_counter()
        with tempfile.TemporaryDirectory(prefix=f"rnnkit-{task_cls.name}-") as run_dir:
            metrics = train_task(models[arch], tasks[arch], steps=steps, lr=lr, clip=clip,
                                 seed=seed, run_dir=Path(run_dir), quiet=quiet)
            if curves_dir is not None:
                shutil.copyfile(Path(run_dir) / "metrics.csv",
                                curves_dir / f"{task_cls.name}_{arch}_metrics.csv")
        extra = {k.removeprefix("val_"): v for k, v in metrics.items()
                 if k not in ("val_loss", "val_loss_vs_baseline", "val_mse")}
        rows.append({"arch": arch, "task": task_cls.name, "length": length, "steps": steps,
                     "test_loss": metrics["val_loss"],
                     "vs_baseline": metrics["val_loss_vs_baseline"], **extra,
                     "solved": metrics["val_loss"] < threshold,
                     "seconds": round(time.perf_counter() - t0, 1)})
    return rows
