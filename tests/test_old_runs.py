"""Run directories written before the task registry (by tests/fixtures/make_old_runs.py at
commit f382db4) still load, predict and evaluate through it."""

from __future__ import annotations

import math
from pathlib import Path

import pandas as pd
import pytest

from rnnkit.tasks import load

pytestmark = pytest.mark.usefixtures("one_thread")

ROOT = Path(__file__).parent / "fixtures" / "old_runs"
INPUTS = ROOT / "inputs"

CASES = {
    "textgen": (lambda: "the ", str(INPUTS / "text.txt")),
    "sentiment": (lambda: ["good film", "bad film"], str(INPUTS / "labels.csv")),
    "translate": (lambda: ["ein hund läuft"], [str(INPUTS / "pairs.de"), str(INPUTS / "pairs.en")]),
    "speech": (lambda: [str(INPUTS / "audio" / "train_000.wav")],
               str(INPUTS / "audio" / "train.csv")),
    "forecast": (lambda: pd.read_csv(INPUTS / "series.csv"), str(INPUTS / "series.csv")),
}


@pytest.mark.parametrize("task", sorted(CASES))
def test_an_old_run_loads_predicts_and_evaluates(task):
    make_input, data = CASES[task]
    predictor = load(ROOT / task)
    assert predictor.task == task
    assert predictor.predict(make_input()) is not None
    metrics = predictor.evaluate(data)
    assert any(isinstance(v, float) and math.isfinite(v) for v in metrics.values()), metrics
