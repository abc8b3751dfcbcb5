"""Training configuration: the ``TrainConfig`` dataclass, config files and overrides.

A config file (YAML or TOML) is one flat mapping; each key goes to the first of the given
dataclasses that has a field of that name (the trainer's, then the task's), so every task reuses
``merge_config``. Unknown keys are user mistakes; command-line values override the file.
"""

from __future__ import annotations

import dataclasses
import json
import re
import types
import typing
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from rnnkit.errors import UserError, not_a_file
from rnnkit.settings import setting

OPTIMIZERS = ("sgd", "adam", "adamw")
SCHEDULES = ("constant", "cosine", "step", "plateau")
PRECISIONS = ("auto", "fp32", "bf16")


@dataclasses.dataclass
class TrainConfig:
    """Everything the trainer needs besides the model, the task and the run directory."""

    # budgets: training stops at the first one reached (None = no limit)
    epochs: int | None = setting(10, "Passes over the training data.")
    max_steps: int | None = setting(None, "Stop after this many steps.")
    max_time: float | str | None = setting(
        None, "Stop after this much training time: seconds or 90s, 3m, 1h.", metavar="DURATION")
    batch_size: int = setting(
        32, "Examples per batch, over all processes under torchrun (each takes its share).")
    # optimiser
    optimizer: str = setting("adamw", "sgd, adam or adamw.")
    lr: float = setting(1e-3, "Peak learning rate.")
    weight_decay: float | None = setting(
        None, "Weight decay (default: 0.01 for adamw, 0 for sgd and adam).")
    momentum: float = setting(0.9, "Momentum of sgd.")
    nesterov: bool = setting(False, "Nesterov momentum for sgd.")
    beta1: float = setting(0.9, "First moment decay of adam and adamw.")
    beta2: float = setting(0.999, "Second moment decay of adam and adamw.")
    clip_norm: float | None = setting(
        1.0, "Clip the global gradient norm to this (none or 0: no clipping).")
    # learning-rate schedule
    schedule: str = setting(
        "constant", "Learning-rate schedule: constant, cosine (ends at max_steps or max_time), "
        "step or plateau.")
    warmup_steps: int = setting(0, "Steps of linear warm-up to the peak learning rate.")
    min_lr: float = setting(0.0, "Final learning rate of the cosine schedule.")
    step_size: int = setting(1000, "Step schedule: optimiser steps between decays.")
    gamma: float = setting(0.5, "Step schedule: factor of each decay.")
    plateau_factor: float = setting(
        0.5, "Plateau schedule: factor after plateau_patience evaluations without progress.")
    plateau_patience: int = setting(2, "Plateau schedule: evaluations without progress.")
    # evaluation, early stopping, checkpoints
    monitor: str = setting("val_loss", "Validation metric that picks the best checkpoint.")
    mode: str = setting("min", "Whether the monitored metric is better when min or max.")
    patience: int | None = setting(
        None, "Evaluations without improvement before stopping early (default: never).")
    min_delta: float = setting(0.0, "Smallest change of the monitored metric that counts.")
    eval_every: int | None = setting(
        None, "Steps between evaluations (default: at the end of each epoch).")
    checkpoint_every: int | None = setting(
        None, "Steps between checkpoints (one is also saved after every evaluation).")
    keep_last: int = setting(2, "Checkpoints kept besides the best one.")
    log_every: int = setting(10, "Steps per row of metrics.csv.")
    # reproducibility and hardware
    seed: int = setting(0, "Random seed.")
    deterministic: bool = setting(False, "Deterministic algorithms only (slower).")
    precision: str = setting(
        "auto", "auto (bf16 autocast on a CUDA GPU with bf16, and on a CPU with bf16 matrix "
        "instructions where a short probe finds it faster; fp32 otherwise), fp32 or bf16.")
    device: str = setting("auto", "auto (a CUDA GPU when there is one), cpu, cuda or cuda:N.")
    quiet: bool = setting(False, "No progress bar or epoch lines.")

    def __post_init__(self) -> None:
        _check_choice("optimizer", self.optimizer, OPTIMIZERS)
        _check_choice("schedule", self.schedule, SCHEDULES)
        _check_choice("precision", self.precision, PRECISIONS)
        _check_choice("mode", self.mode, ("min", "max"))
        if self.max_time is not None:
            parse_duration(self.max_time)
        for name in ("epochs", "max_steps", "eval_every", "checkpoint_every", "patience"):
            value = getattr(self, name)
            if value is not None and value < (0 if name in ("epochs", "max_steps") else 1):
                raise UserError(f"{name} must be a positive whole number, found {value}.")
        if self.lr <= 0:
            raise UserError(f"lr must be a positive number, found {self.lr}.")
        for name, ok, expected in (  # what torch's optimizers and schedules would reject later
                ("weight_decay", (self.weight_decay or 0) >= 0, "zero or more"),
                ("momentum", self.momentum >= 0, "zero or more"),
                ("beta1", 0 <= self.beta1 < 1, "in [0, 1)"),
                ("beta2", 0 <= self.beta2 < 1, "in [0, 1)"),
                ("min_lr", self.min_lr >= 0, "zero or more"),
                ("warmup_steps", self.warmup_steps >= 0, "zero or more"),
                ("gamma", self.gamma > 0, "a positive number"),
                ("plateau_factor", 0 < self.plateau_factor < 1, "in (0, 1)")):
            if not ok:
                raise UserError(f"{name} must be {expected}, found {getattr(self, name)}.")
        if self.keep_last < 1:
            raise UserError(f"keep_last must be at least 1, found {self.keep_last}.")
        if self.log_every < 1 or self.step_size < 1 or self.plateau_patience < 1:
            raise UserError("log_every, step_size and plateau_patience must be at least 1.")

    def max_seconds(self) -> float | None:
        return None if self.max_time is None else parse_duration(self.max_time)


