"""``rnnkit demo``: a short tour of what rnnkit does, on data every machine has offline.

Each application adds one step: a function of its task package that takes the output directory
and a quiet flag, trains on data that ships inside a dependency (or that it makes), saves a
picture and returns its lines of results. The tour takes about 4 minutes on 2 idle cores.
"""

import time
from pathlib import Path

import typer

from rnnkit.cli.app import app


def _gradients_step(out: Path, quiet: bool) -> list[str]:
    from rnnkit.tasks import diagnostics

    return diagnostics.demo(out, quiet)


def _textgen_step(out: Path, quiet: bool) -> list[str]:
    from rnnkit.tasks import textgen

    return textgen.demo(out, quiet)


def _sentiment_step(out: Path, quiet: bool) -> list[str]:
    from rnnkit.tasks.sentiment import examples

    return examples.demo(out, quiet)


def _translate_step(out: Path, quiet: bool) -> list[str]:
    from rnnkit.tasks.translate import examples

    return examples.demo(out, quiet)


def _speech_step(out: Path, quiet: bool) -> list[str]:
    from rnnkit.tasks.speech import examples

    return examples.demo(out, quiet)


def _forecast_step(out: Path, quiet: bool) -> list[str]:
    from rnnkit.tasks import forecast

    return forecast.demo(out, quiet)


# (title, step) in the order the tour runs them; a step returns its lines of results.
STEPS = [
    ("vanishing gradients: RNN vs LSTM vs GRU vs MinGRU", _gradients_step),
    ("text generation: a character LSTM trained on Python's own source", _textgen_step),
    ("sentiment: is a word positive or negative? The VADER lexicon's human ratings (shipped in "
     "vaderSentiment), judged from spelling", _sentiment_step),
    ("translation: English names of countries, currencies and languages into German (the "
     "iso-codes catalogues shipped in pycountry)", _translate_step),
    ("speech recognition: spoken digit strings synthesised by eSpeak NG (shipped in "
     "espeakng-loader), tested on voices never heard", _speech_step),
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
    start = time.monotonic()
    for i, (title, step) in enumerate(STEPS, 1):
        typer.echo(f"[{i}/{len(STEPS)}] {title}")
        for line in step(out, quiet):
            typer.echo(line)
    minutes, seconds = divmod(round(time.monotonic() - start), 60)
    typer.echo(f"done in {minutes} min {seconds} s: results and pictures in {out}/")
