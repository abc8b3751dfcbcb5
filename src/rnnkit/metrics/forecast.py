"""Forecast errors: MAE, MSE, RMSE, MASE, sMAPE and prediction-interval coverage.

Arrays are ``(windows, horizon, variables)`` or anything that broadcasts; every metric averages
over all elements (variables weigh the same when they share a scale, as after z-scoring).
"""

from __future__ import annotations

import numpy as np


def mae(y: np.ndarray, yhat: np.ndarray) -> float:
    return float(np.mean(np.abs(np.asarray(y) - np.asarray(yhat))))


def mse(y: np.ndarray, yhat: np.ndarray) -> float:
    return float(np.mean((np.asarray(y) - np.asarray(yhat)) ** 2))


def rmse(y: np.ndarray, yhat: np.ndarray) -> float:
    return float(np.sqrt(mse(y, yhat)))


def smape(y: np.ndarray, yhat: np.ndarray) -> float:
    """Symmetric MAPE in percent, 200 |y - yhat| / (|y| + |yhat|); terms where both are 0 count 0."""
    y, yhat = np.asarray(y, dtype=np.float64), np.asarray(yhat, dtype=np.float64)
    denom = np.abs(y) + np.abs(yhat)
    terms = np.divide(2 * np.abs(y - yhat), denom, out=np.zeros_like(denom), where=denom > 0)
    return float(100 * np.mean(terms))


def mase_scale(history: np.ndarray, season: int = 1) -> np.ndarray:
    """Per variable: the in-sample MAE of the seasonal naive forecast on ``history`` (time, vars),
    the denominator of MASE (Hyndman & Koehler 2006)."""
    history = np.asarray(history, dtype=np.float64)
    if history.ndim == 1:
        history = history[:, None]
    m = season if len(history) > season else 1
    return np.mean(np.abs(history[m:] - history[:-m]), axis=0)


def mase(y: np.ndarray, yhat: np.ndarray, scale: np.ndarray) -> float:
    """Mean over variables of MAE / ``scale`` (from ``mase_scale``); variables last."""
    err = np.abs(np.asarray(y, dtype=np.float64) - np.asarray(yhat, dtype=np.float64))
    per_var = err.reshape(-1, err.shape[-1]).mean(0)
    return float(np.mean(per_var / np.maximum(np.asarray(scale, dtype=np.float64), 1e-12)))


def coverage(y: np.ndarray, lower: np.ndarray, upper: np.ndarray) -> float:
    """Fraction of the true values inside ``[lower, upper]``."""
    y = np.asarray(y)
    return float(np.mean((y >= np.asarray(lower)) & (y <= np.asarray(upper))))


def point_metrics(y: np.ndarray, yhat: np.ndarray, scale: np.ndarray | None = None
                  ) -> dict[str, float]:
    """MAE, RMSE, MSE, sMAPE and (given the MASE scale) MASE."""
    out = {"mae": mae(y, yhat), "rmse": rmse(y, yhat), "mse": mse(y, yhat),
           "smape": smape(y, yhat)}
    if scale is not None:
        out["mase"] = mase(y, yhat, scale)
    return out
