"""``rnnkit demo``: a short tour of what rnnkit does, on data every machine has offline.

Each application adds one step: a function of its task package that takes the output directory
and a quiet flag, saves a picture and returns its lines of results.
"""

from pathlib import Path

import typer

from rnnkit.cli.app import app


def _gradients_step(out: Path, quiet: bool) -> list[str]:
    from rnnkit.tasks import diagnostics

    return diagnostics.demo(out, quiet)


def _textgen_step(out: Path, quiet: bool) -> list[str]:
    from rnnkit.tasks import textgen

    return textgen.demo(out, quiet)


def _forecast_step(out: Path, quiet: bool) -> list[str]:
    from rnnkit.tasks import forecast

    return forecast.demo(out, quiet)


# (title, step) in the order the tour runs them; a step returns its lines of results.
STEPS = [
    ("vanishing gradients: RNN vs LSTM vs GRU vs MinGRU", _gradients_step),
    ("text generation: a character LSTM trained on Python's own source", _textgen_step),
    ("forecasting: Seattle's daily maximum temperature, two weeks ahead", _forecast_step),
]


@app.command()
def demo(
    out: Path = typer.Option(Path("demo_out"), help="Directory for the pictures and runs."),
    quiet: bool = typer.Option(False, "--quiet", help="No progress bars."),
) -> None:
    """Run the tour: each application trains briefly on offline data and saves a picture.

    Example: rnnkit demo --out demo_out
    """
    out.mkdir(parents=True, exist_ok=True)
    for i, (title, step) in enumerate(STEPS, 1):
        typer.echo(f"[{i}/{len(STEPS)}] {title}")
        for line in step(out, quiet):
            typer.echo(line)
    typer.echo(f"done: results and pictures in {out}/")