def _check_choice(name: str, value: str, choices: Sequence[str]) -> None:
    if value not in choices:
        raise UserError(f"{name} must be one of {', '.join(choices)}, found {value!r}.")


_DURATION = re.compile(r"^\s*(\d+(?:\.\d*)?|\.\d+)\s*(s|m|h|d)?\s*$")
_UNIT_SECONDS = {"s": 1.0, "m": 60.0, "h": 3600.0, "d": 86400.0}


def parse_duration(value: float | int | str) -> float:
    """Seconds from a number or a string like ``"90"``, ``"90s"``, ``"3m"``, ``"1.5h"``, ``"2d"``."""
    if isinstance(value, bool):
        raise UserError(f"max_time must be seconds or a duration like 90s, 3m, 1h, found {value}.")
    if isinstance(value, (int, float)):
        seconds = float(value)
    else:
        match = _DURATION.match(str(value))
        if not match:
            raise UserError(
                f"max_time must be seconds or a duration like 90s, 3m, 1h, found {value!r}."
            )
        seconds = float(match.group(1)) * _UNIT_SECONDS[match.group(2) or "s"]
    if not seconds > 0:
        raise UserError(f"max_time must be more than zero seconds, found {value!r}.")
    return seconds


def load_config_file(path: str | Path) -> dict[str, Any]:
    """The flat mapping in a YAML (.yaml, .yml) or TOML (.toml) file."""
    path = Path(path)
    if not path.is_file():
        raise not_a_file("config file", path)
    suffix = path.suffix.lower()
    try:
        text = path.read_text(encoding="utf-8")
        if suffix == ".toml":
            try:
                import tomllib
            except ModuleNotFoundError:  # Python 3.10
                import tomli as tomllib  # type: ignore[no-redef]
            data = tomllib.loads(text)
        elif suffix in (".yaml", ".yml"):
            import yaml

            data = yaml.safe_load(text)
        else:
            raise UserError(f"config file {path} must end in .yaml, .yml or .toml, found {suffix!r}.")
    except UserError:
        raise
    except Exception as e:  # syntax errors of either format, bad encoding
        raise UserError(_unreadable(path, e)) from e
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise UserError(f"config file {path} must hold a mapping of keys to values, "
                        f"found a {type(data).__name__}.")
    return data


def _unreadable(path: Path, e: Exception) -> str:
    """One sentence for a config file that does not parse: where, and what was expected (the
    YAML parser's own report spans several lines with the context it was in)."""
    mark = getattr(e, "problem_mark", None)
    if mark is not None:  # yaml.MarkedYAMLError
        problem = (getattr(e, "problem", None) or "a syntax error").strip()
        return (f"config file {path} is not valid YAML: line {mark.line + 1}, column "
                f"{mark.column + 1}: {problem}.")
    if isinstance(e, UnicodeDecodeError):
        return f"config file {path} is not UTF-8 text (byte {e.start} cannot be decoded)."
    first = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
    kind = "TOML" if path.suffix.lower() == ".toml" else "YAML"
    return f"config file {path} is not valid {kind}: {first.rstrip('.')}."


