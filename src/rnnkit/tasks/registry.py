"""The task registry: every application is declared once, as a ``TaskSpec``, and found by name.

``rnnkit train <task>``, ``rnnkit evaluate``, the Python ``rnnkit.tasks.train`` / ``load`` (and
later serving, export and the distributed launcher) reach tasks only through here. The built-in
tasks are listed in ``BUILTIN`` (module name -> its ``SPEC``); a third-party package registers
one through the ``rnnkit.tasks`` entry-point group (``name = "package.module:SPEC"``), and a
script can call ``register(spec)``.
"""

from __future__ import annotations

import dataclasses
import importlib
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from rnnkit.errors import UserError
from rnnkit.tasks.protocol import Predictor

ENTRY_POINT_GROUP = "rnnkit.tasks"

# The registry line of each built-in task: its name and the module that defines its SPEC.
BUILTIN: dict[str, str] = {
    "textgen": "rnnkit.tasks.textgen",
    "sentiment": "rnnkit.tasks.sentiment",
    "translate": "rnnkit.tasks.translate",
    "speech": "rnnkit.tasks.speech",
    "forecast": "rnnkit.tasks.forecast",
}


@dataclass(frozen=True)
class Smoke:
    """Tiny generated data for the harness every task must pass (tests/test_task_harness.py).

    ``settings``: task and trainer settings that train on it in a few steps (files written
    under the directory given to ``TaskSpec.smoke``); ``predict_input``: a natural input for
    ``Predictor.predict``; ``evaluate_data``: what ``Predictor.evaluate`` takes; ``bad``:
    settings that make training fail with one ``UserError`` sentence (a bad input file).
    """

    settings: dict[str, Any]
    predict_input: Any
    evaluate_data: Any
    bad: dict[str, Any]


@dataclass(frozen=True)
class TaskSpec:
    """One application: how to configure it, train it from data and load its runs.

    - ``config``: the dataclass of the task's settings (``rnnkit.settings.setting`` fields); the
      options of ``rnnkit train NAME`` are generated from it and from ``TrainConfig``.
    - ``fit(train_cfg, cfg, out, resume=False) -> dict``: read the data, build, train into run
      directory ``out`` and return a report (``{"train": {...}, "val": {...}, ...}``).
    - ``load(run_dir, device="cpu", which="best") -> Predictor``; the built-in tasks also take
      ``precision="auto"`` (``rnnkit.tasks.precision``).
    - ``train_defaults``: where the task's trainer settings differ from ``TrainConfig``'s.
    - ``summary(report, out) -> list[str]``: the lines ``rnnkit train`` prints afterwards.
    - ``smoke(directory) -> Smoke``: tiny generated data for the shared harness.
    """

    name: str
    config: type
    fit: Callable[..., dict[str, Any]]
    load: Callable[..., Predictor]
    help: str
    example: str
    train_defaults: Mapping[str, Any] = field(default_factory=dict)
    summary: Callable[[dict[str, Any], Path], list[str]] | None = None
    smoke: Callable[[Path], Smoke] | None = None

    def configs(self, settings: Mapping[str, Any] | None = None,
                config_file: str | Path | None = None,
                resume_from: str | Path | None = None) -> tuple[Any, Any]:
        """``(TrainConfig, task config)``: the task's defaults < the saved settings of the run
        being resumed < ``config_file`` < ``settings`` (``None`` values mean "not given")."""
        from rnnkit.train import task_configs

        train_cfg, cfg = task_configs(self.config, self.name, self.train_defaults,
                                      settings or {}, config_file, resume_from)
        return train_cfg, cfg


_registered: dict[str, TaskSpec] = {}
_entry_points: dict[str, Any] | None = None


def register(spec: TaskSpec) -> TaskSpec:
    """Make ``spec`` available by its name (replacing a task of that name)."""
    if not isinstance(spec, TaskSpec):
        raise TypeError(f"register() takes a TaskSpec, found {type(spec).__name__}")
    _registered[spec.name] = spec
    return spec


def _plugins() -> dict[str, Any]:
    global _entry_points
    if _entry_points is None:
        from importlib.metadata import entry_points

        _entry_points = {ep.name: ep for ep in entry_points(group=ENTRY_POINT_GROUP)}
    return _entry_points


def names() -> list[str]:
    """Every task that can be trained: built-in, from entry points, registered at run time."""
    return list(dict.fromkeys([*BUILTIN, *_plugins(), *_registered]))


def get(name: str) -> TaskSpec:
    """The task called ``name``; a ``UserError`` naming the known ones otherwise."""
    if name in _registered:
        return _registered[name]
    if name in BUILTIN:
        spec = importlib.import_module(BUILTIN[name]).SPEC
    elif name in _plugins():
        loaded = _plugins()[name].load()
        spec = getattr(loaded, "SPEC", loaded)
    else:
        raise UserError(f"there is no task {name!r}; the tasks are {', '.join(names())}.")
    if not isinstance(spec, TaskSpec) or spec.name != name:
        raise TypeError(f"task {name!r} does not define a TaskSpec named {name!r}")
    _registered[name] = spec
    return spec


def task_of_run(run_dir: str | Path) -> str:
    """The task a run directory was trained for, from its checkpoint's config."""
    from rnnkit.train.checkpoint import read_config, resolve

    task = read_config(resolve(run_dir)).get("task")
    if not isinstance(task, str):
        raise UserError(f"{run_dir} does not say which task it was trained for; was it written "
                        "by rnnkit?")
    return task


def load(run_dir: str | Path, **options: Any) -> Predictor:
    """The predictor of any run directory, whichever task trained it."""
    return get(task_of_run(run_dir)).load(run_dir, **options)


def train(task: str, out: str | Path, *, config: str | Path | None = None,
          resume: bool = False, **settings: Any) -> Predictor:
    """Train task ``task`` into ``out`` with ``settings`` (any task or TrainConfig field) and
    return the trained predictor; its report is in ``.metrics``."""
    spec = get(task)
    train_cfg, cfg = spec.configs(settings, config, resume_from=out if resume else None)
    report = spec.fit(train_cfg, cfg, out, resume)
    predictor = spec.load(out)
    predictor.metrics = report
    return predictor


def saved_settings(cls: type, saved: Mapping[str, Any]) -> dict[str, Any]:
    """The fields of ``cls`` found in ``saved`` (a run's config section), for rebuilding."""
    known = {f.name for f in dataclasses.fields(cls)}
    return {k: v for k, v in saved.items() if k in known}
