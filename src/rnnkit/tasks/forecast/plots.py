"""PNG plots of forecasts and backtests (matplotlib, no display needed)."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import pandas as pd

if TYPE_CHECKING:
    from rnnkit.tasks.forecast.backtest import Backtest

MAX_PANELS = 4  # more targets than this: the first four are drawn


def _figure(panels: int):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(panels, 1, figsize=(10, 2.8 * panels), squeeze=False)
    return plt, fig, axes[:, 0]


def _save(plt, fig, path: str | Path) -> Path:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return path


def plot_forecast(history: pd.DataFrame, forecast: pd.DataFrame, targets: list[str],
                  horizon: int, time_col: str, path: str | Path) -> Path:
    """The last four horizons of history, the forecast and its intervals (widest lightest)."""
    shown = targets[:MAX_PANELS]
    plt, fig, axes = _figure(len(shown))
    recent = history.iloc[-4 * horizon:]
    when = forecast[time_col]
    for ax, col in zip(axes, shown, strict=True):
        ax.plot(recent.index, recent[col], color="black", lw=1, label="history")
        levels = sorted({c.rsplit("_lo", 1)[1] for c in forecast.columns
                         if c.startswith(f"{col}_lo")}, key=int, reverse=True)
        for i, tag in enumerate(levels):
            ax.fill_between(when, forecast[f"{col}_lo{tag}"], forecast[f"{col}_hi{tag}"],
                            color="tab:blue", alpha=0.15 + 0.15 * i, lw=0,
                            label=f"{tag}% interval")
        ax.plot(when, forecast[col], color="tab:blue", lw=1.5, label="forecast")
        ax.set_title(col)
        ax.legend(loc="upper left", fontsize=8)
    return _save(plt, fig, path)


def plot_backtest(result: Backtest, targets: list[str], horizon: int, path: str | Path) -> Path:
    """The test period and the forecasts of non-overlapping windows (with the widest interval),
    the model's beside the last value's; the title holds the MSE over every window."""
    shown = targets[:MAX_PANELS]
    plt, fig, axes = _figure(len(shown))
    times = result.times
    history = result.history
    first = history.index.get_loc(times[0])
    span = history.iloc[max(0, first - horizon):]
    # every horizon-th window tiles the period without overlap
    picks = [i for i in range(len(times)) if (i % horizon) == 0]
    m = result.metrics
    widest = max(result.intervals) if result.intervals else None
    for j, (ax, col) in enumerate(zip(axes, shown, strict=True)):
        ax.plot(span.index, span[col], color="black", lw=1, label="actual")
        for n, i in enumerate(picks):
            at = history.index[first + i: first + i + horizon]
            if widest is not None:
                lo, hi = result.intervals[widest]
                ax.fill_between(at, lo[i, :, j], hi[i, :, j], color="tab:blue", alpha=0.2, lw=0,
                                label=f"{round(widest * 100)}% interval" if n == 0 else None)
            ax.plot(at, result.predicted[i, :, j], color="tab:blue", lw=1.2,
                    label="model" if n == 0 else None)
            ax.plot(at, result.baselines["last_value"][i, :, j], color="tab:orange", lw=0.8,
                    ls="--", label="last value" if n == 0 else None)
        ax.set_title(f"{col}: MSE model {m.loc['model', 'mse']:.4g}, last value "
                     f"{m.loc['last_value', 'mse']:.4g}, seasonal naive "
                     f"{m.loc['seasonal_naive', 'mse']:.4g} (all targets, {len(times)} windows)",
                     fontsize=9)
        ax.legend(loc="upper left", fontsize=8)
    return _save(plt, fig, path)
