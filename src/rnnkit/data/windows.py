"""Time splits and forecast windows of a series: where the validation and test parts start, and
which windows fit inside a part without their targets crossing into the next."""

from __future__ import annotations

import numpy as np
import pandas as pd
import torch
from torch import Tensor

from rnnkit.errors import UserError


def split_points(index: pd.Index, val: float | str, test: float | str) -> tuple[int, int]:
    """Rows where validation and test targets start. Each of ``val`` and ``test`` is a fraction
    of the rows (0.1), a row count (2880) or a start date (``"2018-01-01"``). With two fractions
    the training part gets ``int(n * (1 - val - test))`` rows and the test ``int(n * test)``, the
    usual protocol of the long-horizon benchmarks."""
    n = len(index)
    kind_v, v = _split_value(index, val, "val")
    kind_t, t = _split_value(index, test, "test")
    test_start = t if kind_t == "date" else n - (int(n * t) if kind_t == "frac" else int(t))
    if kind_v == "date":
        val_start = int(v)
    elif kind_v == "frac" and kind_t == "frac":
        val_start = int(n * round(1 - v - t, 10))
    else:
        val_start = test_start - (int(n * v) if kind_v == "frac" else int(v))
    if not 0 < val_start <= test_start <= n:
        raise UserError(f"the split leaves no training part: validation starts at row "
                        f"{val_start + 1} and test at row {test_start + 1} of {n}.")
    return val_start, test_start


def _split_value(index: pd.Index, value: float | str, name: str) -> tuple[str, float]:
    """``("frac", 0.1)``, ``("rows", 2880)`` or ``("date", row where the date starts)``."""
    if isinstance(value, str):
        try:
            value = float(value)
        except ValueError:
            return "date", _date_row(index, value, name)
    if not value >= 0 or (value >= 1 and not float(value).is_integer()):
        raise UserError(f"{name} must be a fraction, a row count or a date, found {value}.")
    return ("frac", float(value)) if value < 1 else ("rows", float(value))


def _date_row(index: pd.Index, text: str, name: str) -> int:
    if not isinstance(index, pd.DatetimeIndex):
        raise UserError(f"{name} is the date {text!r}, but the data has no time column.")
    try:
        stamp = pd.Timestamp(text)
    except ValueError as e:
        raise UserError(f"{name} must be a fraction, a row count or a date, found {text!r}.") from e
    return int(index.searchsorted(stamp))


def window_starts(begin: int, end: int, lookback: int, horizon: int, stride: int = 1,
                  latest_first: bool = False) -> np.ndarray:
    """Rows ``t`` of the first forecast step of every window whose targets ``[t, t + horizon)``
    lie in ``[begin, end)`` and whose look-back ``[t - lookback, t)`` starts at row 0 or later.
    The look-back may reach into an earlier part (that is the past, not a leak); targets never
    cross ``end``. With ``latest_first`` the stride is anchored at the last window."""
    if stride < 1:
        raise UserError(f"stride must be at least 1, found {stride}.")
    first = max(begin, lookback)
    last = end - horizon
    if last < first:
        return np.zeros(0, dtype=np.int64)
    if latest_first:
        return np.arange(last, first - 1, -stride, dtype=np.int64)[::-1].copy()
    return np.arange(first, last + 1, stride, dtype=np.int64)


def check_lengths(n_rows: int, lookback: int, horizon: int, val_start: int, test_start: int
                  ) -> None:
    """Clear errors when the look-back and horizon do not fit in the parts of the data."""
    if lookback < 1 or horizon < 1:
        raise UserError(f"lookback and horizon must be at least 1, found {lookback} and {horizon}.")
    if lookback + horizon > val_start:
        raise UserError(f"lookback {lookback} + horizon {horizon} = {lookback + horizon} rows do "
                        f"not fit in the training part ({val_start} rows of {n_rows}); use a "
                        "shorter lookback or horizon, or more data.")
    if test_start - val_start < horizon and test_start > val_start:
        raise UserError(f"the validation part has {test_start - val_start} rows, fewer than the "
                        f"horizon {horizon}; make it larger (--val) or the horizon shorter.")
    if 0 < n_rows - test_start < horizon:
        raise UserError(f"the test part has {n_rows - test_start} rows, fewer than the horizon "
                        f"{horizon}; make it larger (--test) or the horizon shorter.")


def gather(y: Tensor, past: Tensor, known: Tensor, starts: Tensor, lookback: int,
           horizon: int) -> tuple[Tensor, Tensor, Tensor, Tensor]:
    """``(x, cov_past, cov_future, target)`` of the windows whose forecasts start at ``starts``:
    ``lookback`` rows of targets and past covariates before each start, ``horizon`` rows of
    known covariates and targets from it."""
    back = starts[:, None] + torch.arange(-lookback, 0)
    ahead = starts[:, None] + torch.arange(0, horizon)
    return y[back], past[back], known[ahead], y[ahead]
