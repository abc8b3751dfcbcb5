"""Forecasts of real data that ships with rnnkit's dependencies (``rnnkit example forecast``,
the forecasting step of ``rnnkit demo``): each trains in well under a minute on 2 CPU cores."""

from __future__ import annotations

import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from rnnkit.errors import UserError
from rnnkit.tasks.forecast.config import ForecastConfig, train_config
from rnnkit.tasks.forecast.task import BACKTEST_PICTURE, fit_forecaster


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


def run_example(name: str, run_dir: Path, quiet: bool, max_time: float | str | None = None,
                picture: Path | None = None) -> list[str]:
    """Train example ``name`` into ``run_dir``; the lines of results: the test errors beside the
    naive forecasts, and the backtest picture (``picture``, default the run's
    test_backtest.png)."""
    if name not in EXAMPLES:
        raise UserError(f"there is no forecasting example {name!r}; choose one of "
                        f"{', '.join(EXAMPLES)}.")
    from rnnkit.data import examples
    from rnnkit.threads import one_thread

    example = EXAMPLES[name]
    frame = getattr(examples, example.loader)()
    train_cfg = train_config(epochs=example.epochs, quiet=quiet, seed=0,
                             max_time=example.max_time if max_time is None else max_time)
    with one_thread():  # small matrices: one thread is as fast and does not fight others
        trained = fit_forecaster(train_cfg, ForecastConfig(**example.settings), run_dir,
                                 frame=frame)
    result = trained.test
    m = result.metrics
    if picture is None:
        picture = run_dir / BACKTEST_PICTURE
    else:
        trained.plot_backtest(result, picture)
    return [f"{example.title}, test {len(result.times)} windows: MAE "
            f"{m.loc['model', 'mae']:.2f} {example.unit} (last value "
            f"{m.loc['last_value', 'mae']:.2f}, seasonal naive "
            f"{m.loc['seasonal_naive', 'mae']:.2f}); 80% interval coverage "
            f"{m.loc['model', 'coverage_80']:.0%}",
            f"picture: {picture}"]


def demo(out: Path, quiet: bool) -> list[str]:
    """The Seattle example in ``out/forecast``, its picture as ``out/forecast.png``: at most 40 s
    of training (early stopping usually ends it within seconds)."""
    run = out / "forecast"
    if run.exists():  # a demo rerun starts over rather than stopping at the old run
        shutil.rmtree(run)
    return run_example("seattle", run, quiet, picture=out / "forecast.png")
