"""Forecasting: series checks, scalers, windows and splits, models, metrics, learning."""

import numpy as np
import pandas as pd
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from rnnkit import threads
from rnnkit.data import series as S
from rnnkit.data import windows as W
from rnnkit.data.scaling import Scaler
from rnnkit.errors import UserError
from rnnkit.metrics import forecast as M
from rnnkit.models.forecasters import (
    CHANNELS,
    HEADS,
    MODELS,
    ForecasterConfig,
    build_forecaster,
)
from rnnkit.tasks import forecast as F

pytestmark = pytest.mark.usefixtures("one_thread")


def hourly(n=500, seed=0, period=24):
    rng = np.random.default_rng(seed)
    t = np.arange(n)
    return pd.DataFrame({
        "time": pd.date_range("2021-03-01", periods=n, freq="h"),
        "y": 5 + np.sin(2 * np.pi * t / period) + 0.1 * rng.standard_normal(n),
        "x": rng.standard_normal(n) * 3 + 1,
    })


# -- scalers --------------------------------------------------------------------------------

@pytest.mark.parametrize("kind", ["standard", "robust", "none"])
def test_scaler_inverts_exactly(kind):
    values = np.random.default_rng(1).standard_normal((200, 3)) * [1, 10, 1e3] + [0, -5, 7e3]
    scaler = Scaler.fit(values, kind, ["a", "b", "c"])
    back = Scaler.from_dict(scaler.to_dict()).inverse(scaler.transform(values))
    np.testing.assert_allclose(back, values, rtol=1e-12, atol=1e-9)
    if kind == "standard":
        np.testing.assert_allclose(scaler.transform(values).mean(0), 0, atol=1e-12)
        np.testing.assert_allclose(scaler.transform(values).std(0), 1, atol=1e-12)
    if kind == "robust":
        np.testing.assert_allclose(scaler.center, np.median(values, 0))


def test_scalers_use_training_statistics_only():
    df = hourly(400)
    df.loc[300:, "y"] += 100.0  # a shift inside validation and test must not leak into scaling
    task = F.build_task(df, F.ForecastConfig(target="y", past="x", lookback=24, horizon=6,
                                             val=0.15, test=0.15))
    val_start = task.splits[0]
    assert val_start == int(400 * 0.7)
    center = task.spec.scalers["target"]["center"][0]
    assert center == pytest.approx(df["y"].iloc[:val_start].mean())
    assert task.spec.scalers["past"]["scale"][0] == pytest.approx(
        df["x"].iloc[:val_start].std(ddof=0))


# -- splits and windows ---------------------------------------------------------------------

@settings(max_examples=40, deadline=None)
@given(n=st.integers(60, 400), lookback=st.integers(1, 30), horizon=st.integers(1, 12),
       stride=st.integers(1, 5), val=st.sampled_from([0.1, 0.2]), test=st.sampled_from([0.1, 0.2]))
def test_windows_never_cross_splits(n, lookback, horizon, stride, val, test):
    index = pd.RangeIndex(n)
    val_start, test_start = W.split_points(index, val, test)
    assert val_start == int(n * round(1 - val - test, 10))
    assert n - test_start == int(n * test)
    parts = [(0, val_start, stride), (val_start, test_start, 1), (test_start, n, 1)]
    for begin, end, step in parts:
        starts = W.window_starts(begin, end, lookback, horizon, step)
        if len(starts):
            assert starts.min() >= max(begin, lookback)  # look-back starts at row 0 or later
            assert starts.max() + horizon <= end  # targets stay inside the part
            assert (np.diff(starts) == step).all()
            # every window that fits is there
            assert starts[0] == max(begin, lookback)
            assert end - horizon - starts[-1] < step
        else:
            assert end - max(begin, lookback) < horizon


def test_split_by_dates_and_rows():
    index = pd.date_range("2020-01-01", periods=100, freq="D")
    assert W.split_points(index, "2020-03-01", "2020-03-21") == (60, 80)
    assert W.split_points(index, 10, 20) == (70, 80)
    assert W.split_points(index, "10", 0.2) == (70, 80)
    with pytest.raises(UserError, match="no training part"):
        W.split_points(index, 0.5, 0.6)


