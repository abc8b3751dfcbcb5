"""``rnnkit demo``: a short tour of what rnnkit does, on data every machine has offline.

Each application adds one step: a function that takes the output directory and a quiet flag,
prints one line of results and saves a picture.
"""

from pathlib import Path

import typer

from rnnkit.cli.app import app


def _gradients_step(out: Path, quiet: bool) -> None:
    from rnnkit.cli.diagnose import demo_step

    demo_step(out / "diagnose", quiet)


def _textgen_step(out: Path, quiet: bool) -> None:
    from rnnkit.cli.textgen import demo_step

    demo_step(out, quiet)


def _forecast_step(out: Path, quiet: bool) -> None:
    from rnnkit.cli.forecast import demo_step

    demo_step(out, quiet)


# (title, step) in the order the tour runs them.
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
        step(out, quiet)
    typer.echo(f"done: results and pictures in {out}/")
