"""Time-series forecasting: ``train`` / ``predict`` / ``backtest`` / ``plot`` on pandas frames.

From Python::

    from rnnkit.tasks import forecast
    model = forecast.train("load.csv", "runs/load", target="load", horizon=24, lookback=168)
    print(model.test.summary())                  # the test part, beside the naive forecasts
    future = model.predict(frame)                # the 24 hours after the frame's last row
    model = forecast.load("runs/load")           # later, in another process

``train`` takes a data frame or a CSV / Parquet file, and any ForecastConfig or TrainConfig
setting. A wide frame has a time column and one column per variable; long frames (``id_col``,
``value_col``) are pivoted first. The series is split by time into train / validation / test,
every variable scaled with statistics of the training part only, and cut into windows of
``lookback`` inputs and ``horizon`` targets that never cross a split. Backtests report the model
beside two naive forecasts on the same windows: the last value repeated and the seasonal naive
one (the value one season earlier).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pandas as pd

from rnnkit.data.series_inputs import Arrays, known_covariates, to_wide
from rnnkit.data.series_inputs import SeriesSpec as Spec
from rnnkit.data.windows import gather
from rnnkit.tasks.forecast.backtest import Backtest, summary_line
from rnnkit.tasks.forecast.config import (
    TASK,
    TRAIN_DEFAULTS,
    ForecastConfig,
    names,
    train_config,
)
from rnnkit.tasks.forecast.examples import EXAMPLES, demo, run_example
from rnnkit.tasks.forecast.predictor import EVAL_CHUNK, TrainedForecaster, load
from rnnkit.tasks.forecast.smoke import smoke
from rnnkit.tasks.forecast.task import ForecastTask, build_task, fit, fit_forecaster
from rnnkit.tasks.registry import TaskSpec

__all__ = [
    "EVAL_CHUNK", "EXAMPLES", "SPEC", "TASK", "TRAIN_DEFAULTS", "Arrays", "Backtest",
    "ForecastConfig", "ForecastTask", "Spec", "TrainedForecaster", "build_task", "demo", "fit",
    "fit_forecaster", "gather", "known_covariates", "load", "names", "run_example", "summary",
    "to_wide", "train", "train_config",
]


def summary(report: dict[str, Any], out: Path) -> list[str]:
    """What ``rnnkit train forecast`` prints: the test errors beside the naive forecasts'."""
    if report.get("test") is None:
        return [f"trained: {out} (no test part to backtest)"]
    return [f"test: {summary_line(report['test'])}"]


def train(data: pd.DataFrame | str | Path, out: str | Path, *,
          config: str | Path | None = None, resume: bool = False, **settings: Any
          ) -> TrainedForecaster:
    """Train a forecaster on ``data`` (a frame, or a CSV / Parquet file) into run directory
    ``out``; ``settings`` are any ForecastConfig or TrainConfig fields (``target="load",
    horizon=24, max_time="2m"``), ``config`` a YAML or TOML file of them. Returns the best
    checkpoint with the test backtest in ``.test`` (None without a test part) and the report in
    ``.metrics``."""
    frame = data if isinstance(data, pd.DataFrame) else None
    if frame is None:
        settings["data"] = str(data)
    train_cfg, cfg = SPEC.configs(settings, config, resume_from=out if resume else None)
    return fit_forecaster(train_cfg, cfg, out, resume, frame)


SPEC = TaskSpec(
    name=TASK,
    config=ForecastConfig,
    fit=fit,
    load=load,
    help="Train a forecaster on a table of time series; prints the test errors beside the "
         "naive forecasts and saves test_backtest.png in the run directory.",
    example="rnnkit train forecast --data load.csv --target load --horizon 24 --lookback 168 "
            "--out runs/load",
    train_defaults=TRAIN_DEFAULTS,
    summary=summary,
    smoke=smoke,
)
