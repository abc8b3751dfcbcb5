"""Time series tables: reading, checking, regular time steps and calendar features.

A series table is a pandas frame indexed by time (a ``DatetimeIndex`` at a regular frequency, or
plain step numbers when the file has no time column), one numeric column per variable. Every
check names the column and the row, because a forecast that silently trains on a shifted or
half-empty series is worse than no forecast. Scaling is in ``rnnkit.data.scaling``, time splits
and windows in ``rnnkit.data.windows``.
"""

from __future__ import annotations

import csv
import gzip
import math
import warnings
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from rnnkit.errors import UserError, not_a_file

TIME_NAMES = ("date", "time", "timestamp", "datetime", "ds", "month", "day")
FILLS = ("error", "ffill", "interpolate")
CALENDAR = ("minute", "hour", "weekday", "day", "month")


# -- reading ------------------------------------------------------------------------------------

def read_table(path: str | Path) -> pd.DataFrame:
    """A CSV (optionally gzipped, comma- or tab-separated) or Parquet file as a data frame."""
    path = Path(path)
    if not path.is_file():
        raise not_a_file("data file", path)
    name = path.name.lower()
    try:
        if name.endswith((".parquet", ".pq")):
            try:
                return pd.read_parquet(path)
            except ImportError as e:
                raise UserError(f"reading {path} needs a Parquet engine: pip install pyarrow.") from e
        return pd.read_csv(path, sep=_separator(path))
    except UserError:
        raise
    except (ValueError, OSError, UnicodeDecodeError, pd.errors.ParserError, csv.Error) as e:
        raise UserError(f"{path} could not be read as a table: {str(e).strip()}".rstrip(".") +
                        ".") from e


def _separator(path: Path) -> str:
    """Comma, tab or semicolon: whichever the first line holds most of."""
    opener = gzip.open if path.name.lower().endswith(".gz") else open
    with opener(path, "rt", encoding="utf-8", errors="replace") as f:
        first = f.readline()
    return max((",", "\t", ";"), key=first.count)


def long_to_wide(df: pd.DataFrame, id_col: str, time_col: str, value_col: str) -> pd.DataFrame:
    """Long format (one row per series and time stamp) to wide (one column per series)."""
    for col in (id_col, time_col, value_col):
        _require_column(df, col)
    dup = df.duplicated([id_col, time_col], keep=False)
    if dup.any():
        rows = np.flatnonzero(dup.to_numpy())[:2]
        raise UserError(f"series {df[id_col].iloc[rows[0]]!r} has time stamp "
                        f"{df[time_col].iloc[rows[0]]!r} twice (rows {rows[0] + 1} and "
                        f"{rows[1] + 1}).")
    wide = df.pivot(index=time_col, columns=id_col, values=value_col)
    wide.columns = [str(c) for c in wide.columns]
    return wide.reset_index()


def find_time_column(df: pd.DataFrame, time_col: str | None) -> str | None:
    """``time_col`` if given (it must exist), else the first column with a usual time name."""
    if time_col:
        _require_column(df, time_col)
        return time_col
    for col in df.columns:
        if str(col).lower() in TIME_NAMES:
            return str(col)
    return None


# -- checking and regularising ------------------------------------------------------------------

@dataclass
class Series:
    """A checked table: ``frame`` indexed by time, at frequency ``freq`` (None: plain steps)."""

    frame: pd.DataFrame
    freq: str | None

    @property
    def index(self) -> pd.Index:
        return self.frame.index

    def values(self, columns: Sequence[str]) -> np.ndarray:
        return self.frame[list(columns)].to_numpy(np.float64)


