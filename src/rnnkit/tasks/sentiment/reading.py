"""The task's files: reading a labelled split, checking its labels, holding out the validation
split."""

from __future__ import annotations

import sys
from pathlib import Path

from rnnkit.data.table import LabelledTexts, read_labelled, stratified_split
from rnnkit.errors import UserError
from rnnkit.tasks.sentiment.config import SentimentConfig


def read_split(path: str | Path, cfg: SentimentConfig) -> LabelledTexts:
    return read_texts(path, cfg.text_column, cfg.label_column, cfg.data_format)


def read_texts(path: str | Path, text_column: str, label_column: str, fmt: str | None = None
               ) -> LabelledTexts:
    """The labelled texts of ``path``, with a note when empty texts were skipped."""
    data = read_labelled(path, text_column, label_column, fmt)
    if data.skipped_empty:
        print(f"note: skipped {data.skipped_empty} empty or whitespace-only texts in {path}.",
              file=sys.stderr)
    return data


def check_labels(data: LabelledTexts, known: list[str]) -> None:
    """A ``UserError`` naming the labels in ``data`` that the model never saw."""
    known_set = set(known)
    unseen = [label for label in data.labels if label not in known_set]
    if unseen:
        first = data.labels.index(unseen[0])
        names = ", ".join(repr(u) for u in sorted(set(unseen))[:5])
        raise UserError(f"{data.source} has labels the model never saw in training ({names}, "
                        f"first at line {data.line_numbers[first]}); the model knows "
                        f"{', '.join(repr(k) for k in known)}.")


def split_validation(train: LabelledTexts, cfg: SentimentConfig, seed: int
                     ) -> tuple[LabelledTexts, LabelledTexts]:
    """``(train, val)``: the ``--val`` file, else a stratified share of the training data
    (drawn with ``cfg.split_seed``, else ``seed``)."""
    if cfg.val is not None:
        return train, read_split(cfg.val, cfg)
    return stratified_split(train, cfg.val_fraction,
                            seed if cfg.split_seed is None else cfg.split_seed)

