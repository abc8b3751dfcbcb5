"""What every task does with its run directories: rebuild the trained model, write the reports."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

from rnnkit.errors import UserError


def load_run(run_dir: str | Path, task: str, which: str,
             read: Callable[[dict[str, Any]], tuple[Any, Any]],
             build_model: Callable[[Any], Any], settings: str) -> tuple[Any, Any, dict[str, Any]]:
    """``(model, parts, config)`` of a run's checkpoint ``which`` (best, else last).

    ``read(config)`` returns the model's config and the task's other saved parts (tokenizer,
    vocabularies, labels ...); ``build_model`` makes the network the weights are loaded into.
    ``settings`` names the task in the sentence of a config that lacks them.
    """
    from rnnkit.train import load_for_inference

    config, state_dict = load_for_inference(run_dir, expect_task=task, which=which)
    try:
        model_cfg, parts = read(config)
    except (KeyError, TypeError) as e:
        raise UserError(f"the config of {run_dir} is missing {settings} settings ({e}); was it "
                        "written by rnnkit?") from None
    model = build_model(model_cfg)
    try:
        model.load_state_dict(state_dict)
    except RuntimeError:
        raise UserError(f"the weights in {run_dir} do not fit the model its config describes "
                        "(edited or mixed-up checkpoint files).") from None
    return model, parts, config


def path_settings(**paths: str | Path | None) -> dict[str, str | None]:
    """The file settings a Python ``train(...)`` was given, as the strings a config holds."""
    return {k: None if v is None else str(v) for k, v in paths.items()}


def write_reports(out: str | Path, report: dict[str, Any]) -> None:
    """``metrics_val.json`` and ``metrics_test.json`` of the splits ``report`` holds."""
    for split in ("val", "test"):
        if split in report:
            (Path(out) / f"metrics_{split}.json").write_text(json.dumps(report[split], indent=2)
                                                            + "\n", encoding="utf-8")

