"""The forecasting task's settings, each declared once (type, default, help, flag)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from rnnkit.data.scaling import SCALERS
from rnnkit.data.series import FILLS
from rnnkit.errors import UserError
from rnnkit.models.forecasters import ForecasterConfig
from rnnkit.settings import derive, model_default, setting

TASK = "forecast"
# Training defaults for forecasting where they differ from TrainConfig's (a config file or a
# flag overrides them): larger batches of cheap windows, more epochs, early stopping.
TRAIN_DEFAULTS: dict[str, Any] = {"batch_size": 128, "epochs": 30, "patience": 5, "lr": 3e-3}


def _model(name: str) -> Any:
    return model_default(ForecasterConfig, name)


@dataclass
class ForecastConfig:
    """What to forecast from which columns, how to split and scale, and the model."""

    data: str = setting("", "CSV or Parquet file of the series.", metavar="PATH")
    target: str = setting("", "Column(s) to forecast, comma-separated.")
    time_col: str | None = setting(
        None, "Time column (default: one named date, time, timestamp, ...).")
    id_col: str | None = setting(None, "Long format: the column naming each series.")
    value_col: str | None = setting(None, "Long format: the value column.")
    past: str = setting("", "Covariates known only up to now, comma-separated.")
    future: str = setting("", "Covariates known ahead, comma-separated (needed to forecast).",
                          flag="--future-cov")
    calendar: str = setting("auto", "auto, none, or features among minute,hour,weekday,day,month.")
    freq: str | None = setting(None, "Pandas frequency such as H, D, MS (default: inferred).")
    fill: str = setting("error", "Gaps and missing values: error, ffill or interpolate.")
    scaler: str = setting("standard", "standard, robust or none (fitted on the training part).")
    lookback: int = setting(_model("lookback"), "Past steps the model reads.")
    horizon: int = setting(_model("horizon"), "Steps to forecast.")
    stride: int = setting(1, "Steps between training windows.")
    val: float | str = setting(0.1, "Validation part: a fraction, a row count or a start date.")
    test: float | str = setting(0.2, "Test part: a fraction, a row count or a start date.")
    season: int | None = setting(None, "Seasonal period in steps, for the seasonal naive "
                                 "forecast and MASE (default: from the frequency).")
    # the model (ForecasterConfig holds the defaults)
    model: str = setting(_model("model"), "segrnn, rnn (direct multi-horizon) or seq2seq.")
    arch: str = setting(_model("arch"), "gru, lstm, rnn, mingru or minlstm.")
    hidden: int = setting(_model("hidden"), "Hidden units.")
    layers: int = setting(_model("layers"), "Recurrent layers.")
    dropout: float = setting(_model("dropout"), "Dropout rate.")
    channels: str = setting(_model("channels"),
                            "independent (one series at a time, shared weights) or joint.")
    norm: str = setting(_model("norm"), "Per-window normalisation: last, revin or none.")
    head: str = setting(_model("head"), "point, quantile (pinball loss) or gaussian.")
    loss: str = setting(_model("loss"), "Loss of the point head: mse or mae.")
    levels: str = setting(",".join(map(str, _model("levels"))),
                          "Interval levels, comma-separated, e.g. 0.8,0.95.")
    segment: int = setting(_model("segment"),
                           "SegRNN segment length in steps (0: chosen from the lookback).")

    def __post_init__(self) -> None:
        if self.fill not in FILLS:
            raise UserError(f"fill must be one of {', '.join(FILLS)}, found {self.fill!r}.")
        if self.scaler not in SCALERS:
            raise UserError(f"scaler must be one of {', '.join(SCALERS)}, found "
                            f"{self.scaler!r}.")
        if self.stride < 1:
            raise UserError(f"stride must be at least 1, found {self.stride}.")
        if self.season is not None and self.season < 1:
            raise UserError(f"season must be at least 1, found {self.season}.")
        self.model_config(1, 0, 0)  # model settings fail here, before the data is read

    def level_values(self) -> list[float]:
        try:
            return [float(v) for v in names(self.levels)]
        except ValueError:
            raise UserError(f"levels must be numbers between 0 and 1 such as 0.8,0.95, found "
                            f"{self.levels!r}.") from None

    def model_config(self, n_targets: int, n_past: int, n_known: int) -> ForecasterConfig:
        """The forecaster's config: every field both configs share, and the data's widths."""
        return derive(ForecasterConfig, self, n_targets=n_targets, n_past=n_past,
                      n_known=n_known, levels=self.level_values())


def names(value: str | Sequence[str] | None) -> list[str]:
    """Column names from ``"a,b"`` or ``["a", "b"]``."""
    if value is None:
        return []
    if isinstance(value, str):
        return [v.strip() for v in value.split(",") if v.strip()]
    return [str(v) for v in value]


def train_config(**overrides: Any):
    """A TrainConfig with the forecasting defaults, then ``overrides``."""
    from rnnkit.train import TrainConfig

    return TrainConfig(**{**TRAIN_DEFAULTS, **overrides})
