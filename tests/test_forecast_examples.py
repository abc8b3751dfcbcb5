"""The forecasting examples on real offline data: loaders, ``rnnkit example forecast`` and the
Seattle step of ``rnnkit demo``."""

import dataclasses
import json
import sys

import numpy as np
import pandas as pd
import pytest

from rnnkit.cli import run
from rnnkit.data import examples
from rnnkit.data import series as S
from rnnkit.errors import UserError
from rnnkit.tasks.forecast import examples as forecast_examples


def test_seattle_weather_is_daily_and_complete():
    frame = examples.seattle_weather()
    assert list(frame.columns) == ["date", "precipitation", "temp_max", "temp_min", "wind",
                                   "weather"]
    columns = ["temp_max", "temp_min", "precipitation", "wind"]
    series = S.prepare(frame, columns, ["temp_max"])  # fill="error": no gap, no NaN
    assert series.freq == "D" and len(series.frame) == 1461
    assert series.index[0] == pd.Timestamp("2012-01-01")


def test_stocks_are_long_monthly_and_goog_starts_late():
    frame = examples.stocks()
    assert list(frame.columns) == ["symbol", "date", "price"]
    assert not frame.isna().any().any()
    counts = frame.groupby("symbol")["date"].count()
    assert counts.to_dict() == {"AAPL": 123, "AMZN": 123, "GOOG": 68, "IBM": 123, "MSFT": 123}
    settings = forecast_examples.EXAMPLES["stocks"].settings
    wide = S.long_to_wide(frame, settings["id_col"], settings["time_col"], settings["value_col"])
    targets = settings["target"].split(",")
    assert "GOOG" not in targets
    series = S.prepare(wide, targets, targets, "date", fill=settings.get("fill", "error"))
    assert series.freq == "MS" and len(series.frame) == 123
    assert np.isfinite(series.values(targets)).all()


def test_co2_is_weekly_and_its_gaps_are_filled_by_the_example():
    frame = examples.co2()
    assert list(frame.columns) == ["date", "co2"]
    assert frame["co2"].isna().sum() == 59
    with pytest.raises(UserError, match="missing value"):  # not filled silently by default
        S.prepare(frame, ["co2"], ["co2"])
    fill = forecast_examples.EXAMPLES["co2"].settings["fill"]
    series = S.prepare(frame, ["co2"], ["co2"], fill=fill)
    assert series.freq == "W-SAT" and len(series.frame) == 2284
    values = series.values(["co2"])[:, 0]
    assert np.isfinite(values).all()
    # a filled week lies between its neighbours (linear, not a repeated or made-up value)
    gap = int(np.flatnonzero(frame["co2"].isna().to_numpy())[0])
    lo, hi = sorted(values[[gap - 1, gap + 1]])
    assert lo <= values[gap] <= hi


@pytest.mark.parametrize(("module", "loader", "command"), [
    ("statsmodels.datasets", examples.co2, "pip install statsmodels"),
    ("vega_datasets", examples.stocks, "pip install vega_datasets"),
])
def test_missing_package_names_the_pip_command(monkeypatch, module, loader, command):
    monkeypatch.setitem(sys.modules, module, None)  # makes the import fail
    with pytest.raises(UserError, match=command):
        loader()


@pytest.mark.parametrize(("name", "title", "windows"), [
    ("seattle", "Seattle temp_max, 14 days ahead", 279),
    ("stocks", "AAPL, AMZN, IBM and MSFT monthly prices, 12 months ahead", 13),
    ("co2", "Mauna Loa CO2, 52 weeks ahead", 405),
])
def test_example_runs_end_to_end(tmp_path, capsys, name, title, windows):
    out = tmp_path / name
    assert run(["example", "forecast", name, "--out", str(out), "--quiet",
                "--max-time", "1"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].startswith(f"{title}, test {windows} windows: MAE ")
    assert "(last value " in lines[0] and "seasonal naive " in lines[0]
    assert "80% interval coverage" in lines[0]
    assert lines[1] == f"picture: {out / 'test_backtest.png'}"
    assert (out / "test_backtest.png").stat().st_size > 1000
    config = json.loads((out / "config.json").read_text())
    assert config["train"]["max_time"] == "1"
    # a second run never overwrites the first
    assert run(["example", "forecast", name, "--out", str(out), "--quiet"]) == 2
    assert "already holds a training run" in capsys.readouterr().err


def test_unknown_example_is_one_sentence(tmp_path, capsys):
    out = tmp_path / "run"
    assert run(["example", "forecast", "weather", "--out", str(out)]) == 2
    err = capsys.readouterr().err
    assert err == "error: there is no forecasting example 'weather'; choose one of seattle, " \
                  "stocks, co2.\n"
    assert not out.exists()


def test_missing_statsmodels_through_the_command(tmp_path, capsys, monkeypatch):
    monkeypatch.setitem(sys.modules, "statsmodels.datasets", None)
    assert run(["example", "forecast", "co2", "--out", str(tmp_path / "run")]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: ") and err.count("\n") == 1 and "pip install" in err


def test_demo_step_is_the_seattle_example_and_starts_over(tmp_path, monkeypatch):
    quick = dataclasses.replace(forecast_examples.EXAMPLES["seattle"], max_time=1)
    monkeypatch.setitem(forecast_examples.EXAMPLES, "seattle", quick)
    for _ in range(2):  # a rerun replaces the demo's own run rather than failing on it
        lines = forecast_examples.demo(tmp_path, quiet=True)
        assert lines[1] == f"picture: {tmp_path / 'forecast.png'}"
        assert lines[0].startswith("Seattle temp_max, 14 days ahead, test 279 windows")
        assert (tmp_path / "forecast.png").stat().st_size > 1000
        assert (tmp_path / "forecast" / "config.json").is_file()
