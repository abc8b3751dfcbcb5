"""``rnnkit train forecast``, ``rnnkit forecast``, ``rnnkit backtest``: smoke test and bad input."""

import json

import numpy as np
import pandas as pd
import pytest

from rnnkit.cli import run

pytestmark = pytest.mark.usefixtures("one_thread")


def daily(n=240, seed=0):
    rng = np.random.default_rng(seed)
    t = np.arange(n)
    return pd.DataFrame({
        "date": pd.date_range("2022-01-01", periods=n, freq="D").strftime("%Y-%m-%d"),
        "sales": 20 + 3 * np.sin(2 * np.pi * t / 7) + rng.standard_normal(n),
        "promo": (rng.random(n) < 0.2).astype(float),
        "temp": 10 + rng.standard_normal(n),
    })


def write(df, path):
    df.to_csv(path, index=False)
    return str(path)


TRAIN = ["train", "forecast", "--target", "sales", "--horizon", "7", "--lookback", "21",
         "--hidden", "8", "--max-steps", "3", "--quiet"]


def test_train_forecast_backtest_evaluate(tmp_path, capsys):
    data = write(daily(), tmp_path / "sales.csv")
    out = tmp_path / "run"
    assert run([*TRAIN, "--data", data, "--out", str(out), "--future-cov", "promo",
                "--past", "temp", "--head", "quantile", "--levels", "0.8,0.95"]) == 0
    text = capsys.readouterr().out
    assert "test:" in text and "last_value mse" in text and "seasonal_naive" in text
    assert (out / "test_backtest.png").stat().st_size > 1000

    future = pd.DataFrame({"date": pd.date_range("2022-08-29", periods=7, freq="D"),
                           "promo": [0, 1, 0, 0, 1, 0, 0]})
    fpath = write(future, tmp_path / "future.csv")
    assert run(["forecast", str(out), "--data", data, "--future", fpath, "--output",
                str(tmp_path / "f.csv"), "--plot", str(tmp_path / "f.png")]) == 0
    forecast = pd.read_csv(tmp_path / "f.csv")
    assert list(forecast.columns) == ["date", "sales", "sales_lo80", "sales_hi80", "sales_lo95",
                                      "sales_hi95"]
    assert forecast["date"].tolist() == [d.strftime("%Y-%m-%d") for d in future["date"]]
    assert (forecast["sales_lo95"] <= forecast["sales_hi95"]).all()
    assert (tmp_path / "f.png").stat().st_size > 1000

    capsys.readouterr()
    assert run(["backtest", str(out), "--data", data, "--stride", "7", "--output",
                str(tmp_path / "m.csv"), "--plot", str(tmp_path / "b.png")]) == 0
    text = capsys.readouterr().out
    assert "coverage_80" in text and "seasonal_naive" in text
    metrics = pd.read_csv(tmp_path / "m.csv", index_col=0)
    assert {"mae", "rmse", "mse", "mase", "smape"} <= set(metrics.columns)
    assert run(["evaluate", str(out), "--data", data]) == 0
    assert "last_value_mse" in capsys.readouterr().out

    # the future covariates are needed at forecast time
    assert run(["forecast", str(out), "--data", data]) == 2
    assert "future covariates promo" in capsys.readouterr().err
    short = write(future.iloc[:5], tmp_path / "short.csv")
    assert run(["forecast", str(out), "--data", data, "--future", short]) == 2
    assert "'promo' is missing at 2022-09-03" in capsys.readouterr().err


def test_resume_restores_the_saved_settings(tmp_path, capsys):
    data = write(daily(), tmp_path / "sales.csv")
    out = tmp_path / "run"
    assert run([*TRAIN, "--data", data, "--out", str(out), "--past", "temp"]) == 0
    # only a larger budget: the data file, columns and model come from the run's config.json
    assert run(["train", "forecast", "--out", str(out), "--resume", "--max-steps", "5",
                "--quiet"]) == 0
    assert "test:" in capsys.readouterr().out
    saved = json.loads((out / "config.json").read_text())
    assert saved["forecast"]["data"] == data and saved["forecast"]["past"] == "temp"
    assert saved["forecast"]["horizon"] == 7 and saved["train"]["max_steps"] == 5


