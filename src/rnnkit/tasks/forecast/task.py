"""Training a forecaster: the frame checked, split by time, scaled with statistics of the
training part only and cut into windows that never cross a split, for ``rnnkit.train``."""

from __future__ import annotations

from dataclasses import asdict
from pathlib import Path
from typing import Any

import pandas as pd
import torch
from torch import Tensor

from rnnkit.data import series as S
from rnnkit.data.scaling import Scaler
from rnnkit.data.series_inputs import Arrays, SeriesSpec, to_wide
from rnnkit.data.windows import check_lengths, gather, split_points, window_starts
from rnnkit.errors import UserError
from rnnkit.metrics import forecast as M
from rnnkit.models.forecasters import ForecasterConfig, build_forecaster
from rnnkit.tasks.forecast.config import TASK, ForecastConfig, names
from rnnkit.tasks.forecast.predictor import EVAL_CHUNK, TrainedForecaster, load

BACKTEST_PICTURE = "test_backtest.png"


class ForecastTask:
    """Windows of one series table for rnnkit.train.Trainer (see rnnkit/train/protocol.py)."""

    def __init__(self, arrays: Arrays, spec: SeriesSpec, cfg: ForecastConfig,
                 model_cfg: ForecasterConfig, splits: tuple[int, int], batch_size: int,
                 seed: int):
        self.spec, self.cfg, self.model_cfg = spec, cfg, model_cfg
        self.batch_size, self.seed = batch_size, seed
        self.y, self.past, self.known = (torch.from_numpy(a) for a in
                                         (arrays.y, arrays.past, arrays.known))
        val_start, test_start = splits
        self.splits = splits
        lb, h = spec.lookback, spec.horizon
        self.train_starts = torch.from_numpy(window_starts(0, val_start, lb, h, cfg.stride))
        val = window_starts(val_start, test_start, lb, h)
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

    def has_test(self) -> bool:
        """Whether the test part holds a whole horizon (``test=0``: nothing to backtest)."""
        return len(self.y) - self.splits[1] >= self.spec.horizon


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
    val_start, test_start = split_points(series.index, cfg.val, cfg.test)
    check_lengths(n, cfg.lookback, cfg.horizon, val_start, test_start)
    season = cfg.season or S.season_length(series.freq)
    fit_rows = series.frame.iloc[:val_start]  # scaling statistics: the training part only
    scalers = {
        "target": Scaler.fit(fit_rows[targets].to_numpy(), cfg.scaler, targets).to_dict(),
        "past": Scaler.fit(fit_rows[past].to_numpy().reshape(val_start, -1), cfg.scaler,
                           past).to_dict(),
        "future": Scaler.fit(fit_rows[future].to_numpy().reshape(val_start, -1), cfg.scaler,
                             future).to_dict(),
    }
    scale = M.mase_scale(fit_rows[targets].to_numpy(), season)
    spec = SeriesSpec(targets=targets, past=past, future=future, calendar=calendar,
                      time_col=time_col, id_col=cfg.id_col, value_col=cfg.value_col,
                      freq=series.freq, fill=cfg.fill, season=season, lookback=cfg.lookback,
                      horizon=cfg.horizon, scalers=scalers, mase_scale=scale.tolist())
    arrays = Arrays(series, spec)
    mcfg = cfg.model_config(len(targets), arrays.past.shape[1], arrays.known.shape[1])
    return ForecastTask(arrays, spec, cfg, mcfg, (val_start, test_start), batch_size, seed)


def fit(train_cfg, cfg: ForecastConfig, out: str | Path, resume: bool = False,
        frame: pd.DataFrame | None = None) -> dict[str, Any]:
    """Train on ``frame`` (default: the file ``cfg.data``) into run directory ``out``. Returns
    the report ``{"train": the last evaluation, "test": Backtest.to_dict() or None}``."""
    if isinstance(train_cfg, pd.DataFrame):  # the frame-first call of earlier versions
        raise TypeError("forecast.fit(train_cfg, cfg, out, resume, frame=...) takes the configs "
                        "first, like every task; to train on a frame call "
                        "forecast.train(frame, out, **settings)")
    return fit_forecaster(train_cfg, cfg, out, resume, frame).metrics


def fit_forecaster(train_cfg, cfg: ForecastConfig, out: str | Path, resume: bool = False,
                   frame: pd.DataFrame | None = None) -> TrainedForecaster:
    """``fit``, returning the best checkpoint as a forecaster: the report in ``.metrics``, the
    test-part backtest in ``.test`` (its picture saved as test_backtest.png in ``out``)."""
    from rnnkit.train import Trainer

    if frame is None:
        if not cfg.data:
            raise UserError("name the file of the series with --data PATH.")
        frame = S.read_table(cfg.data)
    task = build_task(frame, cfg, train_cfg.batch_size, train_cfg.seed)
    trainer = Trainer(build_forecaster(task.model_cfg), task, train_cfg, out)
    last = trainer.fit(resume=resume)
    trained = load(out)
    if task.has_test():
        trained.test = trained.backtest(frame)
        trained.plot_backtest(trained.test, Path(out) / BACKTEST_PICTURE)
    trained.metrics = {"train": last,
                       "test": None if trained.test is None else trained.test.to_dict()}
    return trained
