"""Tiny generated sentence pairs for the shared task harness (tests/test_task_harness.py)."""

from __future__ import annotations

import random
from pathlib import Path

from rnnkit.tasks.registry import Smoke

# a toy language: each source word has one fixed target word, in the same order
WORDS = {"ein": "a", "hund": "dog", "katze": "cat", "rot": "red", "blau": "blue",
         "lauft": "runs", "springt": "jumps", "im": "in", "park": "park", "haus": "house"}


def toy_pairs(n: int, seed: int) -> list[tuple[str, str]]:
    """``n`` sentence pairs of 2 to 6 words of the toy language."""
    rng = random.Random(seed)
    src_words = sorted(WORDS)
    out = []
    for _ in range(n):
        words = [rng.choice(src_words) for _ in range(rng.randint(2, 6))]
        out.append((" ".join(words), " ".join(WORDS[w] for w in words)))
    return out


def write_pairs(directory: Path, name: str, pairs: list[tuple[str, str]]) -> tuple[str, str]:
    """``name.de`` and ``name.en`` in ``directory``, aligned line by line; their paths."""
    directory.mkdir(parents=True, exist_ok=True)
    paths = directory / f"{name}.de", directory / f"{name}.en"
    for path, side in zip(paths, zip(*pairs, strict=True), strict=True):
        path.write_text("".join(line + "\n" for line in side), encoding="utf-8")
    return str(paths[0]), str(paths[1])


def smoke(directory: Path) -> Smoke:
    src, tgt = write_pairs(directory, "train", toy_pairs(60, 0))
    test = write_pairs(directory, "test", toy_pairs(8, 1))
    # one line short of the source: the files are refused as misaligned
    _, short = write_pairs(directory, "short", toy_pairs(59, 2))
    return Smoke(
        settings={"src": src, "tgt": tgt, "vocab_size": 60, "hidden": 16, "embed": 16,
                  "eval_bleu_sentences": 4, "beam": 2, "batch_size": 16, "max_steps": 3,
                  "quiet": True, "device": "cpu"},
        predict_input=["ein hund lauft", "katze im haus"],
        evaluate_data=list(test),
        bad={"tgt": short},
    )
