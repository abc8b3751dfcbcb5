"""A user's series table as a forecaster's inputs: the ``SeriesSpec`` a run saves (columns,
calendar, frequency, scalers) and the scaled arrays it makes of any frame in the same format."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from rnnkit.data import series as S
from rnnkit.data.scaling import Scaler
from rnnkit.errors import UserError


@dataclass
class SeriesSpec:
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

    def scaler(self, which: str) -> Scaler:
        return Scaler.from_dict(self.scalers[which])

    def series_of(self, df: pd.DataFrame) -> S.Series:
        """A user's frame (wide or long) prepared as the series this spec was trained on."""
        wide, time_col = to_wide(df, self.time_col, self.id_col, self.value_col)
        if (time_col is None) != (self.time_col is None):
            raise UserError(f"the model was trained on data "
                            f"{'with' if self.time_col else 'without'} the time column "
                            f"{self.time_col!r}; the data given has "
                            f"{'none' if time_col is None else repr(time_col)}.")
        columns = self.targets + self.past + self.future
        return S.prepare(wide, columns, self.targets, time_col, self.freq, self.fill)


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

    def __init__(self, series: S.Series, spec: SeriesSpec):
        self.series = series
        self.raw = series.values(spec.targets)
        self.y = spec.scaler("target").transform(self.raw).astype(np.float32)
        past = spec.scaler("past").transform(series.values(spec.past))
        self.known = known_covariates(series.frame, series.index, spec)
        self.past = np.concatenate([past, self.known], axis=1).astype(np.float32)

    def __len__(self) -> int:
        return len(self.y)


def known_covariates(frame: pd.DataFrame, index: pd.Index, spec: SeriesSpec) -> np.ndarray:
    future = spec.scaler("future").transform(frame[spec.future].to_numpy(np.float64)) \
        if spec.future else np.zeros((len(index), 0))
    calendar = S.calendar_features(index, spec.calendar) if spec.calendar else \
        np.zeros((len(index), 0))
    return np.concatenate([future, calendar], axis=1).astype(np.float32)


def future_covariates(index: pd.Index, future: pd.DataFrame | None, spec: SeriesSpec
                      ) -> np.ndarray:
    """The known covariates over the forecast steps ``index``, from the user's ``future`` frame
    (a time column and the covariate columns; without time stamps its first rows are the next
    steps); a ``UserError`` naming the first step or column that is missing."""
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
        else:
            aligned = np.full(len(index), np.nan)
            head = values.to_numpy(np.float64)[: len(index)]
            aligned[: len(head)] = head
        bad = ~np.isfinite(aligned)
        if bad.any():
            raise UserError(f"future covariate {col!r} is missing at "
                            f"{index[int(np.flatnonzero(bad)[0])]} (needed for {after}).")
        columns[col] = aligned
    return known_covariates(pd.DataFrame(columns, index=index), index, spec)