def test_task_windows_and_batches():
    task = F.build_task(hourly(300), F.ForecastConfig(target="y", lookback=24, horizon=6,
                                                      stride=2))
    val_start, test_start = task.splits
    assert task.train_starts.max() + 6 <= val_start
    assert task.val_starts.min() >= val_start and task.val_starts.max() + 6 <= test_start
    x, cp, cf, y = next(iter(task.train_batches(0)))
    start = int(task.train_starts[torch.randperm(len(task.train_starts),
                                                 generator=torch.Generator().manual_seed(0))[0]])
    torch.testing.assert_close(x[0, :, 0], task.y[start - 24:start, 0])
    torch.testing.assert_close(y[0, :, 0], task.y[start:start + 6, 0])
    # hourly data: hour, weekday, day and month as sine/cosine pairs, over look-back and horizon
    assert task.spec.calendar == ["hour", "weekday", "day", "month"]
    assert cp.shape == (len(x), 24, 8) and cf.shape == (len(x), 6, 8)
    torch.testing.assert_close(cf[0], task.known[start:start + 6])
    # the same epoch gives the same batches (the trainer's resume relies on it)
    again = next(iter(task.train_batches(0)))
    torch.testing.assert_close(again[0], x)


# -- series checks --------------------------------------------------------------------------

def test_frequency_gaps_and_fill():
    df = hourly(50).drop(index=[10, 11])
    with pytest.raises(UserError, match=r"2 missing time stamps .* 2021-03-01 10:00"):
        S.prepare(df, ["y"], ["y"])
    filled = S.prepare(df, ["y"], ["y"], fill="ffill")
    assert len(filled.frame) == 50 and filled.freq == "h"
    assert filled.frame["y"].iloc[10] == filled.frame["y"].iloc[9]
    inter = S.prepare(df, ["y"], ["y"], fill="interpolate")
    ys = inter.frame["y"].to_numpy()
    assert ys[10] == pytest.approx(ys[9] + (ys[12] - ys[9]) / 3)


def test_unsorted_rows_are_sorted_and_long_format_pivots():
    df = hourly(30).sample(frac=1, random_state=0)
    prepared = S.prepare(df, ["y"], ["y"])
    assert prepared.index.is_monotonic_increasing
    long = pd.DataFrame({"id": ["a"] * 3 + ["b"] * 3, "t": ["2020-01-01", "2020-01-02",
                         "2020-01-03"] * 2, "v": [1.0, 2, 3, 10, 20, 30]})
    wide = S.long_to_wide(long, "id", "t", "v")
    assert list(wide.columns) == ["t", "a", "b"] and wide["b"].tolist() == [10, 20, 30]


def test_calendar_features_cycle():
    index = pd.date_range("2021-01-01", periods=48, freq="h")
    feats = S.calendar_features(index, ["hour"])
    np.testing.assert_allclose(feats[:24], feats[24:], atol=1e-12)
    np.testing.assert_allclose(feats[:, 0] ** 2 + feats[:, 1] ** 2, 1)
    assert S.default_calendar("D") == ["weekday", "day", "month"]
    assert S.default_calendar("MS") == ["month"]
    assert S.season_length("h") == 24 and S.season_length("D") == 7
    assert S.season_length("MS") == 12 and S.season_length(None) == 1


# -- models ---------------------------------------------------------------------------------

@pytest.mark.parametrize("model", MODELS)
@pytest.mark.parametrize("channels", CHANNELS)
@pytest.mark.parametrize("head", HEADS)
def test_model_output_shapes(model, channels, head):
    cfg = ForecasterConfig(model=model, n_targets=3, n_past=2, n_known=1, lookback=20,
                           horizon=7, channels=channels, head=head, hidden=8,
                           levels=[0.5, 0.9], arch="lstm" if model == "seq2seq" else "gru")
    net = build_forecaster(cfg)
    out = net(torch.randn(4, 20, 3), torch.randn(4, 20, 2), torch.randn(4, 7, 1))
    assert out.shape == (4, 7, 3, cfg.outputs())
    assert net.point(out).shape == (4, 7, 3)
    loss = net.loss(out, torch.randn(4, 7, 3))
    loss.backward()
    assert all(p.grad is not None for p in net.parameters())


