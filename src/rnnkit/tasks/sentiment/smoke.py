"""Tiny generated data for the shared task harness: 40 short texts whose label one word
decides."""

from __future__ import annotations

import csv
import random
from pathlib import Path

from rnnkit.tasks.registry import Smoke

_WORDS = {"pos": ("good", "great", "lovely"), "neg": ("bad", "dull", "awful")}
_FILLER = ("the", "film", "was", "a", "plot", "story", "very")


def _write(path: Path, rows: list[tuple[str, ...]], header: tuple[str, ...]) -> str:
    with open(path, "w", encoding="utf-8", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(header)
        writer.writerows(rows)
    return str(path)


def smoke(directory: Path) -> Smoke:
    directory.mkdir(parents=True, exist_ok=True)
    rng = random.Random(0)
    rows = []
    for i in range(40):
        label = "pos" if i % 2 else "neg"
        words = [rng.choice(_FILLER) for _ in range(rng.randint(2, 5))]
        words.insert(rng.randrange(len(words) + 1), rng.choice(_WORDS[label]))
        rows.append((" ".join(words), label))
    data = _write(directory / "train.csv", rows, ("text", "label"))
    unlabelled = _write(directory / "no_labels.csv", [(t,) for t, _ in rows], ("text",))
    return Smoke(
        settings={"data": data, "max_steps": 3, "hidden": 8, "embed": 8, "batch_size": 8,
                  "device": "cpu", "quiet": True},
        predict_input=["a good film", "the plot was dull"],
        evaluate_data=data,
        bad={"data": unlabelled},
    )
