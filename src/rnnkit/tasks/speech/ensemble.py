"""The speech side of an ensemble (``rnnkit.train.ensemble`` trains and merges the members):
the members' settings, the merged config, and the report of the merged recogniser.

All members read the same recordings with the same features, alphabet, statistics and LM, and
share one validation split, drawn with the ensemble's seed rather than each member's own.
"""

from __future__ import annotations

import dataclasses
import functools
from collections.abc import Callable
from pathlib import Path
from typing import Any

from rnnkit.data.features import Featurizer
from rnnkit.data.utterances import load_data
from rnnkit.tasks.runs import write_reports
from rnnkit.tasks.speech.config import TASK, SpeechConfig
from rnnkit.tasks.speech.predictor import load
from rnnkit.train.ensemble import merge_configs, train_ensemble

SHARED = ("features", "alphabet", "normalizer", "lm")  # what every member must have alike


def fit_ensemble(train_cfg, cfg: SpeechConfig, out: str | Path, resume: bool,
                 train_member: Callable[..., dict[str, float]], build: Callable[..., Any]
                 ) -> dict[str, Any]:
    """Train ``cfg.ensemble`` members with ``train_member(train_cfg, run_dir, resume, cfg=...)``,
    merge them into ``out``, then report on the validation (and test) data like a single run.

    The data is read here first (``build``, as each member will): a bad recording is one
    sentence before any member starts, and the validation split is the members' own."""
    out = Path(out)
    split_seed = train_cfg.seed if cfg.split_seed is None else cfg.split_seed
    member_cfg = dataclasses.replace(cfg, ensemble=1, test=None, workers=None,
                                     split_seed=split_seed)
    task, _ = build(dataclasses.replace(member_cfg, augment=False), train_cfg.batch_size,
                    train_cfg.seed)
    val = task.val  # kept while the members train; the training features are let go
    test = None if cfg.test is None else \
        load_data(cfg.test, Featurizer(task.features), task.alphabet, cfg, cfg.subsample)
    del task
    settings = {"task": TASK, "speech": dataclasses.asdict(cfg),
                "train": dataclasses.asdict(train_cfg)}
    results = train_ensemble(functools.partial(train_member, cfg=member_cfg), train_cfg, out,
                             cfg.ensemble, run_config=settings, workers=cfg.workers,
                             resume=resume,
                             merged_config=functools.partial(merge_configs, settings=settings,
                                                             out=out, shared=SHARED))
    rec = load(out)
    report: dict[str, Any] = {"train": {"members": cfg.ensemble,
                                        "member_val_cer": [r["val_cer"] for r in results]}}
    report["val"] = rec.evaluate_data(val, out / "errors_val.csv")
    if test is not None:
        report["test"] = rec.evaluate_data(test, out / "errors_test.csv")
    write_reports(out, report)
    return report