def test_normalisation_makes_forecasts_shift_equivariant():
    for norm in ("last", "revin"):
        net = build_forecaster(ForecasterConfig(lookback=16, horizon=4, norm=norm, hidden=8,
                                                n_targets=2, dropout=0.0)).eval()
        x = torch.randn(3, 16, 2)
        with torch.no_grad():
            torch.testing.assert_close(net(x + 50.0), net(x) + 50.0, atol=1e-4, rtol=1e-4)


def test_segrnn_pads_lookback_and_horizon_not_divisible_by_segment():
    cfg = ForecasterConfig(model="segrnn", lookback=30, horizon=13, segment=8, hidden=8)
    out = build_forecaster(cfg)(torch.randn(2, 30, 1))
    assert out.shape == (2, 13, 1, 1)


def test_gaussian_and_quantile_intervals_widen_with_level():
    x = torch.randn(5, 24, 2)
    for head in ("gaussian", "quantile"):
        net = build_forecaster(ForecasterConfig(lookback=24, horizon=6, n_targets=2, head=head,
                                                hidden=8, levels=[0.5, 0.8, 0.95]))
        with torch.no_grad():
            out = net(x)
        widths = [(lambda lo_hi: lo_hi[1] - lo_hi[0])(net.interval(out, lv))
                  for lv in (0.5, 0.8, 0.95)]
        assert (widths[0] >= 0).all()
        assert (widths[1] >= widths[0]).all() and (widths[2] >= widths[1]).all()


# -- metrics --------------------------------------------------------------------------------

def test_metrics_against_hand_computed_values():
    y = np.array([1.0, 2.0, 3.0, 4.0])
    yhat = np.array([1.0, 3.0, 1.0, 4.0])
    assert M.mae(y, yhat) == pytest.approx(3 / 4)
    assert M.mse(y, yhat) == pytest.approx(5 / 4)
    assert M.rmse(y, yhat) == pytest.approx(np.sqrt(5 / 4))
    # sMAPE: terms 0, 2/5, 4/4, 0 -> 100 * 1.4 / 4
    assert M.smape(y, yhat) == pytest.approx(35.0)
    assert M.smape(np.zeros(2), np.zeros(2)) == 0.0
    history = np.array([1.0, 3.0, 2.0, 6.0])  # naive one-step errors 2, 1, 4 -> 7/3
    assert M.mase_scale(history)[0] == pytest.approx(7 / 3)
    assert M.mase_scale(history, season=2)[0] == pytest.approx((1 + 3) / 2)
    assert M.mase(y[:, None], yhat[:, None], [7 / 3]) == pytest.approx(0.75 / (7 / 3))
    assert M.coverage(y, y - [0, 1, 1, 0], y + [1, -0.5, 1, 0]) == pytest.approx(3 / 4)


# -- learning -------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def trained_sine(tmp_path_factory):
    rng = np.random.default_rng(0)
    t = np.arange(1500)
    df = pd.DataFrame({"y": np.sin(2 * np.pi * t / 20) + 0.15 * rng.standard_normal(len(t))})
    out = tmp_path_factory.mktemp("sine") / "run"
    with threads.one_thread():
        trained = F.train(df, out, target="y", lookback=40, horizon=10, hidden=32,
                          head="quantile", levels="0.5,0.8,0.95", season=7, epochs=20,
                          quiet=True)
    return df, trained


def test_learns_a_noisy_sine_better_than_naive_forecasts(trained_sine):
    df, trained = trained_sine
    m = trained.test.metrics
    # noise variance 0.0225; repeating the last value scores about 1.1
    assert m.loc["model", "mse"] < 0.15
    assert m.loc["model", "mse"] < 0.2 * m.loc["last_value", "mse"]
    assert m.loc["model", "mse"] < 0.2 * m.loc["seasonal_naive", "mse"]
    assert m.loc["model", "mae"] < m.loc["last_value", "mae"]
    # intervals: wider levels cover more of the truth
    cov = [m.loc["model", f"coverage_{p}"] for p in (50, 80, 95)]
    assert cov[0] < cov[1] < cov[2]
    assert cov[2] > 0.75


