"""Pretrained word vectors from a GloVe or word2vec text file, matched to a vocabulary.

GloVe files hold ``word v1 ... vd`` per line; word2vec text files have the same lines after a
``count dim`` header. Only the vocabulary's words are kept, so a large file costs one pass of
reading, not its size in memory.
"""

from __future__ import annotations

import gzip
from dataclasses import dataclass
from pathlib import Path

import torch

from rnnkit.data.vocab import Vocab
from rnnkit.errors import UserError, not_a_file


@dataclass
class Coverage:
    """How much of a vocabulary a vectors file covers, by word types and by word occurrences."""

    found: int
    total: int
    token_share: float | None = None  # of the corpus' word occurrences, when counts were given

    @property
    def type_share(self) -> float:
        return self.found / self.total if self.total else 0.0

    def __str__(self) -> str:
        s = f"{self.found:,} of {self.total:,} vocabulary words ({self.type_share:.1%})"
        if self.token_share is not None:
            s += f", {self.token_share:.1%} of word occurrences"
        return s


def read_vectors(path: str | Path, vocab: Vocab, counts: dict[str, int] | None = None
                 ) -> tuple[torch.Tensor, torch.Tensor, Coverage]:
    """``(vectors, found, coverage)``: a ``(len(vocab), dim)`` matrix with the file's vector in
    the rows of the words it has (case-insensitive fallback) and zeros elsewhere, and a boolean
    mask of those rows. The padding and unknown rows are never filled."""
    path = Path(path)
    if not path.is_file():
        raise not_a_file("the word-vectors file", path)
    opener = gzip.open if path.suffix.lower() == ".gz" else open
    wanted = {t: i for i, t in enumerate(vocab.tokens) if i >= 2}
    lower: dict[str, list[int]] = {}
    for t, i in wanted.items():
        lower.setdefault(t.lower(), []).append(i)
    rows: dict[int, list[float]] = {}
    exact: set[int] = set()
    dim = None
    with opener(path, "rt", encoding="utf-8", errors="replace") as f:
        for line_no, line in enumerate(f, 1):
            parts = line.rstrip().split(" ")
            if line_no == 1 and len(parts) == 2 and all(p.isdigit() for p in parts):
                continue  # word2vec header: count and dimension
            if len(parts) < 2:
                continue
            if dim is None:
                dim = len(parts) - 1
            elif len(parts) - 1 != dim:
                raise UserError(f"{path}, line {line_no}: a vector of {len(parts) - 1} numbers, "
                                f"the file's first vector has {dim}.")
            word = parts[0]
            targets = [wanted[word]] if word in wanted else [
                i for i in lower.get(word.lower(), []) if i not in exact]
            if not targets:
                continue
            try:
                values = [float(v) for v in parts[1:]]
            except ValueError:
                raise UserError(f"{path}, line {line_no}: the vector of {word!r} holds a value "
                                "that is not a number.") from None
            for i in targets:
                rows[i] = values
            if word in wanted:
                exact.add(wanted[word])
    if dim is None:
        raise UserError(f"the word-vectors file {path} holds no vectors.")
    matrix = torch.zeros(len(vocab), dim)
    found = torch.zeros(len(vocab), dtype=torch.bool)
    for i, values in rows.items():
        matrix[i] = torch.tensor(values)
        found[i] = True
    share = None
    if counts:
        total = sum(counts.values())
        hit = sum(c for t, c in counts.items() if t in vocab and found[vocab.index[t]])
        share = hit / total if total else 0.0
    return matrix, found, Coverage(int(found.sum()), len(vocab) - 2, share)
