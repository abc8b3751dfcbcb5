"""The harness every registered task must pass: a task gets these tests by registering.

On the task's own tiny generated data (``TaskSpec.smoke``): train a few steps, resume with only
a larger step budget (the saved settings come back), load through the registry, predict,
evaluate, and one bad input that ``rnnkit train`` answers with one sentence and exit code 2.
"""

from __future__ import annotations

import json
import math
import os
from numbers import Number
from pathlib import Path

import pytest
import torch
import yaml

from rnnkit.cli import run
from rnnkit.tasks import Predictor, load, registry
from rnnkit.tasks import precision as inference_precision

pytestmark = pytest.mark.usefixtures("one_thread")


def _last_step(run_dir: Path) -> int:
    return int(os.readlink(run_dir / "last").split("step-")[1].split("-")[0])


@pytest.fixture(params=registry.names())
def task(request):
    spec = registry.get(request.param)
    assert spec.smoke is not None, f"task {spec.name} has no smoke data for the harness"
    return spec


def test_train_resume_load_predict_evaluate(task, tmp_path):
    smoke = task.smoke(tmp_path / "data")
    out = tmp_path / "run"
    train_cfg, cfg = task.configs(smoke.settings)
    report = task.fit(train_cfg, cfg, out)
    assert isinstance(report, dict)
    saved = json.loads((out / "config.json").read_text())
    assert saved["task"] == task.name
    first = _last_step(out)
    assert first >= 1

    steps = (train_cfg.max_steps or first) + 2
    train2, cfg2 = task.configs({"max_steps": steps}, resume_from=out)
    assert cfg2 == cfg, "--resume must restore the run's saved task settings"
    assert train2.max_steps == steps and train2.seed == train_cfg.seed
    task.fit(train2, cfg2, out, resume=True)
    assert _last_step(out) > first

    predictor = load(out)
    assert isinstance(predictor, Predictor)
    assert predictor.task == task.name and predictor.config["task"] == task.name
    assert isinstance(predictor.module, torch.nn.Module)
    predicted = predictor.predict(smoke.predict_input)
    assert predicted is not None
    if isinstance(smoke.predict_input, list):
        assert len(predicted) == len(smoke.predict_input)
    metrics = predictor.evaluate(smoke.evaluate_data)
    numbers = [v for v in metrics.values() if isinstance(v, Number) and not isinstance(v, bool)]
    assert numbers and all(math.isfinite(v) for v in numbers), metrics
    _check_precisions(out, smoke, predictor, metrics)


def _check_precisions(out, smoke, fp32, fp32_metrics):
    """Asked-for bf16 infers (on any CPU: emulated where it lacks bf16 instructions) with the
    same metric names; auto stays float32 for a tiny model, and where it probes, the task's
    probe runs on the real predictor."""
    assert fp32.precision.used == "fp32"
    bf16 = load(out, precision="bf16")
    assert bf16.precision.used == "bf16" and bf16.precision.dtype == torch.bfloat16
    assert bf16.predict(smoke.predict_input) is not None
    assert set(bf16.evaluate(smoke.evaluate_data)) == set(fp32_metrics)
    with pytest.MonkeyPatch.context() as mp:  # as on a CPU with AMX, for any model size
        mp.setattr(inference_precision, "bf16_unit", lambda: "amx_bf16")
        mp.setattr(inference_precision, "MIN_SIDE", 1)
        probed = load(out).precision
    assert probed.asked == "auto" and probed.used in ("fp32", "bf16")
    assert "inference took" in probed.reason or "changed the outputs" in probed.reason, probed


def test_a_bad_input_is_one_sentence_and_exit_2(task, tmp_path, capsys):
    smoke = task.smoke(tmp_path / "data")
    config = tmp_path / "bad.yaml"
    config.write_text(yaml.safe_dump({**smoke.settings, **smoke.bad}))
    code = run(["train", task.name, "--config", str(config), "--out", str(tmp_path / "run")])
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2, err
    assert len(err) == 1 and err[0].startswith("error: ") and "Traceback" not in err[0], err


def test_help_ends_with_a_working_example(task, capsys):
    assert run(["train", task.name, "--help"]) == 0
    out = capsys.readouterr().out
    assert f"rnnkit train {task.name}" in out and "Example:" in out
