"""``rnnkit train <task>``: one command per registered task, generated from its settings.

Each option is a field of the task's config or of ``TrainConfig`` (``rnnkit.settings.setting``:
type, default, help and flag declared there once); nothing here names a task. Commands are built
when asked for, so ``rnnkit train textgen`` imports textgen alone. The options are typer
parameters built from the dataclass fields rather than a second parser (jsonargparse, tyro): the
one typer app keeps its exit codes, rich help and every flag spelling users already type.

``--nproc N`` trains on N processes of this machine through torchrun's launcher
(``rnnkit.train.distributed.launch``); ``torchrun ... -m rnnkit train <task>`` does the same on
any number of machines. A group that torchrun restarts after a failure resumes the run.
"""

from __future__ import annotations

import dataclasses
import inspect
import types
import typing
from pathlib import Path
from typing import Annotated, Any

import click
import typer
from typer.core import TyperGroup

from rnnkit.errors import UserError
from rnnkit.settings import default_of, setting_flag, setting_help, setting_metavar
from rnnkit.tasks import registry
from rnnkit.train import TrainConfig, distributed

RESERVED = ("out", "config", "resume", "nproc")
TASK_PANEL, TRAIN_PANEL = "Task settings", "Training settings"


class TaskCommands(TyperGroup):
    """The ``train`` group: a subcommand per task in the registry, built on first use."""

    def list_commands(self, ctx: click.Context) -> list[str]:
        return registry.names()

    def get_command(self, ctx: click.Context, name: str) -> click.Command | None:
        if name not in registry.names():
            return None
        return typer.main.get_command(_single(registry.get(name)))


def _single(spec: registry.TaskSpec) -> typer.Typer:
    app = typer.Typer(add_completion=False, pretty_exceptions_enable=False)
    app.command(spec.name)(train_command(spec))
    return app


def option_type(hint: Any) -> Any:
    """The type a command-line option of a field annotated ``hint`` takes (always optional:
    ``None`` means "not given", so a config file or the resumed run's value stands)."""
    args = [a for a in typing.get_args(hint) if a is not type(None)] \
        if typing.get_origin(hint) in (typing.Union, types.UnionType) else [hint]
    if any(typing.get_origin(a) is list for a in args):
        return list[str] | None
    if len(args) == 1 and args[0] in (bool, int, float, str):
        return args[0] | None
    return str | None  # e.g. float | str: the config coerces the text


def _off_switch(hint: Any) -> tuple[str, Any] | None:
    """``(metavar, parser)`` of an int or float field that may be None: the option then also
    takes ``none`` (passed on as the text, which the config reads as None), as in
    ``--range-db none``; None for other fields."""
    if typing.get_origin(hint) not in (typing.Union, types.UnionType):
        return None
    args = typing.get_args(hint)
    kinds = [a for a in args if a is not type(None)]
    if type(None) not in args or len(kinds) != 1 or kinds[0] not in (int, float):
        return None
    kind = kinds[0]

    def parse(text: str) -> Any:
        if text.strip().lower() in ("none", "null"):
            return "none"
        try:
            return kind(text)
        except ValueError:
            what = "a whole number" if kind is int else "a number"
            raise ValueError(f"{text!r} is neither {what} nor none") from None

    return f"{kind.__name__.upper()}|none", parse


def option_fields(spec: registry.TaskSpec) -> list[tuple[dataclasses.Field, Any, Any, str]]:
    """``(field, hint, default shown, panel)`` of every option of ``rnnkit train spec.name``:
    the task's settings, then the trainer's (with the task's own defaults)."""
    out, seen = [], set(RESERVED)
    for cls, panel in ((spec.config, TASK_PANEL), (TrainConfig, TRAIN_PANEL)):
        hints = typing.get_type_hints(cls)
        for f in dataclasses.fields(cls):
            if f.name in seen:  # a programming mistake: one key, two owners
                raise TypeError(f"task {spec.name!r}: setting {f.name!r} is declared twice or "
                                "clashes with --out/--config/--resume")
            seen.add(f.name)
            default = spec.train_defaults.get(f.name, default_of(f)) if cls is TrainConfig \
                else default_of(f)
            out.append((f, hints[f.name], default, panel))
    return out


