"""What every ``rnnkit train <task>`` command shares: the training flags, the config file merged
with them, the device, and Ctrl-C turned into exit code 130 after the checkpoint is saved.

A task's command declares the shared flags with these annotated types::

    @train_app.command("mytask")
    def mytask(out: Path = ..., config: common.ConfigOpt = None, epochs: common.EpochsOpt = None,
               ..., resume: common.ResumeOpt = False, quiet: common.QuietOpt = None,
               hidden: int | None = typer.Option(None, "--hidden")):
        train_cfg, task_cfg = rnnkit.train.task_configs(
            MyTaskConfig, "mytask", MYTASK_DEFAULTS,
            {**common.shared(epochs=epochs, ..., quiet=quiet), "hidden": hidden}, config,
            resume_from=out if resume else None)
        ...
        metrics = common.fit(Trainer(model, task, train_cfg, out), resume)
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer

from rnnkit.train import Trainer, resolve_device

__all__ = [
    "ConfigOpt", "EpochsOpt", "MaxStepsOpt", "MaxTimeOpt", "BatchSizeOpt", "LrOpt", "SeedOpt",
    "DeviceOpt", "ResumeOpt", "QuietOpt", "shared", "fit", "resolve_device",
]

ConfigOpt = Annotated[Path | None, typer.Option(
    "--config", help="YAML or TOML file of settings; flags given on the command line override it.")]
EpochsOpt = Annotated[int | None, typer.Option("--epochs", help="Passes over the training data.")]
MaxStepsOpt = Annotated[int | None, typer.Option("--max-steps", help="Stop after this many steps.")]
MaxTimeOpt = Annotated[str | None, typer.Option(
    "--max-time", help="Stop after this much training time: seconds or 90s, 3m, 1h.")]
BatchSizeOpt = Annotated[int | None, typer.Option("--batch-size", help="Examples per batch.")]
LrOpt = Annotated[float | None, typer.Option("--lr", help="Peak learning rate.")]
SeedOpt = Annotated[int | None, typer.Option("--seed", help="Random seed.")]
DeviceOpt = Annotated[str | None, typer.Option(
    "--device", help="auto (a CUDA GPU when there is one), cpu, cuda or cuda:N.")]
ResumeOpt = Annotated[bool, typer.Option(
    "--resume", help="Continue the run in the output directory from its last checkpoint.")]
QuietOpt = Annotated[bool | None, typer.Option("--quiet", help="No progress bar or epoch lines.")]


def shared(**flags: Any) -> dict[str, Any]:
    """The shared flags as config overrides (``max_time``, ``quiet`` ... by their field names);
    flags not given (None) are left out so the config file's values stand."""
    return {k: v for k, v in flags.items() if v is not None}


def fit(trainer: Trainer, resume: bool = False) -> dict[str, float]:
    """``trainer.fit(resume)``; Ctrl-C (after the trainer saved its checkpoint) exits with 130."""
    try:
        return trainer.fit(resume=resume)
    except KeyboardInterrupt:
        raise typer.Exit(130) from None
