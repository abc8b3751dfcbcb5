"""Time-series forecasting: ``fit`` / ``predict`` / ``backtest`` / ``plot`` on pandas frames.

``fit`` reads a wide frame (a time column and one column per variable; long frames are pivoted
first), splits it by time into train / validation / test, scales every variable with statistics
of the training part only, cuts windows of ``lookback`` inputs and ``horizon`` targets that never
cross a split, and trains a forecaster (rnnkit.models.forecasters) with rnnkit.train. Backtests
report the model beside two naive forecasts on the same windows: the last value repeated and the
seasonal naive one (the value one season earlier).
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import torch
from torch import Tensor

from rnnkit.data import series as S
from rnnkit.errors import UserError
from rnnkit.metrics import forecast as M
from rnnkit.models import forecasters as FC
from rnnkit.models.forecasters import ForecasterConfig, build_forecaster

TASK = "forecast"
# Training defaults for forecasting where they differ from TrainConfig's (a config file or a
# flag overrides them): larger batches of cheap windows, more epochs, early stopping.
TRAIN_DEFAULTS = {"batch_size": 128, "epochs": 30, "patience": 5, "lr": 3e-3}
EVAL_CHUNK = 1024  # windows per forward pass when evaluating and backtesting


@dataclass
class ForecastConfig:
    """What to forecast from which columns, how to split and scale, and the model."""

    target: str = ""  # comma-separated target columns (long format: default all series)
    time_col: str | None = None  # default: a column named date, time, timestamp, ...
    id_col: str | None = None  # long format: the series name column
    value_col: str | None = None  # long format: the value column
    past: str = ""  # covariates known only up to now, comma-separated
    future: str = ""  # covariates known ahead (needed again at forecast time)
    calendar: str = "auto"  # auto (by frequency), none, or e.g. "hour,weekday"
    freq: str | None = None  # pandas frequency; default inferred
    fill: str = "error"  # gaps and missing values: error, ffill, interpolate
    scaler: str = "standard"  # standard, robust, none
    lookback: int = 96
    horizon: int = 24
    stride: int = 1  # between training windows
    val: float | str = 0.1  # fraction, row count or start date
    test: float | str = 0.2
    season: int | None = None  # seasonal period in steps; default from the frequency
    model: str = "segrnn"
    arch: str = "gru"
    hidden: int = 128
    layers: int = 1
    dropout: float = 0.1
    channels: str = "independent"
    norm: str = "last"
    head: str = "point"
    loss: str = "mse"
    levels: str = "0.8"  # comma-separated central interval levels
    segment: int = 0

    def __post_init__(self) -> None:
        if self.fill not in S.FILLS:
            raise UserError(f"fill must be one of {', '.join(S.FILLS)}, found {self.fill!r}.")
        if self.scaler not in S.SCALERS:
            raise UserError(f"scaler must be one of {', '.join(S.SCALERS)}, found "
                            f"{self.scaler!r}.")
        # model settings fail here, before the data is read
        for name, choices in (("model", FC.MODELS), ("arch", FC.ARCHS), ("norm", FC.NORMS),
                              ("channels", FC.CHANNELS), ("head", FC.HEADS),
                              ("loss", FC.LOSSES)):
            if getattr(self, name) not in choices:
                raise UserError(f"{name} must be one of {', '.join(choices)}, found "
                                f"{getattr(self, name)!r}.")
        if self.stride < 1:
            raise UserError(f"stride must be at least 1, found {self.stride}.")
        if self.season is not None and self.season < 1:
            raise UserError(f"season must be at least 1, found {self.season}.")
        self.level_values()

    def level_values(self) -> list[float]:
        try:
            return [float(v) for v in names(self.levels)]
        except ValueError:
            raise UserError(f"levels must be numbers between 0 and 1 such as 0.8,0.95, found "
                            f"{self.levels!r}.") from None


def names(value: str | Sequence[str] | None) -> list[str]:
    """Column names from ``"a,b"`` or ``["a", "b"]``."""
    if value is None:
        return []
    if isinstance(value, str):
        return [v.strip() for v in value.split(",") if v.strip()]
    return [str(v) for v in value]


# -- data ---------------------------------------------------------------------------------------

@dataclass
class Spec:
    """Everything that turns a user's frame into model inputs; saved in config.json."""

    targets: list[str]
    past: list[str]
    future: list[str]
    calendar: list[str]
    time_col: str | None
    id_col: str | None
    value_col: str | None
    freq: str | None
    fill: str
    season: int
    lookback: int
    horizon: int
    scalers: dict[str, dict]  # "target", "past", "future" -> Scaler.to_dict()
    mase_scale: list[float]  # per target, original units

    def scaler(self, which: str) -> S.Scaler:
        return S.Scaler.from_dict(self.scalers[which])


