"""Sentiment analysis, or any text classification: labelled texts in, a classifier out.

From Python::

    from rnnkit.tasks import sentiment
    clf = sentiment.train("train.csv", "runs/sst", val="dev.csv", test="test.csv", max_time="5m")
    clf.predict(["a gorgeous, witty film"])   # -> [{"label": "1", "probabilities": {...}}]
    clf = sentiment.load("runs/sst")          # later, in another process
    clf.evaluate("test.csv")                  # accuracy, macro-F1, per class, confusion

Texts are split into words (or, when the encoder starts from a text-generation run, into that
run's tokens), batched by similar length, and read by a bidirectional recurrent encoder. A word's
vector adds its character n-grams' (``subwords``), so words rare or unseen in training still
get one from their spelling. ``ensemble=N`` trains N classifiers independently and averages
them (``rnnkit.train.ensemble``).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from rnnkit.data.padding import pad_batch
from rnnkit.data.text_encoders import (
    SubwordEncoder,
    WordEncoder,
    encode_texts,
    encoder_from_dict,
)
from rnnkit.tasks import registry
from rnnkit.tasks.registry import TaskSpec
from rnnkit.tasks.runs import path_settings, write_reports
from rnnkit.tasks.sentiment.config import TASK, TRAIN_DEFAULTS, SentimentConfig
from rnnkit.tasks.sentiment.predictor import (
    SentimentClassifier,
    index_subwords,
    load,
    predict_logits,
)
from rnnkit.tasks.sentiment.reading import check_labels, read_split, split_validation
from rnnkit.tasks.sentiment.smoke import smoke
from rnnkit.tasks.sentiment.task import SentimentTask, build, copy_language_model, fit

__all__ = [
    "SPEC", "TASK", "TRAIN_DEFAULTS", "SentimentClassifier", "SentimentConfig", "SentimentTask",
    "SubwordEncoder", "WordEncoder", "build", "check_labels", "configs", "copy_language_model",
    "encode_texts", "encoder_from_dict", "fit", "index_subwords", "load", "pad_batch",
    "predict_logits", "read_split", "split_validation", "summary", "train", "write_reports",
]


def summary(report: dict[str, Any], out: Path) -> list[str]:
    """What ``rnnkit train sentiment`` prints after training."""
    lines = []
    for split in ("val", "test"):
        if split in report:
            m = report[split]
            lines.append(f"{split}: accuracy {m['accuracy']:.4f}  macro-F1 {m['macro_f1']:.4f}  "
                         f"({m['examples']} texts; confusion matrix in "
                         f"{out}/confusion_{split}.png)")
    lines.append(f"run saved in {out}/ (classify with: rnnkit classify {out} --text \"...\")")
    return lines


SPEC = TaskSpec(
    name=TASK,
    config=SentimentConfig,
    fit=fit,
    load=load,
    help="Train a text classifier (sentiment or any labels) and evaluate it.",
    example="rnnkit train sentiment --data train.csv --val dev.csv --test test.csv "
            "--out runs/sst",
    train_defaults=TRAIN_DEFAULTS,
    summary=summary,
    smoke=smoke,
)
# (TrainConfig, SentimentConfig) from settings, a config file and the run being resumed
configs = SPEC.configs


def train(data: str | Path, out: str | Path, *, val: str | Path | None = None,
          test: str | Path | None = None, resume: bool = False, config: str | Path | None = None,
          **settings) -> SentimentClassifier:
    """Train a classifier on ``data`` into run directory ``out``.

    ``settings`` are any SentimentConfig or TrainConfig fields (``arch="gru"``,
    ``pooling="attention"``, ``max_time="3m"``, ...). Returns the trained classifier; its
    metrics are in ``.metrics`` (``val`` and, with ``test``, ``test``).
    """
    return registry.train(TASK, out, config=config, resume=resume, **settings,
                          **path_settings(data=data, val=val, test=test))
