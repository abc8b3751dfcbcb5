"""Rolling-origin results: the model's errors beside the naive forecasts', and the windows."""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

BASELINES = ("last_value", "seasonal_naive")


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

    def to_dict(self) -> dict[str, Any]:
        """``{"windows": n, "model": {"mae": ...}, "last_value": {...}, ...}`` in plain floats
        (the report of a training and what a JSON answer carries)."""
        out: dict[str, Any] = {"windows": len(self.times)}
        for name, row in self.metrics.iterrows():
            out[str(name)] = {k: float(v) for k, v in row.items() if not math.isnan(v)}
        return out

    def flat(self) -> dict[str, float]:
        """The model's errors and the naive forecasts' MSE and MAE (``last_value_mse`` ...): what
        ``rnnkit evaluate`` prints."""
        report = self.to_dict()
        out = dict(report["model"])
        for name in BASELINES:
            out.update({f"{name}_{k}": report[name][k] for k in ("mse", "mae")})
        return out

    def summary(self) -> str:
        """One line: the model's MSE and MAE beside the naive forecasts'."""
        return summary_line(self.to_dict())


def summary_line(report: dict[str, Any]) -> str:
    """``N windows: model mse .. mae ..; last_value mse ...`` from ``Backtest.to_dict()``."""
    parts = [f"{name} mse {m['mse']:.4g} mae {m['mae']:.4g}" for name, m in report.items()
             if name != "windows"]
    return f"{report['windows']} windows: " + "; ".join(parts)