def _shown(default: Any) -> str | bool:
    if default is None or default == [] or default == "":
        return False
    if isinstance(default, bool):
        return str(default).lower()
    return str(default)


def train_command(spec: registry.TaskSpec):
    """The typer command function of ``rnnkit train spec.name``."""
    params = [
        inspect.Parameter("out", inspect.Parameter.KEYWORD_ONLY, default=Path("runs") / spec.name,
                          annotation=Annotated[Path, typer.Option(
                              "--out", help="Run directory to write.")]),
        inspect.Parameter("config", inspect.Parameter.KEYWORD_ONLY, default=None,
                          annotation=Annotated[Path | None, typer.Option(
                              "--config", help="YAML or TOML file of settings; flags given on "
                              "the command line override it.")]),
        inspect.Parameter("resume", inspect.Parameter.KEYWORD_ONLY, default=False,
                          annotation=Annotated[bool, typer.Option(
                              "--resume", help="Continue the run in the output directory from "
                              "its last checkpoint, with its saved settings.")]),
        inspect.Parameter("nproc", inspect.Parameter.KEYWORD_ONLY, default=1,
                          annotation=Annotated[int, typer.Option(
                              "--nproc", min=1, help="Processes to train on, on this machine "
                              "(data parallel, through torchrun; for several machines run "
                              "torchrun -m rnnkit yourself). Each takes its share of every "
                              "batch: --batch-size stays the whole batch, so the result is the "
                              "same.")]),
    ]
    for f, hint, default, panel in option_fields(spec):
        kind = option_type(hint)
        flag = setting_flag(f, kind == bool | None)
        metavar, parser = _off_switch(hint) or (None, None)
        option = typer.Option(*flag.split(" "), help=setting_help(f), show_default=_shown(default),
                              metavar=setting_metavar(f) or metavar, parser=parser,
                              rich_help_panel=panel)
        params.append(inspect.Parameter(f.name, inspect.Parameter.KEYWORD_ONLY, default=None,
                                        annotation=Annotated[kind, option]))

    def command(**flags: Any) -> None:
        out, config, resume = flags.pop("out"), flags.pop("config"), flags.pop("resume")
        nproc = flags.pop("nproc")
        if out.exists() and not out.is_dir():
            raise UserError(f"--out {out} is a file; expected a directory for the run.")
        given = {k: list(v) if isinstance(v, tuple) else v for k, v in flags.items()
                 if v is not None and v != []}
        resume = resume or distributed.restarted()
        train_cfg, cfg = spec.configs(given, config, resume_from=out if resume else None)
        if nproc == 1:
            try:
                _fit(spec, train_cfg, cfg, out, resume)
            except KeyboardInterrupt:  # the trainer saved its checkpoint first
                raise typer.Exit(130) from None
            return
        if distributed.group_of_env().active:
            raise UserError("--nproc starts processes of its own; under torchrun leave it out.")
        import torch

        threads = max(1, torch.get_num_threads() // nproc)
        distributed.launch(nproc, _worker, spec.name, given, config, out, resume, threads)

    command.__signature__ = inspect.Signature(params)  # type: ignore[attr-defined]
    command.__annotations__ = {p.name: p.annotation for p in params}
    command.__doc__ = f"{spec.help}\n\nExample: {spec.example}"
    command.__name__ = f"train_{spec.name}"
    return command


def _fit(spec: registry.TaskSpec, train_cfg: TrainConfig, cfg: Any, out: Path,
         resume: bool) -> None:
    report = spec.fit(train_cfg, cfg, out, resume)
    for line in spec.summary(report, out) if spec.summary else [f"run saved in {out}/"]:
        typer.echo(line)


def _worker(name: str, given: dict[str, Any], config: Path | None, out: Path, resume: bool,
            threads: int) -> None:
    """One process of ``--nproc``: the same training as without it; a failure goes to the
    launcher, which reports it once."""
    import torch

    torch.set_num_threads(threads)
    try:
        spec = registry.get(name)
        train_cfg, cfg = spec.configs(given, config, resume_from=out if resume else None)
        _fit(spec, train_cfg, cfg, out, resume)
    except UserError as e:
        distributed.report_failure(e, 2)
    except KeyboardInterrupt:
        raise SystemExit(130) from None
    except Exception as e:
        distributed.report_failure(e, 1)