def prepare(df: pd.DataFrame, columns: Sequence[str], targets: Sequence[str],
            time_col: str | None = None, freq: str | None = None, fill: str = "error") -> Series:
    """Parse the time column, sort, check duplicates and gaps, and make ``columns`` numeric.

    ``fill``: what to do with gaps in the time index and missing values: ``error`` (a clear
    message), ``ffill`` (repeat the last value) or ``interpolate`` (linear in time).
    Targets must be finite after filling; infinities are always an error.
    """
    if fill not in FILLS:
        raise UserError(f"fill must be one of {', '.join(FILLS)}, found {fill!r}.")
    for col in columns:
        _require_column(df, col)
    time_col = find_time_column(df, time_col)
    frame = pd.DataFrame({c: _numeric(df[c], c) for c in columns})
    if time_col is None:
        frame.index = pd.RangeIndex(len(df), name="step")
        freq = None
    else:
        frame.index = pd.DatetimeIndex(_parse_times(df[time_col], time_col), name=time_col)
        frame = _regular(frame, time_col, freq, fill)
        freq = frame.index.freqstr
    _check_values(frame, columns, targets, fill)
    return Series(frame, freq)


def _require_column(df: pd.DataFrame, col: str) -> None:
    if col not in df.columns:
        shown = ", ".join(map(str, df.columns[:12])) + (" ..." if len(df.columns) > 12 else "")
        raise UserError(f"column {col!r} is not in the data; its columns are: {shown}.")


def _numeric(column: pd.Series, name: str) -> pd.Series:
    values = pd.to_numeric(column, errors="coerce")
    bad = values.isna() & column.notna()
    if bad.any():
        row = int(np.flatnonzero(bad.to_numpy())[0])
        raise UserError(f"column {name!r} must be numeric, found {column.iloc[row]!r} at row "
                        f"{row + 1}.")
    return values.astype(np.float64).reset_index(drop=True)


def _parse_times(column: pd.Series, name: str) -> pd.Series:
    if pd.api.types.is_datetime64_any_dtype(column):
        times = column
    else:
        try:
            times = pd.to_datetime(column, errors="coerce", format="mixed")
        except (TypeError, ValueError):
            times = pd.Series(pd.NaT, index=column.index)
    times = times.reset_index(drop=True)
    if getattr(times.dt, "tz", None) is not None:
        times = times.dt.tz_convert(None)
    bad = times.isna()
    if bad.any():
        row = int(np.flatnonzero(bad.to_numpy())[0])
        raise UserError(f"column {name!r} holds {column.iloc[row]!r} at row {row + 1}, which is "
                        "not a time stamp.")
    dup = times.duplicated(keep=False)
    if dup.any():
        rows = np.flatnonzero(dup.to_numpy())
        first = times.iloc[rows[0]]
        again = rows[times.iloc[rows].to_numpy() == first.to_datetime64()]
        raise UserError(f"time stamp {first} in column {name!r} appears more than once (rows "
                        f"{again[0] + 1} and {again[1] + 1}).")
    return times


def _regular(frame: pd.DataFrame, name: str, freq: str | None, fill: str) -> pd.DataFrame:
    frame = frame.sort_index()
    index = frame.index
    if len(index) < 3:
        raise UserError(f"the data has {len(index)} rows; a series needs many more.")
    if freq is None:
        with warnings.catch_warnings():  # pandas 3 warns that this will return an offset
            warnings.simplefilter("ignore")
            inferred = pd.infer_freq(index)
        freq = None if inferred is None else pd.tseries.frequencies.to_offset(inferred).freqstr
    if freq is None:  # gaps: take the most common step as the frequency
        step = pd.Series(index[1:] - index[:-1]).mode().iloc[0]
        freq = pd.tseries.frequencies.to_offset(step).freqstr
    try:
        full = pd.date_range(index[0], index[-1], freq=freq)
    except ValueError as e:
        raise UserError(f"freq {freq!r} is not a pandas frequency such as H, D, W, MS.") from e
    if len(full) != len(index) or not full.equals(index):
        missing = full.difference(index)
        off_grid = index.difference(full)
        if len(off_grid):
            raise UserError(f"time stamp {off_grid[0]} in column {name!r} is off the {freq} grid "
                            f"that starts at {index[0]}.")
        if fill == "error":
            raise UserError(f"the time index has {len(missing)} missing time stamps at frequency "
                            f"{freq}, the first {missing[0]}; fill them with --fill ffill or "
                            "--fill interpolate.")
        frame = frame.reindex(full)
    frame.index = pd.DatetimeIndex(full, name=name, freq=freq)
    return frame


