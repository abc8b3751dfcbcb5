"""A trained forecaster: ``predict``, ``backtest``, ``evaluate``, ``plot`` on pandas frames."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import torch

from rnnkit.data import series as S
from rnnkit.data.series_inputs import Arrays, SeriesSpec, future_covariates
from rnnkit.data.windows import split_points, window_starts
from rnnkit.errors import UserError
from rnnkit.metrics import forecast as M
from rnnkit.models.forecasters import ForecasterConfig, build_forecaster
from rnnkit.tasks import precision as P
from rnnkit.tasks.forecast.backtest import Backtest
from rnnkit.tasks.forecast.config import TASK
from rnnkit.tasks.runs import load_run

EVAL_CHUNK = 1024  # windows per forward pass when evaluating and backtesting


def as_frame(data: pd.DataFrame | str | Path) -> pd.DataFrame:
    """A data frame as given, or read from a CSV or Parquet file."""
    return data if isinstance(data, pd.DataFrame) else S.read_table(data)


class TrainedForecaster:
    """A trained model with its data spec: ``predict``, ``backtest``, ``evaluate``, ``plot``."""

    task = TASK

    def __init__(self, model, spec: SeriesSpec, config: dict[str, Any]):
        self.model = model.eval()
        self.spec = spec
        self.config = config
        self.metrics: dict[str, Any] = {}
        self.test: Backtest | None = None  # the test-part backtest of a training
        self.precision = P.FLOAT32

    def probe(self, bf16: bool) -> torch.Tensor:
        """Forecasts (scaled units) of one backtest chunk of made-up windows
        (``rnnkit.tasks.precision``)."""
        # a chunk, where inference spends its time: on a Zen 4 bf16 ran 1.05x as fast as
        # float32 for 64 windows and 1.96x for 1,024 (BENCHMARKS.md, bf16)
        cfg, n = self.model.cfg, EVAL_CHUNK
        y = P.made_up_values(n, cfg.lookback, cfg.n_targets)
        past = P.made_up_values(n, cfg.lookback, cfg.n_past)
        known = P.made_up_values(n, cfg.horizon, cfg.n_known)
        device = next(self.model.parameters()).device
        with P.autocast_of(self.model, bf16):
            return self.model(y.to(device), past.to(device), known.to(device)).float()

    @property
    def module(self) -> torch.nn.Module:
        return self.model

    @P.in_precision
    def _run(self, y: np.ndarray, past: np.ndarray, known: np.ndarray, starts: np.ndarray
             ) -> np.ndarray:
        """Model outputs (windows, H, C, K) in scaled units."""
        device = next(self.model.parameters()).device
        t = [torch.from_numpy(np.ascontiguousarray(a, dtype=np.float32)) for a in (y, past, known)]
        outs = []
        with torch.no_grad():
            for i in range(0, len(starts), EVAL_CHUNK):
                s = torch.from_numpy(starts[i:i + EVAL_CHUNK])
                back = s[:, None] + torch.arange(-self.spec.lookback, 0)
                ahead = s[:, None] + torch.arange(self.spec.horizon)  # targets may lie beyond y
                batch = (t[0][back], t[1][back], t[2][ahead])
                outs.append(self.model(*(b.to(device) for b in batch)).float().cpu())
        return torch.cat(outs).numpy() if outs else np.zeros((0, self.spec.horizon,
                                                              len(self.spec.targets), 1))

    def _point_and_bounds(self, out: np.ndarray, scaled: bool = False
                          ) -> tuple[np.ndarray, dict[float, tuple[np.ndarray, np.ndarray]]]:
        scaler = self.spec.scaler("target")
        undo = (lambda a: a) if scaled else scaler.inverse
        t = torch.from_numpy(out)
        point = undo(self.model.point(t).numpy().astype(np.float64))
        bounds = {}
        if self.model.cfg.head != "point":
            for level in self.model.cfg.levels:
                lo, hi = self.model.interval(t, level)
                bounds[level] = (undo(lo.numpy().astype(np.float64)),
                                 undo(hi.numpy().astype(np.float64)))
        return point, bounds

    def predict(self, df: pd.DataFrame | str | Path,
                future: pd.DataFrame | str | Path | None = None) -> pd.DataFrame:
        """The ``horizon`` steps after the last row of ``df``: one row per future time stamp,
        a column per target and, with an interval head, ``COL_lo80`` / ``COL_hi80`` columns.
        ``future`` holds the known future covariates for those steps (time column + columns).
        Either may be a frame or a CSV / Parquet file."""
        spec = self.spec
        series = self.spec.series_of(as_frame(df))
        if len(series.frame) < spec.lookback:
            raise UserError(f"the data has {len(series.frame)} rows, fewer than the lookback "
                            f"{spec.lookback} the model reads.")
        arrays = Arrays(series, spec)
        index = S.future_index(series.index, spec.freq, spec.horizon)
        ahead = future_covariates(index, None if future is None else as_frame(future), spec)
        known = np.concatenate([arrays.known, ahead])
        out = self._run(arrays.y, arrays.past, known, np.array([len(arrays)]))
        point, bounds = self._point_and_bounds(out)
        frame = pd.DataFrame(index=index)
        for j, col in enumerate(spec.targets):
            frame[col] = point[0, :, j]
            for level, (lo, hi) in bounds.items():
                tag = f"{round(level * 100):d}"
                frame[f"{col}_lo{tag}"] = lo[0, :, j]
                frame[f"{col}_hi{tag}"] = hi[0, :, j]
        frame.index.name = spec.time_col or "step"
        return frame.reset_index()

    def backtest(self, df: pd.DataFrame | str | Path, start: float | str | None = None,
                 stride: int = 1, scaled: bool = False) -> Backtest:
        """Rolling-origin evaluation: every window (every ``stride``-th) whose targets lie in the
        test part of ``df`` (``start``: a fraction of the rows at the end, a row count or a
        date; default the split the model was trained with). ``scaled`` reports errors in the
        scaled units (z-scores for the standard scaler), as the long-horizon benchmarks do."""
        spec = self.spec
        series = self.spec.series_of(as_frame(df))
        arrays = Arrays(series, spec)
        n = len(arrays)
        if start is None:
            test = self.config.get("forecast", {}).get("test", 0.2)
            val = self.config.get("forecast", {}).get("val", 0.1)
            begin = split_points(series.index, val, test)[1]
        else:
            begin = split_points(series.index, 0, start)[1]
        starts = window_starts(begin, n, spec.lookback, spec.horizon, stride)
        if not len(starts):
            raise UserError(f"the data has no complete window of lookback {spec.lookback} and "
                            f"horizon {spec.horizon} in its last {n - begin} rows.")
        out = self._run(arrays.y, arrays.past, arrays.known, starts)
        point, bounds = self._point_and_bounds(out, scaled)
        values = arrays.y.astype(np.float64) if scaled else arrays.raw
        ahead = starts[:, None] + np.arange(spec.horizon)
        actual = values[ahead]
        last = np.repeat(values[starts - 1][:, None], spec.horizon, axis=1)
        m = spec.season
        back = m * np.ceil((np.arange(spec.horizon) + 1) / m).astype(np.int64)
        seasonal = values[np.maximum(ahead - back, 0)]
        mase_scale = np.asarray(spec.mase_scale)
        if scaled:
            mase_scale = mase_scale / spec.scaler("target").scale
        rows = {"model": M.point_metrics(actual, point, mase_scale),
                "last_value": M.point_metrics(actual, last, mase_scale),
                "seasonal_naive": M.point_metrics(actual, seasonal, mase_scale)}
        for level, (lo, hi) in bounds.items():
            rows["model"][f"coverage_{round(level * 100):d}"] = M.coverage(actual, lo, hi)
        metrics = pd.DataFrame.from_dict(rows, orient="index")
        history = pd.DataFrame(arrays.raw, index=series.index, columns=spec.targets)
        return Backtest(metrics, series.index[starts], actual, point,
                        {"last_value": last, "seasonal_naive": seasonal}, bounds, history)

    def evaluate(self, data: pd.DataFrame | str | Path) -> dict[str, float]:
        """The test-part backtest of ``data`` (a frame or a file): the model's errors beside the
        naive forecasts' (``last_value_mse`` ...)."""
        return self.backtest(data).flat()

    def plot(self, df: pd.DataFrame | str | Path, forecast: pd.DataFrame, path: str | Path
             ) -> Path:
        """History (the last few horizons), forecast and intervals, one panel per target."""
        from rnnkit.tasks.forecast.plots import plot_forecast

        history = self.spec.series_of(as_frame(df)).frame[self.spec.targets]
        return plot_forecast(history, forecast, self.spec.targets, self.spec.horizon,
                             self.spec.time_col or "step", path)

    def plot_backtest(self, result: Backtest, path: str | Path) -> Path:
        """The test period with the model's and the last value's forecasts, window after window."""
        from rnnkit.tasks.forecast.plots import plot_backtest

        return plot_backtest(result, self.spec.targets, self.spec.horizon, path)


def _read(config: dict[str, Any]) -> tuple[ForecasterConfig, SeriesSpec]:
    return ForecasterConfig(**config["model"]), SeriesSpec(**config["data"])


def load(run_dir: str | Path, device: str = "cpu", which: str = "best",
         precision: str = "auto") -> TrainedForecaster:
    """The forecaster of a run directory (its best checkpoint, else the last), inferring in
    ``precision`` (auto: ``rnnkit.tasks.precision``)."""
    model, spec, config = load_run(run_dir, TASK, which, _read, build_forecaster, "forecast")
    trained = TrainedForecaster(model.to(device), spec, config)
    trained.precision = P.choose(precision, device, trained.model, trained.probe)
    return trained
