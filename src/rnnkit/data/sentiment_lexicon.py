"""VADER's sentiment lexicon (Hutto and Gilbert, ICWSM 2014), which ships inside the
``vaderSentiment`` package: about 7,500 English words, slang and emoticons, each rated from -4
(extremely negative) to +4 (extremely positive) by ten people. Its words with a clear sign make
a small real classification set that needs no download (``rnnkit demo``).
"""

from __future__ import annotations

import random
import re
from dataclasses import dataclass
from pathlib import Path

from rnnkit.errors import UserError

_WORD = re.compile(r"[a-z]+(?:['-][a-z]+)*")


@dataclass(frozen=True)
class Rated:
    """One lexicon entry: the token, its mean rating and the ten ratings."""

    token: str
    mean: float
    ratings: tuple[int, ...]


def lexicon_path() -> Path:
    try:
        import vaderSentiment
    except ImportError:
        raise UserError("the sentiment example needs vaderSentiment (it ships the VADER "
                        "lexicon): pip install vaderSentiment.") from None
    return Path(vaderSentiment.__file__).parent / "vader_lexicon.txt"


def read_lexicon(path: str | Path | None = None) -> list[Rated]:
    """The entries of a VADER lexicon file (token, mean, standard deviation, the ratings as a
    list), by default the one in vaderSentiment."""
    path = Path(path) if path is not None else lexicon_path()
    out = []
    for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
        if not line.strip():
            continue
        parts = line.split("\t")
        try:
            ratings = tuple(int(r) for r in parts[3].strip(" []").split(","))
            out.append(Rated(parts[0], float(parts[1]), ratings))
        except (IndexError, ValueError):
            raise UserError(f"line {number} of {path} is not 'token<TAB>mean<TAB>sd<TAB>"
                            f"[ratings]': {line[:60]!r}.") from None
    return out


def labelled_words(min_strength: float = 1.0, path: str | Path | None = None
                   ) -> list[tuple[str, str]]:
    """``(word, "positive" | "negative")`` for the lexicon's words (letters, with inner
    hyphens or apostrophes; no emoticons) whose mean rating is at least ``min_strength`` from
    neutral, in the lexicon's order."""
    return [(e.token, "positive" if e.mean > 0 else "negative") for e in read_lexicon(path)
            if _WORD.fullmatch(e.token) and abs(e.mean) >= min_strength]


def split_words(rows: list[tuple[str, str]], test_fraction: float, seed: int = 0
                ) -> tuple[list[tuple[str, str]], list[tuple[str, str]]]:
    """``(train, test)``: a random ``test_fraction`` of the words held out."""
    order = list(rows)
    random.Random(seed).shuffle(order)
    n_test = max(1, round(len(order) * test_fraction))
    return order[n_test:], order[:n_test]