def to_wide(df: pd.DataFrame, time_col: str | None, id_col: str | None,
            value_col: str | None) -> tuple[pd.DataFrame, str | None]:
    """The frame in wide format and its time column (long frames pivoted on ``id_col``)."""
    if not isinstance(df, pd.DataFrame):
        raise UserError(f"expected a pandas DataFrame, found {type(df).__name__}.")
    if id_col:
        time_col = S.find_time_column(df, time_col)
        if time_col is None or not value_col:
            raise UserError("long-format data needs --time-col and --value-col beside --id-col.")
        return S.long_to_wide(df, id_col, time_col, value_col), time_col
    return df, S.find_time_column(df, time_col)


class Arrays:
    """A prepared series as float32 arrays: scaled targets ``y`` (T, C), covariates over the
    look-back ``past`` (T, P) and known ahead ``known`` (T, F, calendar included)."""

    def __init__(self, series: S.Series, spec: Spec):
        self.series = series
        self.raw = series.values(spec.targets)
        self.y = spec.scaler("target").transform(self.raw).astype(np.float32)
        past = spec.scaler("past").transform(series.values(spec.past))
        self.known = known_covariates(series.frame, series.index, spec)
        self.past = np.concatenate([past, self.known], axis=1).astype(np.float32)

    def __len__(self) -> int:
        return len(self.y)


def known_covariates(frame: pd.DataFrame, index: pd.Index, spec: Spec) -> np.ndarray:
    future = spec.scaler("future").transform(frame[spec.future].to_numpy(np.float64)) \
        if spec.future else np.zeros((len(index), 0))
    calendar = S.calendar_features(index, spec.calendar) if spec.calendar else \
        np.zeros((len(index), 0))
    return np.concatenate([future, calendar], axis=1).astype(np.float32)


def gather(y: Tensor, past: Tensor, known: Tensor, starts: Tensor, lookback: int,
           horizon: int) -> tuple[Tensor, Tensor, Tensor, Tensor]:
    """``(x, cov_past, cov_future, target)`` of the windows whose forecasts start at ``starts``."""
    back = starts[:, None] + torch.arange(-lookback, 0)
    ahead = starts[:, None] + torch.arange(0, horizon)
    return y[back], past[back], known[ahead], y[ahead]


# -- the training task ---------------------------------------------------------------------------