def merge_config(
    classes: Sequence[type],
    file_values: Mapping[str, Any] | None = None,
    overrides: Mapping[str, Any] | None = None,
    *,
    source: str = "the config",
) -> list[Any]:
    """One instance of each dataclass in ``classes``: defaults < ``file_values`` < ``overrides``.

    Keys may use dashes or underscores. Override values of ``None`` mean "not given". Each key goes
    to the first class with a field of that name; a key no class knows is a ``UserError``.
    """
    owners: dict[str, int] = {}
    hints = []
    for i, cls in enumerate(classes):
        hints.append(typing.get_type_hints(cls))
        for f in dataclasses.fields(cls):
            owners.setdefault(f.name, i)
    values: list[dict[str, Any]] = [{} for _ in classes]
    for where, mapping in ((source, file_values or {}), (None, overrides or {})):
        for key, value in mapping.items():
            if value is None and where is None:
                continue
            name = str(key).replace("-", "_")
            if name not in owners:
                known = ", ".join(sorted(owners))
                raise UserError(f"{where or 'the command line'} has an unknown key {key!r}; "
                                f"known keys are: {known}.")
            i = owners[name]
            values[i][name] = _coerce(name, value, hints[i][name])
    return [cls(**vals) for cls, vals in zip(classes, values, strict=True)]


def _coerce(name: str, value: Any, hint: Any) -> Any:
    """``value`` as the field type ``hint`` (YAML reads 1e-3 as a string, TOML has no None)."""
    options = typing.get_args(hint) if _is_union(hint) else (hint,)
    if value is None or (isinstance(value, str) and value.lower() in ("none", "null")):
        if type(None) in options:
            return None
    for t in options:
        if t is type(None):
            continue
        if t is bool:
            if isinstance(value, bool):
                return value
            if isinstance(value, str) and value.lower() in _BOOLS:
                return _BOOLS[value.lower()]
        elif t is int:
            if isinstance(value, int) and not isinstance(value, bool):
                return value
            if isinstance(value, float) and value.is_integer():
                return int(value)
            if isinstance(value, str) and re.fullmatch(r"[+-]?\d+", value.strip()):
                return int(value)
        elif t is float:
            if isinstance(value, (int, float)) and not isinstance(value, bool):
                return float(value)
            if isinstance(value, str):
                try:
                    return float(value)
                except ValueError:
                    pass
        elif t is str:
            if isinstance(value, str):
                return value
        elif isinstance(t, type) and isinstance(value, t):
            return value
        elif typing.get_origin(t) in (list, tuple) and isinstance(value, (list, tuple)):
            return typing.get_origin(t)(value)
    expected = " or ".join("none" if t is type(None) else getattr(t, "__name__", str(t))
                           for t in options)
    raise UserError(f"config key {name!r} expects {expected}, found {value!r}.")


_BOOLS = {"true": True, "yes": True, "on": True, "1": True,
          "false": False, "no": False, "off": False, "0": False}


def _is_union(hint: Any) -> bool:
    return typing.get_origin(hint) in (typing.Union, types.UnionType)


def read_run_config(run_dir: str | Path, task: str) -> dict[str, Any]:
    """The ``config.json`` a run directory was started with (empty when it has none yet), checked
    to belong to ``task`` so one task never resumes another's run."""
    file = Path(run_dir) / "config.json"
    if not file.is_file():
        return {}
    try:
        saved = json.loads(file.read_text(encoding="utf-8"))
    except ValueError:
        raise UserError(f"{file} is truncated or corrupt (not valid JSON).") from None
    if saved.get("task") != task:
        raise UserError(f"{run_dir} holds a run of task {saved.get('task')!r}, not {task!r}, so "
                        f"it cannot be resumed as {task}.")
    return saved


def task_configs(
    task_class: type,
    task: str,
    defaults: Mapping[str, Any],
    settings: Mapping[str, Any],
    config_file: str | Path | None = None,
    resume_from: str | Path | None = None,
) -> list[Any]:
    """``[TrainConfig, task config]``: the task's ``defaults`` < the settings of the run being
    resumed (``resume_from``) < ``config_file`` < ``settings`` (``None`` means "not given")."""
    file_values = load_config_file(config_file) if config_file is not None else {}
    saved = read_run_config(resume_from, task) if resume_from is not None else {}
    source = f"config file {config_file}" if config_file is not None else "the saved run config"
    return merge_config([TrainConfig, task_class],
                        {**defaults, **saved.get("train", {}), **saved.get(task, {}),
                         **file_values}, settings, source=source)
