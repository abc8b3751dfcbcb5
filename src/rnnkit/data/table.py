"""Labelled texts from the files users have: CSV, TSV, JSON Lines, or ``LABEL sentence`` lines.

The standard library's csv and json readers are enough here (and keep line numbers for error
messages); labels are kept as strings, so ``1`` in a CSV and ``1`` in JSON are the same class.
"""

from __future__ import annotations

import csv
import json
import random
from dataclasses import dataclass, field
from pathlib import Path

from rnnkit.errors import UserError, not_a_file

FORMATS = ("csv", "tsv", "jsonl", "lines")
_SUFFIX_FORMAT = {".csv": "csv", ".tsv": "tsv", ".tab": "tsv", ".jsonl": "jsonl",
                  ".ndjson": "jsonl", ".json": "jsonl", ".txt": "lines"}


@dataclass
class LabelledTexts:
    """Texts and their labels (strings), and how many empty texts the reader skipped."""

    texts: list[str]
    labels: list[str]
    skipped_empty: int = 0
    source: str = ""
    line_numbers: list[int] = field(default_factory=list)

    def __len__(self) -> int:
        return len(self.texts)

    def subset(self, indices: list[int]) -> LabelledTexts:
        return LabelledTexts([self.texts[i] for i in indices], [self.labels[i] for i in indices],
                             0, self.source, [self.line_numbers[i] for i in indices])


def detect_format(path: Path, fmt: str | None = None) -> str:
    """``fmt`` if given, else the format the file's suffix names (``.gz`` ignored)."""
    if fmt is not None:
        if fmt not in FORMATS:
            raise UserError(f"the data format must be one of {', '.join(FORMATS)}, found {fmt!r}.")
        return fmt
    suffixes = [s.lower() for s in Path(path).suffixes if s.lower() != ".gz"]
    found = _SUFFIX_FORMAT.get(suffixes[-1] if suffixes else "")
    if found is None:
        raise UserError(f"cannot tell the format of {path} from its name: expected a file ending "
                        "in .csv, .tsv, .jsonl or .txt (LABEL sentence lines), or give the format.")
    return found


def _open_text(path: Path):
    if path.suffix.lower() == ".gz":
        import gzip

        return gzip.open(path, "rt", encoding="utf-8", newline="")
    return open(path, encoding="utf-8", newline="")


def read_labelled(path: str | Path, text_column: str = "text", label_column: str = "label",
                  fmt: str | None = None, require_labels: bool = True) -> LabelledTexts:
    """Read labelled texts from ``path``; empty or whitespace-only texts are skipped and counted.

    With ``require_labels=False`` a missing label column is allowed (labels are then ``""``), for
    files that are only to be classified.
    """
    path = Path(path)
    if not path.is_file():
        raise not_a_file("the data file", path)
    fmt = detect_format(path, fmt)
    try:
        with _open_text(path) as f:
            if fmt in ("csv", "tsv"):
                rows = _read_delimited(f, path, "," if fmt == "csv" else "\t", text_column,
                                       label_column, require_labels)
            elif fmt == "jsonl":
                rows = _read_jsonl(f, path, text_column, label_column, require_labels)
            else:
                rows = _read_lines(f, path, require_labels)
    except UnicodeDecodeError as e:
        raise UserError(f"the data file {path} is not UTF-8 text (byte offset {e.start}).") from None
    texts, labels, lines, skipped = [], [], [], 0
    for line, text, label in rows:
        if not text.strip():
            skipped += 1
            continue
        texts.append(text)
        labels.append(label)
        lines.append(line)
    if not texts:
        extra = f" ({skipped} empty or whitespace-only texts were skipped)" if skipped else ""
        raise UserError(f"the data file {path} holds no texts to use{extra}.")
    return LabelledTexts(texts, labels, skipped, str(path), lines)


def _label_str(value: object, path: Path, line: int, require: bool) -> str:
    if value is None or (isinstance(value, str) and not value.strip()):
        if require:
            raise UserError(f"{path}, line {line}: the row has no label.")
        return ""
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    if isinstance(value, (dict, list)):
        raise UserError(f"{path}, line {line}: the label must be a string or a number, "
                        f"found {type(value).__name__}.")
    return str(value).strip()


