"""``rnnkit forecast``, ``rnnkit backtest`` and ``rnnkit example forecast`` (``rnnkit train
forecast`` is generated from the task's settings)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from rnnkit.cli.app import app, example_app
from rnnkit.cli.files import writable

DataOpt = Annotated[Path, typer.Option("--data", help="CSV or Parquet file of the series.")]


@app.command("forecast")
def forecast(
    run_dir: Annotated[Path, typer.Argument(help="Run directory of a forecast training.")],
    data: DataOpt,
    future: Annotated[Path | None, typer.Option(
        "--future", help="File of the known future covariates for the horizon.")] = None,
    output: Annotated[Path | None, typer.Option(
        "--output", help="CSV to write (default: print the forecast).")] = None,
    plot: Annotated[Path | None, typer.Option("--plot", help="PNG of history and forecast.")
                    ] = None,
) -> None:
    """Forecast the horizon after the last row of the data: one row per future time stamp,
    with interval columns when the model has an interval head.

    Example: rnnkit forecast runs/load --data load.csv --output forecast.csv --plot forecast.png
    """
    from rnnkit.data.series import read_table
    from rnnkit.tasks import forecast as F

    trained = F.load(run_dir)
    frame = read_table(data)
    result = trained.predict(frame, read_table(future) if future is not None else None)
    if output is None:
        typer.echo(result.to_csv(index=False), nl=False)
    else:
        writable(output)
        result.to_csv(output, index=False)
        typer.echo(f"wrote {len(result)} steps to {output}")
    if plot is not None:
        writable(plot)
        trained.plot(frame, result, plot)


@app.command("backtest")
def backtest(
    run_dir: Annotated[Path, typer.Argument(help="Run directory of a forecast training.")],
    data: DataOpt,
    start: Annotated[str | None, typer.Option(
        "--start", help="Evaluated period: the last fraction or rows of the data, or a start "
                        "date (default: the test split of the training).")] = None,
    stride: Annotated[int, typer.Option("--stride", help="Steps between forecast origins.")] = 1,
    scaled: Annotated[bool, typer.Option(
        "--scaled", help="Errors in scaled units (z-scores), as the benchmarks report.")] = False,
    output: Annotated[Path | None, typer.Option("--output", help="CSV of the metrics.")] = None,
    plot: Annotated[Path | None, typer.Option("--plot", help="PNG of the backtest.")] = None,
) -> None:
    """Rolling-origin evaluation over a period: MAE, RMSE, MSE, MASE, sMAPE and interval
    coverage of the model beside the last value and seasonal naive forecasts.

    Example: rnnkit backtest runs/load --data load.csv --start 2018-01-01 --plot backtest.png
    """
    from rnnkit.data.series import read_table
    from rnnkit.tasks import forecast as F

    trained = F.load(run_dir)
    frame = read_table(data)
    result = trained.backtest(frame, start=start, stride=stride, scaled=scaled)
    typer.echo(f"{len(result.times)} windows from {result.times[0]} to {result.times[-1]}")
    typer.echo(result.metrics.to_string(float_format=lambda v: f"{v:.4g}"))
    if output is not None:
        writable(output)
        result.metrics.to_csv(output, index_label="forecaster")
    if plot is not None:
        writable(plot)
        trained.plot_backtest(result, plot)


@example_app.command("forecast")
def example_forecast(
    name: Annotated[str, typer.Argument(help="Which example: seattle, stocks or co2.")],
    out: Annotated[Path, typer.Option("--out", help="Run directory to write.")] = Path(
        "runs/example"),
    max_time: Annotated[str | None, typer.Option(
        "--max-time", help="Stop training after this long: seconds or 90s, 3m, 1h "
                           "(default: the example's own budget).")] = None,
    quiet: Annotated[bool, typer.Option("--quiet", help="No progress bar or epoch lines.")
                     ] = False,
) -> None:
    """Train a forecaster on real data that ships with rnnkit's dependencies (offline): Seattle's
    daily weather, monthly stock prices or the weekly Mauna Loa CO2 record. Prints the test
    errors beside the naive forecasts and saves test_backtest.png in the run directory.

    Example: rnnkit example forecast co2 --out runs/co2
    """
    from rnnkit.tasks.forecast.examples import run_example

    try:
        lines = run_example(name, out, quiet, max_time)
    except KeyboardInterrupt:
        raise typer.Exit(130) from None
    for line in lines:
        typer.echo(line)
