"""Text generation: a recurrent language model trained on text files, then sampled from.

From Python::

    from rnnkit.tasks import textgen
    gen = textgen.train("corpus.txt", "runs/lm", max_time="3m")
    print(gen.generate("ROMEO:", 200, temperature=0.8))
    print(gen.predict(["ROMEO:", "JULIET:"], 100))   # one continuation per prompt
    gen = textgen.load("runs/lm")          # later, in another process
    gen.evaluate("held_out.txt")           # loss, ppl, bpc, bpb

``settings`` of ``train`` are any ``TextGenConfig`` or ``TrainConfig`` field; the command line
is ``rnnkit train textgen`` with the same settings as options.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

from rnnkit.tasks import registry
from rnnkit.tasks.registry import TaskSpec
from rnnkit.tasks.textgen.config import TASK, TRAIN_DEFAULTS, TextGenConfig
from rnnkit.tasks.textgen.examples import demo, smoke
from rnnkit.tasks.textgen.predictor import TextGenerator, load
from rnnkit.tasks.textgen.task import (
    TextGenTask,
    build,
    fit,
    plot_losses,
    saved_tokenizer,
    stream_loss,
)

__all__ = [
    "SPEC", "TASK", "TRAIN_DEFAULTS", "TextGenConfig", "TextGenTask", "TextGenerator", "build",
    "configs", "demo", "fit", "load", "plot_losses", "saved_tokenizer", "stream_loss", "summary",
    "train",
]


def summary(report: dict[str, Any], out: Path) -> list[str]:
    """What ``rnnkit train textgen`` prints once trained."""
    shown = "  ".join(f"{k} {v:.4f}" for k, v in report["train"].items())
    return [shown, f"saved in {out}/ (try: rnnkit generate {out} --prompt 'The ')"]


SPEC = TaskSpec(
    name=TASK, config=TextGenConfig, fit=fit, load=load,
    help="Train a character, byte or BPE language model on text files.",
    example="rnnkit train textgen --data corpus.txt --out runs/lm --max-time 3m",
    train_defaults=TRAIN_DEFAULTS, summary=summary, smoke=smoke,
)
# (TrainConfig, TextGenConfig) from settings, a config file and the run being resumed
configs = SPEC.configs


def train(data: str | Path | Sequence[str | Path], out: str | Path, *,
          val: str | Path | None = None, resume: bool = False, config: str | Path | None = None,
          **settings: Any) -> TextGenerator:
    """Train a language model on ``data`` (files or directories) into run directory ``out``.

    ``settings`` are any TextGenConfig or TrainConfig fields (``arch="gru"``, ``hidden=256``,
    ``max_time="3m"``, ...). Returns the trained model, ready to ``generate``; its report
    (``{"train": {"val_loss": ..., "val_bpc": ...}}``) is in ``.metrics``.
    """
    paths = [data] if isinstance(data, str | Path) else list(data)
    return registry.train(TASK, out, config=config, resume=resume, **settings,
                          data=[str(p) for p in paths], val=None if val is None else str(val))