def _missing_columns(path: Path, found: list[str], wanted: list[str]) -> UserError:
    missing = [c for c in wanted if c not in found]
    return UserError(f"{path} has no column {' or '.join(repr(c) for c in missing)}; the columns "
                     f"found are {', '.join(repr(c) for c in found) or 'none'} (choose them with "
                     "--text-column and --label-column).")


def _read_delimited(f, path, delimiter, text_column, label_column, require_labels):
    reader = csv.reader(f, delimiter=delimiter)
    try:
        header = next(reader)
    except StopIteration:
        raise UserError(f"the data file {path} is empty.") from None
    except csv.Error as e:
        raise UserError(f"{path}, line 1: malformed header ({e}).") from None
    header = [h.strip().lstrip("\ufeff") for h in header]
    wanted = [text_column] + ([label_column] if require_labels else [])
    if any(c not in header for c in wanted):
        raise _missing_columns(path, header, wanted)
    ti = header.index(text_column)
    li = header.index(label_column) if label_column in header else None
    rows = []
    while True:
        line = reader.line_num + 1
        try:
            row = next(reader)
        except StopIteration:
            break
        except csv.Error as e:
            raise UserError(f"{path}, line {line}: malformed row ({e}).") from None
        if not row:  # a blank line between rows
            continue
        if len(row) != len(header):
            raise UserError(f"{path}, line {line}: malformed row with {len(row)} fields, the "
                            f"header has {len(header)}.")
        label = _label_str(row[li], path, line, require_labels) if li is not None else ""
        rows.append((line, row[ti], label))
    return rows


def _read_jsonl(f, path, text_column, label_column, require_labels):
    rows = []
    for line, raw in enumerate(f, 1):
        if not raw.strip():
            continue
        try:
            obj = json.loads(raw)
        except json.JSONDecodeError:
            raise UserError(f"{path}, line {line}: malformed row (not a JSON object).") from None
        if not isinstance(obj, dict):
            raise UserError(f"{path}, line {line}: malformed row (a JSON {type(obj).__name__}, "
                            "expected an object).")
        wanted = [text_column] + ([label_column] if require_labels else [])
        if any(c not in obj for c in wanted):
            raise UserError(str(_missing_columns(path, list(obj), wanted)).rstrip(".")
                            + f" at line {line}.")
        text = obj[text_column]
        if text is None:
            text = ""
        if not isinstance(text, str):
            raise UserError(f"{path}, line {line}: the text must be a string, "
                            f"found {type(text).__name__}.")
        rows.append((line, text, _label_str(obj.get(label_column), path, line, require_labels)))
    if not rows:
        raise UserError(f"the data file {path} is empty.")
    return rows


def _read_lines(f, path, require_labels):
    """``LABEL sentence`` per line (SST's format); without labels, each line is a text."""
    rows = []
    for line, raw in enumerate(f, 1):
        raw = raw.rstrip("\r\n")
        if not raw.strip():
            continue
        if not require_labels:
            rows.append((line, raw, ""))
            continue
        parts = raw.strip().split(None, 1)
        rows.append((line, parts[1] if len(parts) > 1 else "", parts[0]))
    if not rows:
        raise UserError(f"the data file {path} is empty.")
    return rows


def label_order(labels: list[str]) -> list[str]:
    """The distinct labels, in numeric order when they are all integers, else alphabetical."""
    distinct = set(labels)
    try:
        return sorted(distinct, key=int)
    except ValueError:
        return sorted(distinct)


def stratified_split(data: LabelledTexts, fraction: float, seed: int = 0
                     ) -> tuple[LabelledTexts, LabelledTexts]:
    """``(rest, held_out)`` with about ``fraction`` of each class held out (at least one example
    of every class with two or more), shuffled with ``seed``."""
    if not 0.0 < fraction < 1.0:
        raise UserError(f"the validation fraction must be between 0 and 1, found {fraction}.")
    rng = random.Random(seed)
    by_class: dict[str, list[int]] = {}
    for i, label in enumerate(data.labels):
        by_class.setdefault(label, []).append(i)
    keep, held = [], []
    for label in sorted(by_class):
        idx = by_class[label]
        rng.shuffle(idx)
        n = round(len(idx) * fraction)
        n = min(max(n, 1), len(idx) - 1) if len(idx) > 1 else 0
        held += idx[:n]
        keep += idx[n:]
    if not held:
        raise UserError(f"{data.source} is too small to hold out a validation set; give one "
                        "with --val.")
    return data.subset(sorted(keep)), data.subset(sorted(held))
