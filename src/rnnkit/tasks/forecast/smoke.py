"""Tiny generated data for the harness every task passes (tests/test_task_harness.py)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from rnnkit.tasks.registry import Smoke


def smoke(directory: Path) -> Smoke:
    """300 hourly rows of a noisy daily sine in ``directory/series.csv``; a few steps of a tiny
    model; the bad settings name a target column the file does not have."""
    directory.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(0)
    frame = pd.DataFrame({
        "date": pd.date_range("2024-01-01", periods=300, freq="h"),
        "load": np.sin(np.arange(300) / 24 * 2 * np.pi) + 0.1 * rng.standard_normal(300),
    })
    path = directory / "series.csv"
    frame.to_csv(path, index=False)
    settings = {"data": str(path), "target": "load", "lookback": 24, "horizon": 6, "hidden": 8,
                "max_steps": 3, "quiet": True}
    return Smoke(settings=settings, predict_input=frame, evaluate_data=str(path),
                 bad={"target": "nope"})