def test_long_format_and_parquet_or_clear_error(tmp_path, capsys):
    df = daily(120)
    long = pd.concat([pd.DataFrame({"store": name, "date": df["date"], "sales": df["sales"] + k})
                      for k, name in enumerate(["a", "b"])])
    data = write(long, tmp_path / "long.csv")
    out = tmp_path / "run"
    assert run(["train", "forecast", "--data", data, "--id-col", "store", "--value-col", "sales",
                "--horizon", "5", "--lookback", "14", "--hidden", "8", "--max-steps", "2",
                "--quiet", "--out", str(out), "--model", "rnn"]) == 0
    assert run(["forecast", str(out), "--data", data]) == 0
    text = capsys.readouterr().out
    assert text.splitlines()[-6].startswith("date,a,b")


def bad(tmp_path, capsys, df, *extra, args=TRAIN):
    data = write(df, tmp_path / "bad.csv")
    code = run([*args, "--data", data, "--out", str(tmp_path / "run"), *extra])
    err = capsys.readouterr().err
    assert code == 2, err
    assert err.startswith("error: ") and "Traceback" not in err and err.count("\n") == 1
    return err


def test_bad_timestamps(tmp_path, capsys):
    df = daily(60)
    df.loc[7, "date"] = "not a date"
    assert "column 'date' holds 'not a date' at row 8" in bad(tmp_path, capsys, df)
    df = daily(60)
    df.loc[9, "date"] = df.loc[8, "date"]
    assert "2022-01-09" in bad(tmp_path, capsys, df) and "rows 9 and 10" in \
        bad(tmp_path, capsys, df)


def test_gaps_error_or_fill(tmp_path, capsys):
    df = daily(120).drop(index=[30, 31, 32])
    err = bad(tmp_path, capsys, df)
    assert "3 missing time stamps" in err and "2022-01-31" in err and "--fill" in err
    data = write(df, tmp_path / "gaps.csv")
    assert run([*TRAIN, "--data", data, "--out", str(tmp_path / "filled"), "--fill",
                "interpolate", "--test", "0"]) == 0
    assert "no test part" in capsys.readouterr().out


def test_missing_and_infinite_targets(tmp_path, capsys):
    df = daily(60)
    df.loc[12, "sales"] = np.nan
    err = bad(tmp_path, capsys, df)
    assert "'sales' has a missing value (NaN) at row 13 (2022-01-13" in err
    df.loc[12, "sales"] = np.inf
    assert "'sales' holds an infinite value at row 13" in bad(tmp_path, capsys, df)


def test_non_numeric_and_constant_columns(tmp_path, capsys):
    df = daily(60)
    df["temp"] = df["temp"].astype(object)
    df.loc[4, "temp"] = "warm"
    assert "column 'temp' must be numeric, found 'warm' at row 5" in bad(
        tmp_path, capsys, df, "--past", "temp")
    df = daily(120)
    df["sales"] = 3.0
    assert "column 'sales' is constant (3)" in bad(tmp_path, capsys, df)


def test_lengths_and_columns(tmp_path, capsys):
    df = daily(60)
    err = bad(tmp_path, capsys, df, "--lookback", "50")
    assert "lookback 50 + horizon 7" in err and "training part (42 rows of 60)" in err
    assert "column 'nope' is not in the data" in bad(tmp_path, capsys, df, "--target", "nope")
    assert "fill must be one of" in bad(tmp_path, capsys, df, "--fill", "zero")
    assert "model must be one of" in bad(tmp_path, capsys, df, "--model", "transformer")
    empty = tmp_path / "empty.csv"
    empty.write_text("")
    assert run([*TRAIN, "--data", str(empty), "--out", str(tmp_path / "r")]) == 2
    assert run([*TRAIN, "--data", str(tmp_path / "absent.csv"), "--out", str(tmp_path / "r")]) == 2
    assert "does not exist" in capsys.readouterr().err


def test_parquet_reads(tmp_path, capsys):
    from rnnkit.data.series import read_table

    path = tmp_path / "sales.parquet"
    df = daily(120)
    df.to_parquet(path)
    pd.testing.assert_frame_equal(read_table(path), df)
    assert run([*TRAIN, "--data", str(path), "--out", str(tmp_path / "r")]) == 0
    assert "test: " in capsys.readouterr().out
    path.write_bytes(b"PAR1 not really")
    assert run([*TRAIN, "--data", str(path), "--out", str(tmp_path / "r2")]) == 2
    assert "could not be read as a table" in capsys.readouterr().err


def test_config_file_unknown_key(tmp_path, capsys):
    config = tmp_path / "c.yaml"
    config.write_text("horizon: 7\nlookbak: 21\n")
    data = write(daily(60), tmp_path / "d.csv")
    assert run(["train", "forecast", "--data", data, "--target", "sales", "--config",
                str(config), "--out", str(tmp_path / "r")]) == 2
    assert "unknown key 'lookbak'" in capsys.readouterr().err