def test_report_evaluate_and_the_predictor_protocol(trained_sine, tmp_path):
    from rnnkit.tasks import Predictor

    df, trained = trained_sine
    assert isinstance(trained, Predictor) and trained.task == "forecast"
    assert trained.module is trained.model
    report = trained.metrics
    assert set(report) == {"train", "test"} and "val_mse" in report["train"]
    assert report["test"] == trained.test.to_dict()
    assert report["test"]["windows"] == len(trained.test.times)
    assert report["test"]["model"]["mse"] == pytest.approx(trained.test.metrics.loc["model", "mse"])
    # evaluate: the same test-part backtest, flat, from a frame or a file
    df.to_csv(tmp_path / "sine.csv", index=False)
    flat = trained.evaluate(str(tmp_path / "sine.csv"))
    assert flat == trained.evaluate(df)
    assert flat["mse"] == pytest.approx(report["test"]["model"]["mse"])
    assert flat["last_value_mae"] == pytest.approx(report["test"]["last_value"]["mae"])
    assert "coverage_80" in flat and "seasonal_naive_mse" in flat
    assert F.summary(report, tmp_path)[0].startswith(f"test: {report['test']['windows']} windows")


def test_backtest_baselines_and_predict(trained_sine):
    df, trained = trained_sine
    result = trained.backtest(df, start=0.1, stride=5)
    y = df["y"].to_numpy()
    first = len(df) - int(len(df) * 0.1)
    assert result.times[0] == first and result.times[1] == first + 5
    np.testing.assert_allclose(result.actual[0, :, 0], y[first:first + 10])
    np.testing.assert_allclose(result.baselines["last_value"][0, :, 0], y[first - 1])
    np.testing.assert_allclose(result.baselines["seasonal_naive"][0, :, 0],
                               [y[first + h - 7 * ((h // 7) + 1)] for h in range(10)])
    forecast = trained.predict(df)
    assert list(forecast["step"]) == list(range(len(df), len(df) + 10))
    assert {"y", "y_lo50", "y_hi95"} <= set(forecast.columns)
    assert (forecast["y_lo95"] <= forecast["y_lo50"]).all()
    assert (forecast["y_hi50"] <= forecast["y_hi95"]).all()
    assert (forecast["y_lo80"] <= forecast["y"]).all() and (forecast["y"] <= forecast["y_hi80"]).all()
    # the forecast continues the sine (period 20) far better than a flat line would
    future = np.sin(2 * np.pi * np.arange(len(df), len(df) + 10) / 20)
    assert np.mean((forecast["y"] - future) ** 2) < 0.1


@pytest.mark.parametrize("model", MODELS)
@pytest.mark.parametrize("arch", ["rnn", "lstm", "gru", "mingru", "minlstm"])
def test_every_recurrent_layer_fits_every_model(model, arch):
    cfg = ForecasterConfig(model=model, arch=arch, n_targets=2, n_past=1, n_known=1,
                           lookback=20, horizon=5, hidden=8, layers=2)
    net = build_forecaster(cfg)
    out = net(torch.randn(3, 20, 2), torch.randn(3, 20, 1), torch.randn(3, 5, 1))
    assert out.shape == (3, 5, 2, 1)
    net.loss(out, torch.randn(3, 5, 2)).backward()


@pytest.mark.parametrize("model", ["seq2seq", "segrnn"])
def test_future_covariates_are_used(model, tmp_path):
    # the target jumps by 3 whenever a promotion (known ahead) runs: only a model that reads the
    # future covariates can forecast the jumps
    rng = np.random.default_rng(2)
    promo = (rng.random(800) < 0.3).astype(float)
    df = pd.DataFrame({"promo": promo, "y": 3 * promo + 0.1 * rng.standard_normal(800)})
    trained = F.train(df, tmp_path / "run", target="y", future="promo", lookback=14, horizon=7,
                      hidden=16, model=model, norm="none", season=7, epochs=15, quiet=True)
    m = trained.test.metrics
    assert m.loc["model", "mse"] < 0.1 * m.loc["last_value", "mse"]