class ForecastTask:
    """Windows of one series table for rnnkit.train.Trainer (see rnnkit/train/protocol.py)."""

    def __init__(self, arrays: Arrays, spec: Spec, cfg: ForecastConfig,
                 model_cfg: ForecasterConfig, splits: tuple[int, int], batch_size: int,
                 seed: int):
        self.spec, self.cfg, self.model_cfg = spec, cfg, model_cfg
        self.batch_size, self.seed = batch_size, seed
        self.y, self.past, self.known = (torch.from_numpy(a) for a in
                                         (arrays.y, arrays.past, arrays.known))
        val_start, test_start = splits
        self.splits = splits
        lb, h = spec.lookback, spec.horizon
        self.train_starts = torch.from_numpy(S.window_starts(0, val_start, lb, h, cfg.stride))
        val = S.window_starts(val_start, test_start, lb, h)
        # without a validation part, the last tenth of the training windows stands in
        self.val_starts = torch.from_numpy(val) if len(val) else \
            self.train_starts[-max(1, len(self.train_starts) // 10):]

    def batch(self, starts: Tensor) -> tuple[Tensor, Tensor, Tensor, Tensor]:
        return gather(self.y, self.past, self.known, starts, self.spec.lookback,
                      self.spec.horizon)

    def train_batches(self, epoch: int):
        g = torch.Generator().manual_seed(self.seed * 100_003 + epoch)
        order = self.train_starts[torch.randperm(len(self.train_starts), generator=g)]
        for i in range(0, len(order), self.batch_size):
            yield self.batch(order[i:i + self.batch_size])

    def training_step(self, model, batch, state):
        x, cov_past, cov_future, y = batch
        return model.loss(model(x, cov_past, cov_future), y), len(x), None

    def evaluate(self, model) -> dict[str, float]:
        device = next(model.parameters()).device
        loss = sq = ab = 0.0
        count = 0
        for i in range(0, len(self.val_starts), EVAL_CHUNK):
            x, cp, cf, y = (t.to(device) for t in self.batch(self.val_starts[i:i + EVAL_CHUNK]))
            out = model(x, cp, cf).float()
            err = model.point(out) - y
            loss += model.loss(out, y).item() * len(x)
            sq += err.pow(2).mean().item() * len(x)
            ab += err.abs().mean().item() * len(x)
            count += len(x)
        return {"val_loss": loss / count, "val_mse": sq / count, "val_mae": ab / count}

    def checkpoint_config(self) -> dict[str, Any]:
        return {"task": TASK, "model": self.model_cfg.to_dict(), "forecast": asdict(self.cfg),
                "data": asdict(self.spec), "splits": list(self.splits)}


def model_config(cfg: ForecastConfig, n_targets: int, n_past: int, n_known: int
                 ) -> ForecasterConfig:
    return ForecasterConfig(
        model=cfg.model, n_targets=n_targets, n_past=n_past, n_known=n_known,
        lookback=cfg.lookback, horizon=cfg.horizon, arch=cfg.arch, hidden=cfg.hidden,
        layers=cfg.layers, dropout=cfg.dropout, channels=cfg.channels, norm=cfg.norm,
        head=cfg.head, loss=cfg.loss, levels=cfg.level_values(), segment=cfg.segment)


def build_task(df: pd.DataFrame, cfg: ForecastConfig, batch_size: int = 128, seed: int = 0
               ) -> ForecastTask:
    """Check the frame, split it, fit the scalers on the training part and cut the windows."""
    wide, time_col = to_wide(df, cfg.time_col, cfg.id_col, cfg.value_col)
    targets = names(cfg.target)
    if not targets:
        if cfg.id_col:
            targets = [c for c in wide.columns if c != time_col]
        else:
            raise UserError("name the column(s) to forecast with --target COL[,COL].")
    past, future = names(cfg.past), names(cfg.future)
    for col in past + future:
        if col in targets:
            raise UserError(f"column {col!r} is both a target and a covariate.")
    series = S.prepare(wide, targets + past + future, targets, time_col, cfg.freq, cfg.fill)
    calendar = S.default_calendar(series.freq) if cfg.calendar == "auto" else \
        [] if cfg.calendar == "none" else names(cfg.calendar)
    if calendar and series.freq is None:
        raise UserError("calendar features need a time column; use --calendar none.")
    n = len(series.frame)
    val_start, test_start = S.split_points(series.index, cfg.val, cfg.test)
    S.check_lengths(n, cfg.lookback, cfg.horizon, val_start, test_start)
    season = cfg.season or S.season_length(series.freq)
    fit_rows = series.frame.iloc[:val_start]  # scaling statistics: the training part only
    scalers = {
        "target": S.Scaler.fit(fit_rows[targets].to_numpy(), cfg.scaler, targets).to_dict(),
        "past": S.Scaler.fit(fit_rows[past].to_numpy().reshape(val_start, -1), cfg.scaler,
                             past).to_dict(),
        "future": S.Scaler.fit(fit_rows[future].to_numpy().reshape(val_start, -1), cfg.scaler,
                               future).to_dict(),
    }
    scale = M.mase_scale(fit_rows[targets].to_numpy(), season)
    spec = Spec(targets=targets, past=past, future=future, calendar=calendar, time_col=time_col,
                id_col=cfg.id_col, value_col=cfg.value_col, freq=series.freq, fill=cfg.fill,
                season=season, lookback=cfg.lookback, horizon=cfg.horizon, scalers=scalers,
                mase_scale=scale.tolist())
    arrays = Arrays(series, spec)
    mcfg = model_config(cfg, len(targets), arrays.past.shape[1], arrays.known.shape[1])
    return ForecastTask(arrays, spec, cfg, mcfg, (val_start, test_start), batch_size, seed)


def train_config(**overrides: Any):
    """A TrainConfig with the forecasting defaults, then ``overrides``."""
    from rnnkit.train import TrainConfig

    return TrainConfig(**{**TRAIN_DEFAULTS, **overrides})


def fit(df: pd.DataFrame, cfg: ForecastConfig | None = None, train_cfg=None,
        out: str | Path = "runs/forecast", resume: bool = False, **settings: Any
        ) -> TrainedForecaster:
    """Train a forecaster on ``df`` and return it (its best checkpoint) with the test backtest
    in ``.test`` (None without a test part). ``settings`` are ForecastConfig fields, e.g. ``target="load", horizon=24``."""
    from rnnkit.train import Trainer

    cfg = dataclasses.replace(cfg or ForecastConfig(), **settings)
    train_cfg = train_cfg or train_config()
    task = build_task(df, cfg, train_cfg.batch_size, train_cfg.seed)
    model = build_forecaster(task.model_cfg)
    trainer = Trainer(model, task, train_cfg, out)
    trainer.fit(resume=resume)
    trained = load(out)
    n, test_start = len(task.y), task.splits[1]
    if n - test_start >= cfg.horizon:  # no test part (test=0): nothing to backtest
        trained.test = trained.backtest(df)
    return trained


# -- inference ----------------------------------------------------------------------------------

@dataclass
class Backtest:
    """Rolling-origin results: ``metrics`` (one row per forecaster) and the raw windows."""

    metrics: pd.DataFrame
    times: pd.Index  # time stamp of each window's first forecast step
    actual: np.ndarray  # (windows, H, C)
    predicted: np.ndarray
    baselines: dict[str, np.ndarray]
    intervals: dict[float, tuple[np.ndarray, np.ndarray]]
    history: pd.DataFrame  # the targets of the data, for plots

    def summary(self) -> str:
        """One line: the model's MSE and MAE beside the naive forecasts'."""
        m = self.metrics
        parts = [f"{name} mse {m.loc[name, 'mse']:.4g} mae {m.loc[name, 'mae']:.4g}"
                 for name in m.index]
        return f"{len(self.times)} windows: " + "; ".join(parts)


class TrainedForecaster:
    """A trained model with its data spec: ``predict``, ``backtest``, ``plot``."""

    def __init__(self, model, spec: Spec, config: dict[str, Any]):
        self.model = model.eval()
        self.spec = spec
        self.config = config
        self.test: Backtest | None = None

    def _series(self, df: pd.DataFrame) -> S.Series:
        spec = self.spec
        wide, time_col = to_wide(df, spec.time_col, spec.id_col, spec.value_col)
        if (time_col is None) != (spec.time_col is None):
            raise UserError(f"the model was trained on data "
                            f"{'with' if spec.time_col else 'without'} the time column "
                            f"{spec.time_col!r}; the data given has "
                            f"{'none' if time_col is None else repr(time_col)}.")
        columns = spec.targets + spec.past + spec.future
        return S.prepare(wide, columns, spec.targets, time_col, spec.freq, spec.fill)

    def _run(self, y: np.ndarray, past: np.ndarray, known: np.ndarray, starts: np.ndarray
             ) -> np.ndarray:
        """Model outputs (windows, H, C, K) in scaled units."""
        t = [torch.from_numpy(np.ascontiguousarray(a, dtype=np.float32)) for a in (y, past, known)]
        outs = []
        with torch.no_grad():
            for i in range(0, len(starts), EVAL_CHUNK):
                s = torch.from_numpy(starts[i:i + EVAL_CHUNK])
                back = s[:, None] + torch.arange(-self.spec.lookback, 0)
                ahead = s[:, None] + torch.arange(self.spec.horizon)  # targets may lie beyond y
                outs.append(self.model(t[0][back], t[1][back], t[2][ahead]))
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

    def predict(self, df: pd.DataFrame, future: pd.DataFrame | None = None) -> pd.DataFrame:
        """The ``horizon`` steps after the last row of ``df``: one row per future time stamp,
        a column per target and, with an interval head, ``COL_lo80`` / ``COL_hi80`` columns.
        ``future`` holds the known future covariates for those steps (time column + columns)."""
        spec = self.spec
        series = self._series(df)
        if len(series.frame) < spec.lookback:
            raise UserError(f"the data has {len(series.frame)} rows, fewer than the lookback "
                            f"{spec.lookback} the model reads.")
        arrays = Arrays(series, spec)
        index = S.future_index(series.index, spec.freq, spec.horizon)
        known_future = self._future_covariates(index, future)
        known = np.concatenate([arrays.known, known_future])
        past = arrays.past
        out = self._run(arrays.y, past, known, np.array([len(arrays)]))
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

    def _future_covariates(self, index: pd.Index, future: pd.DataFrame | None) -> np.ndarray:
        spec = self.spec
        if not spec.future:
            return known_covariates(pd.DataFrame(index=index), index, spec)
        after = f"the {spec.horizon} steps from {index[0]}"
        if future is None:
            raise UserError(f"the model needs the future covariates {', '.join(spec.future)} for "
                            f"{after}; pass them with --future FILE.")
        time_col = S.find_time_column(future, spec.time_col)
        columns = {}
        for col in spec.future:
            if col not in future.columns:
                raise UserError(f"future covariate {col!r} is missing for {after}: the future "
                                "data has no such column.")
            values = pd.to_numeric(future[col], errors="coerce")
            if time_col is not None and spec.freq is not None:
                values.index = pd.DatetimeIndex(pd.to_datetime(future[time_col], errors="coerce"))
                aligned = values[~values.index.duplicated()].reindex(index).to_numpy(np.float64)
            else:  # no time stamps: the first rows are the next steps
                aligned = np.full(len(index), np.nan)
                head = values.to_numpy(np.float64)[: len(index)]
                aligned[: len(head)] = head
            bad = ~np.isfinite(aligned)
            if bad.any():
                raise UserError(f"future covariate {col!r} is missing at "
                                f"{index[int(np.flatnonzero(bad)[0])]} (needed for {after}).")
            columns[col] = aligned
        return known_covariates(pd.DataFrame(columns, index=index), index, spec)

    def backtest(self, df: pd.DataFrame, start: float | str | None = None, stride: int = 1,
                 scaled: bool = False) -> Backtest:
        """Rolling-origin evaluation: every window (every ``stride``-th) whose targets lie in the
        test part of ``df`` (``start``: a fraction of the rows at the end, a row count or a
        date; default the split the model was trained with). ``scaled`` reports errors in the
        scaled units (z-scores for the standard scaler), as the long-horizon benchmarks do."""
        spec = self.spec
        series = self._series(df)
        arrays = Arrays(series, spec)
        n = len(arrays)
        if start is None:
            test = self.config.get("forecast", {}).get("test", 0.2)
            val = self.config.get("forecast", {}).get("val", 0.1)
            begin = S.split_points(series.index, val, test)[1]
        else:
            begin = S.split_points(series.index, 0, start)[1]
        starts = S.window_starts(begin, n, spec.lookback, spec.horizon, stride)
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

    def plot(self, df: pd.DataFrame, forecast: pd.DataFrame, path: str | Path) -> Path:
        """History (the last few horizons), forecast and intervals, one panel per target."""
        from rnnkit.tasks.forecast_plots import plot_forecast

        series = self._series(df)
        history = series.frame[self.spec.targets]
        return plot_forecast(history, forecast, self.spec.targets, self.spec.horizon,
                             self.spec.time_col or "step", path)

    def plot_backtest(self, result: Backtest, path: str | Path) -> Path:
        """The test period with the model's and the last value's forecasts, window after window."""
        from rnnkit.tasks.forecast_plots import plot_backtest

        return plot_backtest(result, self.spec.targets, self.spec.horizon, path)


def load(run_dir: str | Path, which: str = "best") -> TrainedForecaster:
    """The forecaster of a run directory (its best checkpoint, else the last)."""
    from rnnkit.train import load_for_inference

    config, state_dict = load_for_inference(run_dir, expect_task=TASK, which=which)
    try:
        model_cfg = ForecasterConfig(**config["model"])
        spec = Spec(**config["data"])
    except (KeyError, TypeError) as e:
        raise UserError(f"the config of {run_dir} is missing forecast settings ({e}); was it "
                        "written by rnnkit?") from None
    model = build_forecaster(model_cfg)
    try:
        model.load_state_dict(state_dict)
    except RuntimeError:
        raise UserError(f"the weights in {run_dir} do not fit the model its config describes "
                        "(edited or mixed-up checkpoint files).") from None
    return TrainedForecaster(model, spec, config)


def evaluate_run(run_dir: str | Path, data: Sequence[str | Path], errors: str = "strict"
                 ) -> dict[str, float]:
    """``rnnkit evaluate`` for forecast runs: the test-part backtest of the first data file,
    the model's errors beside the naive forecasts' (``last_value_mse`` ...)."""
    trained = load(run_dir)
    result = trained.backtest(S.read_table(data[0]))
    metrics = result.metrics
    out = {k: float(v) for k, v in metrics.loc["model"].items() if not math.isnan(v)}
    for name in ("last_value", "seasonal_naive"):
        out.update({f"{name}_{k}": float(metrics.loc[name, k]) for k in ("mse", "mae")})
    return out
