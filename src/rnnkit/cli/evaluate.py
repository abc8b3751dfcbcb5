"""``rnnkit evaluate RUN_DIR --data FILE``: any task's run, through the registry."""

from __future__ import annotations

import inspect
from numbers import Number
from pathlib import Path
from typing import Annotated

import typer

from rnnkit.cli.app import app
from rnnkit.errors import UserError


@app.command()
def evaluate(
    run_dir: Annotated[Path, typer.Argument(help="Run directory of a training.")],
    data: Annotated[list[Path], typer.Option(
        "--data", help="Data to evaluate on, in the format the task trained on; repeatable "
                       "(translation: the source file, then the target file).")],
    errors: Annotated[str | None, typer.Option(
        "--errors", help="Text bytes that are not UTF-8: strict (an error naming the file and "
                         "offset) or replace (U+FFFD).")] = None,
    precision: Annotated[str, typer.Option(
        "--precision", metavar="auto|fp32|bf16",
        help="auto: bf16 on a CPU with bf16 matrix instructions where a short probe finds it "
             "faster and its outputs alike; fp32 otherwise.")] = "auto",
) -> None:
    """Evaluate a trained model on other data and print its metrics.

    Example: rnnkit evaluate runs/lm --data held_out.txt
    """
    from rnnkit.tasks import registry
    from rnnkit.tasks.precision import check

    spec = registry.get(registry.task_of_run(run_dir))
    chosen = {} if precision == "auto" else {"precision": check(precision)}
    if chosen and "precision" not in inspect.signature(spec.load).parameters:
        raise UserError(f"--precision: a {spec.name} run does not take it.")
    predictor = spec.load(run_dir, **chosen)
    used = getattr(predictor, "precision", None)
    if used is not None and used.used == "bf16":  # the numbers are bf16's: say so, on stderr
        typer.echo(used.line(), err=True)
    files = [str(p) for p in data]
    options = {} if errors is None else {"errors": errors}
    if errors is not None and "errors" not in inspect.signature(predictor.evaluate).parameters:
        raise UserError(f"--errors applies to text files; a {predictor.task} run does not take it.")
    metrics = predictor.evaluate(files[0] if len(files) == 1 else files, **options)
    for name, value in metrics.items():
        if isinstance(value, int) and not isinstance(value, bool):  # a count
            typer.echo(f"{name} {value}")
        elif isinstance(value, Number) and not isinstance(value, bool):
            typer.echo(f"{name} {value:.4f}")
