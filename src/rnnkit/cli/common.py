"""What every ``rnnkit train <task>`` command shares: the training flags, the config file merged
with them, the device, and Ctrl-C turned into exit code 130 after the checkpoint is saved.

A task's command declares the shared flags with these annotated types::

    @train_app.command("mytask")
    def mytask(out: Path = ..., config: common.ConfigOpt = None, epochs: common.EpochsOpt = None,
               ..., resume: common.ResumeOpt = False, quiet: common.QuietOpt = None,
               hidden: int | None = typer.Option(None, "--hidden")):
        train_cfg, task_cfg = common.build_configs(
            config, {**common.shared(epochs=epochs, ..., quiet=quiet), "hidden": hidden},
            MyTaskConfig)
        ...
        metrics = common.fit(Trainer(model, task, train_cfg, out), resume)
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Annotated, Any

import typer

from rnnkit.train import TrainConfig, Trainer, load_config_file, merge_config, resolve_device

__all__ = [
    "ConfigOpt", "EpochsOpt", "MaxStepsOpt", "MaxTimeOpt", "BatchSizeOpt", "LrOpt", "SeedOpt",
    "DeviceOpt", "ResumeOpt", "QuietOpt", "shared", "build_configs", "fit", "resolve_device",
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


def build_configs(config_file: Path | None, overrides: Mapping[str, Any],
                  *task_classes: type) -> list[Any]:
    """``[TrainConfig, *task configs]`` from defaults < ``config_file`` < ``overrides``; each key
    goes to the first class that has it, unknown keys are a ``UserError``."""
    file_values = load_config_file(config_file) if config_file is not None else {}
    return merge_config([TrainConfig, *task_classes], file_values, overrides,
                        source=f"config file {config_file}")


def fit(trainer: Trainer, resume: bool = False) -> dict[str, float]:
    """``trainer.fit(resume)``; Ctrl-C (after the trainer saved its checkpoint) exits with 130."""
    try:
        return trainer.fit(resume=resume)
    except KeyboardInterrupt:
        raise typer.Exit(130) from None
