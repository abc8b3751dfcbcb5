"""Settings declared once: a dataclass field with its type, default, help text and flag.

Every configurable value of rnnkit (the trainer's ``TrainConfig``, each task's config) is a
field made with ``setting``; the command line (``rnnkit train <task> --help``), config files and
``--resume`` are all derived from those fields, so a setting is never written twice::

    @dataclass
    class MyTaskConfig:
        data: str = setting("", "Training file.", metavar="PATH")
        hidden: int = setting(128, "Hidden units per layer.")
        tie_weights: bool = setting(False, "Share the embedding and output matrices.")
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from typing import Any

__all__ = ["derive", "model_default", "setting", "setting_flag", "setting_help", "setting_metavar"]


def setting(default: Any = dataclasses.MISSING, help: str = "", *,
            default_factory: Callable[[], Any] | None = None, flag: str | None = None,
            metavar: str | None = None) -> Any:
    """A dataclass field that is also a command-line option.

    ``help`` is the one sentence shown by ``--help``; ``flag`` replaces the option name derived
    from the field's (``--field-name``; ``--name/--no-name`` for booleans), e.g.
    ``"--future-cov"`` or ``"--bidirectional/--unidirectional"``.
    """
    if not help:
        raise ValueError("every setting needs a help text")
    metadata = {"help": help, "flag": flag, "metavar": metavar}
    if default_factory is not None:
        return dataclasses.field(default_factory=default_factory, metadata=metadata)
    return dataclasses.field(default=default, metadata=metadata)


def setting_help(f: dataclasses.Field) -> str:
    return f.metadata.get("help", "")


def setting_metavar(f: dataclasses.Field) -> str | None:
    return f.metadata.get("metavar")


def setting_flag(f: dataclasses.Field, is_bool: bool) -> str:
    """The option declaration of field ``f``: its ``flag`` or one derived from its name."""
    flag = f.metadata.get("flag")
    if flag:
        return flag
    name = f.name.replace("_", "-")
    return f"--{name}/--no-{name}" if is_bool else f"--{name}"


def default_of(f: dataclasses.Field) -> Any:
    """The field's default value (calling its factory)."""
    if f.default is not dataclasses.MISSING:
        return f.default
    if f.default_factory is not dataclasses.MISSING:  # type: ignore[misc]
        return f.default_factory()  # type: ignore[misc]
    return None


def model_default(cls: type, name: str) -> Any:
    """The default of field ``name`` of the dataclass ``cls``: a task config that exposes a model
    setting refers to the model config's default instead of writing a second one."""
    for f in dataclasses.fields(cls):
        if f.name == name:
            return default_of(f)
    raise AttributeError(f"{cls.__name__} has no field {name!r}")


def derive(cls: type, source: Any, **fixed: Any) -> Any:
    """An instance of the dataclass ``cls`` from the fields of ``source`` that ``cls`` also has
    (matched by name, so no list of keys is written by hand), with ``fixed`` (what the data
    decides: vocabulary sizes, widths ...) taking precedence."""
    shared = {f.name for f in dataclasses.fields(cls)} & {f.name for f in dataclasses.fields(source)}
    return cls(**{name: getattr(source, name) for name in shared - set(fixed)}, **fixed)
