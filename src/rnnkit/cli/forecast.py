"""``rnnkit train forecast``, ``rnnkit forecast``, ``rnnkit backtest`` and
``rnnkit example forecast``."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any

import typer

from rnnkit.cli import common
from rnnkit.cli.app import app, example_app, train_app
from rnnkit.errors import UserError

DataOpt = Annotated[Path, typer.Option("--data", help="CSV or Parquet file of the series.")]


@train_app.command("forecast")
def train_forecast(
    data: DataOpt,
    target: Annotated[str | None, typer.Option(
        "--target", help="Column(s) to forecast, comma-separated.")] = None,
    horizon: Annotated[int | None, typer.Option("--horizon", help="Steps to forecast.")] = None,
    lookback: Annotated[int | None, typer.Option(
        "--lookback", help="Past steps the model reads.")] = None,
    out: Annotated[Path, typer.Option("--out", help="Run directory to write.")] = Path(
        "runs/forecast"),
    time_col: Annotated[str | None, typer.Option(
        "--time-col", help="Time column (default: one named date, time, timestamp, ...).")] = None,
    id_col: Annotated[str | None, typer.Option(
        "--id-col", help="Long format: the column naming each series.")] = None,
    value_col: Annotated[str | None, typer.Option(
        "--value-col", help="Long format: the value column.")] = None,
    past: Annotated[str | None, typer.Option(
        "--past", help="Covariates known only up to now, comma-separated.")] = None,
    future: Annotated[str | None, typer.Option(
        "--future-cov", help="Covariates known ahead, comma-separated (needed to forecast).")
    ] = None,
    calendar: Annotated[str | None, typer.Option(
        "--calendar", help="auto, none, or features among minute,hour,weekday,day,month.")
    ] = None,
    freq: Annotated[str | None, typer.Option(
        "--freq", help="Pandas frequency such as H, D, MS (default: inferred).")] = None,
    fill: Annotated[str | None, typer.Option(
        "--fill", help="Gaps and missing values: error, ffill or interpolate.")] = None,
    scaler: Annotated[str | None, typer.Option(
        "--scaler", help="standard, robust or none (fitted on the training part).")] = None,
    val: Annotated[str | None, typer.Option(
        "--val", help="Validation part: a fraction, a row count or a start date.")] = None,
    test: Annotated[str | None, typer.Option(
        "--test", help="Test part: a fraction, a row count or a start date.")] = None,
    model: Annotated[str | None, typer.Option(
        "--model", help="segrnn, rnn (direct multi-horizon) or seq2seq.")] = None,
    arch: Annotated[str | None, typer.Option(
        "--arch", help="gru, lstm, rnn, mingru or minlstm.")] = None,
    layers: Annotated[int | None, typer.Option("--layers", help="Recurrent layers.")] = None,
    hidden: Annotated[int | None, typer.Option("--hidden", help="Hidden units.")] = None,
    dropout: Annotated[float | None, typer.Option("--dropout", help="Dropout rate.")] = None,
    channels: Annotated[str | None, typer.Option(
        "--channels", help="independent (one series at a time, shared weights) or joint.")
    ] = None,
    norm: Annotated[str | None, typer.Option(
        "--norm", help="Per-window normalisation: last, revin or none.")] = None,
    head: Annotated[str | None, typer.Option(
        "--head", help="point, quantile (pinball loss) or gaussian.")] = None,
    levels: Annotated[str | None, typer.Option(
        "--levels", help="Interval levels, comma-separated, e.g. 0.8,0.95.")] = None,
    config: common.ConfigOpt = None,
    epochs: common.EpochsOpt = None,
    max_steps: common.MaxStepsOpt = None,
    max_time: common.MaxTimeOpt = None,
    batch_size: common.BatchSizeOpt = None,
    lr: common.LrOpt = None,
    seed: common.SeedOpt = None,
    device: common.DeviceOpt = None,
    resume: common.ResumeOpt = False,
    quiet: common.QuietOpt = None,
) -> None:
    """Train a forecaster on a table of time series; prints the test errors beside the naive
    forecasts and saves test_backtest.png in the run directory.

    Example: rnnkit train forecast --data load.csv --target load --horizon 24 --lookback 168 --out runs/load
    """
    from rnnkit.data.series import read_table
    from rnnkit.tasks import forecast as F
    from rnnkit.train import TrainConfig, load_config_file, merge_config

    file_values = load_config_file(config) if config is not None else {}
    overrides = {
        **common.shared(epochs=epochs, max_steps=max_steps, max_time=max_time,
                        batch_size=batch_size, lr=lr, seed=seed, device=device, quiet=quiet),
        **common.shared(target=target, horizon=horizon, lookback=lookback, time_col=time_col,
                        id_col=id_col, value_col=value_col, past=past, future=future,
                        calendar=calendar, freq=freq, fill=fill, scaler=scaler, val=val,
                        test=test, model=model, arch=arch, layers=layers, hidden=hidden,
                        dropout=dropout, channels=channels, norm=norm, head=head, levels=levels),
    }
    train_cfg, task_cfg = merge_config([TrainConfig, F.ForecastConfig],
                                       {**F.TRAIN_DEFAULTS, **file_values}, overrides,
                                       source=f"config file {config}")
    frame = read_table(data)
    try:
        trained = F.fit(frame, task_cfg, train_cfg, out, resume=resume)
    except KeyboardInterrupt:
        raise typer.Exit(130) from None
    result = trained.test
    if result is not None:
        typer.echo(f"test: {result.summary()}")
        trained.plot_backtest(result, out / "test_backtest.png")
    else:
        typer.echo(f"trained: {out} (no test part to backtest)")


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
        _writable(output)
        result.to_csv(output, index=False)
        typer.echo(f"wrote {len(result)} steps to {output}")
    if plot is not None:
        _writable(plot)
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
        _writable(output)
        result.metrics.to_csv(output, index_label="forecaster")
    if plot is not None:
        _writable(plot)
        trained.plot_backtest(result, plot)


def _writable(path: Path) -> None:
    if path.is_dir():
        raise UserError(f"{path} is a directory, expected a file name to write.")
    path.parent.mkdir(parents=True, exist_ok=True)


# -- examples on real data that ships with the dependencies ---------------------------------------

@dataclass(frozen=True)
class Example:
    """A forecast of real data, small enough to train in well under a minute on 2 CPU cores."""

    title: str  # what is forecast and how far ahead, for the results line
    loader: str  # a function of rnnkit.data.examples
    unit: str  # of the errors
    settings: dict[str, Any]  # ForecastConfig fields
    epochs: int
    max_time: float  # seconds of training


EXAMPLES = {
    "seattle": Example(
        "Seattle temp_max, 14 days ahead", "seattle_weather", "C",
        {"target": "temp_max", "past": "temp_min,precipitation,wind", "lookback": 56,
         "horizon": 14, "hidden": 64, "head": "quantile", "levels": "0.8"},
        epochs=40, max_time=40),
    # GOOG is left out: it was listed in August 2004, and filling its first 55 months would
    # invent prices.
    "stocks": Example(
        "AAPL, AMZN, IBM and MSFT monthly prices, 12 months ahead", "stocks", "USD",
        {"id_col": "symbol", "time_col": "date", "value_col": "price",
         "target": "AAPL,AMZN,IBM,MSFT", "lookback": 24, "horizon": 12, "hidden": 32,
         "head": "quantile", "levels": "0.8"},
        epochs=200, max_time=20),
    # The 59 weeks without measurements (18 in a row early in 1964) are interpolated linearly.
    "co2": Example(
        "Mauna Loa CO2, 52 weeks ahead", "co2", "ppm",
        {"target": "co2", "fill": "interpolate", "lookback": 104, "horizon": 52, "season": 52,
         "hidden": 64, "head": "quantile", "levels": "0.8"},
        epochs=40, max_time=40),
}


@example_app.command("forecast")
def example_forecast(
    name: Annotated[str, typer.Argument(help=f"Which example: {', '.join(EXAMPLES)}.")],
    out: Annotated[Path, typer.Option("--out", help="Run directory to write.")] = Path(
        "runs/example"),
    max_time: common.MaxTimeOpt = None,
    quiet: Annotated[bool, typer.Option("--quiet", help="No progress bar or epoch lines.")
                     ] = False,
) -> None:
    """Train a forecaster on real data that ships with rnnkit's dependencies (offline): Seattle's
    daily weather, monthly stock prices or the weekly Mauna Loa CO2 record. Prints the test
    errors beside the naive forecasts and saves test_backtest.png in the run directory.

    Example: rnnkit example forecast co2 --out runs/co2
    """
    run_example(name, out, out / "test_backtest.png", quiet, max_time)


def run_example(name: str, run_dir: Path, picture: Path, quiet: bool,
                max_time: float | str | None = None) -> None:
    """Train example ``name`` into ``run_dir``, print one line of test errors beside the naive
    forecasts and save the backtest plot as ``picture``."""
    if name not in EXAMPLES:
        raise UserError(f"there is no forecasting example {name!r}; choose one of "
                        f"{', '.join(EXAMPLES)}.")
    from rnnkit.data import examples
    from rnnkit.tasks import forecast as F
    from rnnkit.threads import one_thread

    example = EXAMPLES[name]
    frame = getattr(examples, example.loader)()
    train_cfg = F.train_config(epochs=example.epochs, quiet=quiet, seed=0,
                               max_time=example.max_time if max_time is None else max_time)
    try:
        with one_thread():  # small matrices: one thread is as fast and does not fight others
            trained = F.fit(frame, F.ForecastConfig(**example.settings), train_cfg, run_dir)
    except KeyboardInterrupt:
        raise typer.Exit(130) from None
    result = trained.test
    m = result.metrics
    typer.echo(f"{example.title}, test {len(result.times)} windows: MAE "
               f"{m.loc['model', 'mae']:.2f} {example.unit} (last value "
               f"{m.loc['last_value', 'mae']:.2f}, seasonal naive "
               f"{m.loc['seasonal_naive', 'mae']:.2f}); 80% interval coverage "
               f"{m.loc['model', 'coverage_80']:.0%}")
    typer.echo(f"picture: {trained.plot_backtest(result, picture)}")


def demo_step(out: Path, quiet: bool) -> None:
    """The Seattle example in ``out/forecast``, its picture as ``out/forecast.png``: at most 40 s
    of training (early stopping usually ends it within seconds)."""
    run = out / "forecast"
    if run.exists():  # a demo rerun starts over rather than stopping at the old run
        import shutil

        shutil.rmtree(run)
    run_example("seattle", run, out / "forecast.png", quiet)
