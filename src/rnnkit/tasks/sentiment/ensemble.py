"""The sentiment side of an ensemble (``rnnkit.train.ensemble`` trains and merges the members):
the members' settings, the merged config, and the report of the merged model.

All members share the vocabulary (each builds it from the same training data) and one
validation split, drawn with the ensemble's seed rather than each member's own.
"""

from __future__ import annotations

import dataclasses
import functools
from collections.abc import Callable
from pathlib import Path
from typing import Any

from rnnkit.tasks.runs import write_reports
from rnnkit.tasks.sentiment.config import TASK, SentimentConfig
from rnnkit.tasks.sentiment.predictor import load
from rnnkit.tasks.sentiment.reading import read_split, split_validation
from rnnkit.train.ensemble import merge_configs, train_ensemble

SHARED = ("tokenizer", "labels")  # what every member must have alike


def fit_ensemble(train_cfg, cfg: SentimentConfig, out: str | Path, resume: bool,
                 train_member: Callable[..., dict[str, float]]) -> dict[str, Any]:
    """Train ``cfg.ensemble`` members with ``train_member(train_cfg, run_dir, resume, cfg=...)``,
    merge them into ``out``, then report on the validation (and test) data like a single run."""
    out = Path(out)
    if cfg.test is not None:  # members never read it: find a bad test file before training
        read_split(cfg.test, cfg)
    member_cfg = dataclasses.replace(cfg, ensemble=1, test=None, workers=None,
                                     split_seed=train_cfg.seed if cfg.split_seed is None
                                     else cfg.split_seed)
    settings = {"task": TASK, "sentiment": dataclasses.asdict(cfg),
                "train": dataclasses.asdict(train_cfg)}
    results = train_ensemble(functools.partial(train_member, cfg=member_cfg), train_cfg, out,
                             cfg.ensemble, run_config=settings, workers=cfg.workers,
                             resume=resume,
                             merged_config=functools.partial(merge_configs, settings=settings,
                                                             out=out, shared=SHARED))
    clf = load(out)
    val = split_validation(read_split(cfg.data, cfg), cfg, train_cfg.seed)[1]
    report: dict[str, Any] = {"train": {
        "members": cfg.ensemble,
        "member_val_accuracy": [r["validation_accuracy"] for r in results]}}
    report["val"] = clf.evaluate_data(val, out / "confusion_val.png")
    if cfg.test is not None:
        report["test"] = clf.evaluate_data(read_split(cfg.test, cfg), out / "confusion_test.png")
    write_reports(out, report)
    return report
