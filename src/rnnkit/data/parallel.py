"""Parallel text for translation: two aligned files (one sentence per line, plain or .gz) or one
tab-separated file with the source and target sentences in two columns.

Pairs where either side is empty are skipped and counted rather than trained on; files of
different lengths are refused, since a missing line shifts every later pair.
"""

from __future__ import annotations

import gzip
import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import torch

from rnnkit.errors import UserError


@dataclass
class ParallelText:
    """Aligned sentence pairs and where they came from."""

    src: list[str]
    tgt: list[str]
    source: str  # the file name(s), for messages
    line_numbers: list[int] = field(default_factory=list)  # 1-based line of each pair
    skipped_empty: int = 0
    skipped_long: int = 0

    def __len__(self) -> int:
        return len(self.src)

    def subset(self, keep: Sequence[int]) -> ParallelText:
        return ParallelText([self.src[i] for i in keep], [self.tgt[i] for i in keep], self.source,
                            [self.line_numbers[i] for i in keep], self.skipped_empty,
                            self.skipped_long)


def read_lines(path: str | Path) -> list[str]:
    """The lines of a UTF-8 text file (gzip-compressed when its name ends in .gz), without
    their line endings."""
    path = Path(path)
    if not path.is_file():
        raise UserError(f"{path} does not exist or is not a file; expected a text file with one "
                        "sentence per line")
    opener = gzip.open if path.suffix == ".gz" else open
    try:
        with opener(path, "rt", encoding="utf-8", newline="") as f:
            text = f.read()
    except UnicodeDecodeError as e:
        raise UserError(f"{path} is not UTF-8 text (byte {e.start} cannot be decoded)") from None
    except (OSError, EOFError) as e:
        kind = "gzip" if opener is gzip.open else "text"
        raise UserError(f"{path} cannot be read as {kind} ({e})") from None
    # splitlines would also break at form feeds and other separators inside a sentence
    lines = text.replace("\r\n", "\n").split("\n")
    return lines[:-1] if lines and lines[-1] == "" else lines


def read_parallel(src: str | Path, tgt: str | Path | None = None) -> ParallelText:
    """Sentence pairs from two aligned files, or from one TSV file (``tgt`` None) whose first
    two columns are the source and the target."""
    if tgt is None:
        return _read_tsv(src)
    src_lines, tgt_lines = read_lines(src), read_lines(tgt)
    if len(src_lines) != len(tgt_lines):
        raise UserError(f"the source file {src} has {len(src_lines)} lines but the target file "
                        f"{tgt} has {len(tgt_lines)}; they must be aligned line by line")
    return _pairs(src_lines, tgt_lines, f"{src} / {tgt}")


def read_pairs(src: str | Path, tgt: str | Path | None, what: str = "the source") -> ParallelText:
    """``read_parallel``, with a sentence for a lone source file that is not a TSV (``what``
    names it: "the training source")."""
    if tgt is None and not str(src).lower().removesuffix(".gz").endswith(".tsv"):
        raise UserError(f"{what} {src} needs its target-side file too (or give a .tsv file with "
                        "source and target columns)")
    return read_parallel(src, tgt)


def split_pairs(data: ParallelText, fraction: float, seed: int
                ) -> tuple[ParallelText, ParallelText]:
    """``(train, validation)``: a random ``fraction`` of the pairs (at least one) held out, each
    side kept in file order."""
    n_val = max(1, round(len(data) * fraction))
    if len(data) - n_val < 1:
        raise UserError(f"{data.source} has {len(data)} sentence pairs, too few to hold out "
                        "validation pairs; give --val-src and --val-tgt")
    # torch's generator, as before: a resumed run holds out the pairs it held out at first
    order = torch.randperm(len(data), generator=torch.Generator().manual_seed(seed)).tolist()
    val, train = data.subset(sorted(order[:n_val])), data.subset(sorted(order[n_val:]))
    val.skipped_empty = val.skipped_long = 0  # the counts are the training file's
    return train, val


def _read_tsv(path: str | Path) -> ParallelText:
    src_lines, tgt_lines = [], []
    for n, line in enumerate(read_lines(path), 1):
        if not line.strip():
            src_lines.append("")
            tgt_lines.append("")
            continue
        cols = line.split("\t")
        if len(cols) < 2:
            raise UserError(f"line {n} of {path} has no tab; expected the source and target "
                            "sentences separated by a tab (or give --tgt for a second file)")
        src_lines.append(cols[0])
        tgt_lines.append(cols[1])
    return _pairs(src_lines, tgt_lines, str(path))


def _pairs(src_lines: list[str], tgt_lines: list[str], source: str) -> ParallelText:
    out = ParallelText([], [], source)
    for n, (s, t) in enumerate(zip(src_lines, tgt_lines, strict=True), 1):
        s, t = s.strip(), t.strip()
        if not s or not t:
            out.skipped_empty += 1
            continue
        out.src.append(s)
        out.tgt.append(t)
        out.line_numbers.append(n)
    if not out.src:
        raise UserError(f"{source} holds no sentence pair with text on both sides")
    return out


def filter_long(data: ParallelText, src_lengths: Sequence[int], tgt_lengths: Sequence[int],
                max_len: int) -> tuple[ParallelText, list[int]]:
    """The pairs whose two sides have at most ``max_len`` tokens, and their indices; the count of
    the others goes to ``skipped_long``."""
    keep = [i for i, (a, b) in enumerate(zip(src_lengths, tgt_lengths, strict=True))
            if a <= max_len and b <= max_len]
    out = data.subset(keep)
    out.skipped_long = len(data) - len(keep)
    return out, keep


def to_stderr(message: str) -> None:
    print(message, file=sys.stderr)


def describe_skips(data: ParallelText, max_len: int | None = None,
                   note: Callable[[str], None] | None = to_stderr) -> str | None:
    """One line about the pairs left out (passed to ``note``, standard error by default), or
    None when none were."""
    parts = []
    if data.skipped_empty:
        parts.append(f"{data.skipped_empty} with an empty side")
    if data.skipped_long:
        parts.append(f"{data.skipped_long} longer than max_len {max_len} tokens")
    if not parts:
        return None
    line = f"note: skipped {' and '.join(parts)} in {data.source} ({len(data)} pairs kept)"
    if note is not None:
        note(line)
    return line