def _check_values(frame: pd.DataFrame, columns: Sequence[str], targets: Sequence[str],
                  fill: str) -> None:
    for col in columns:
        values = frame[col].to_numpy()
        inf = np.isinf(values)
        if inf.any():
            raise UserError(f"column {col!r} holds an infinite value at {_where(frame, inf)}.")
    if fill != "error":
        filled = frame[list(columns)].interpolate(method="linear", limit_direction="both") \
            if fill == "interpolate" else frame[list(columns)].ffill().bfill()
        frame[list(columns)] = filled
    for col in columns:
        nan = np.isnan(frame[col].to_numpy())
        if nan.all():
            raise UserError(f"column {col!r} holds no values.")
        if nan.any():
            what = "target" if col in targets else "covariate"
            raise UserError(f"{what} column {col!r} has a missing value (NaN) at "
                            f"{_where(frame, nan)}; fill it with --fill ffill or interpolate.")


def _where(frame: pd.DataFrame, mask: np.ndarray) -> str:
    row = int(np.flatnonzero(mask)[0])
    stamp = frame.index[row]
    return f"row {row + 1}" + ("" if isinstance(frame.index, pd.RangeIndex) else f" ({stamp})")


# -- calendar features --------------------------------------------------------------------------

def default_calendar(freq: str | None) -> list[str]:
    """The calendar features that vary within a year at this frequency (none without times)."""
    if freq is None:
        return []
    step = _step_seconds(freq)
    names = []
    if step < 3600:
        names.append("minute")
    if step < 86400:
        names.append("hour")
    if step < 7 * 86400:
        names.append("weekday")
    if step < 28 * 86400:
        names.append("day")
    if step < 365 * 86400:
        names.append("month")
    return names


def calendar_features(index: pd.DatetimeIndex, names: Sequence[str]) -> np.ndarray:
    """(len(index), 2 * len(names)): a sine and cosine per cycle, so December is near January."""
    cycles = {"minute": (index.minute, 60), "hour": (index.hour, 24),
              "weekday": (index.day_of_week, 7), "day": (index.day_of_year - 1, 366),
              "month": (index.month - 1, 12)}
    columns = []
    for name in names:
        if name not in cycles:
            raise UserError(f"calendar features must be among {', '.join(CALENDAR)}, found "
                            f"{name!r}.")
        value, period = cycles[name]
        angle = 2 * math.pi * np.asarray(value, dtype=np.float64) / period
        columns += [np.sin(angle), np.cos(angle)]
    return np.stack(columns, axis=1) if columns else np.zeros((len(index), 0))


def future_index(index: pd.Index, freq: str | None, horizon: int) -> pd.Index:
    """The ``horizon`` time stamps (or step numbers) after the last one of ``index``."""
    if freq is None:
        start = int(index[-1]) + 1
        return pd.RangeIndex(start, start + horizon, name=index.name)
    return pd.date_range(index[-1], periods=horizon + 1, freq=freq, name=index.name)[1:]


def season_length(freq: str | None) -> int:
    """The usual seasonal period in steps: a day of hours, a week of days, a year of months."""
    if freq is None:
        return 1
    step = _step_seconds(freq)
    for period, seconds in ((24, 3600), (7, 86400), (52, 7 * 86400)):
        if step == seconds:
            return period
    if step < 3600:
        return max(1, round(86400 / step)) if 86400 / step <= 1440 else 1
    if 28 * 86400 <= step <= 31 * 86400:
        return 12
    if 89 * 86400 <= step <= 92 * 86400:
        return 4
    return 1


def _step_seconds(freq: str) -> float:
    offset = pd.tseries.frequencies.to_offset(freq)
    try:
        return pd.Timedelta(offset).total_seconds()
    except ValueError:  # months, quarters, years have no fixed length
        start = pd.Timestamp("2001-01-01")
        return ((start + offset) - start).total_seconds()
