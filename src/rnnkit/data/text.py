"""Reading text corpora and cutting token streams into batches for truncated BPTT."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import torch

from rnnkit.errors import UserError

# What counts as a text file when the user gives a directory.
TEXT_SUFFIXES = (".txt", ".text", ".md", ".rst", ".tex", ".py", ".csv", ".tsv", ".json", ".html",
                 ".xml", ".c", ".h", ".js", ".java", ".go", ".rs")


def text_files(path: Path) -> list[Path]:
    """The files a path names: itself, or the text files under a directory, sorted."""
    path = Path(path)
    if not path.exists():
        raise UserError(f"the text file or directory {path} does not exist")
    if path.is_file():
        return [path]
    files = sorted(
        p for p in path.rglob("*")
        if p.is_file() and p.suffix.lower() in TEXT_SUFFIXES
        and not any(part.startswith(".") for part in p.relative_to(path).parts)
    )
    if not files:
        raise UserError(
            f"the directory {path} holds no text files (expected files ending in "
            f"{', '.join(TEXT_SUFFIXES[:4])}, ...)"
        )
    return files


def read_file(path: Path, errors: str = "strict") -> str:
    """One UTF-8 file; ``errors="replace"`` turns undecodable bytes into U+FFFD."""
    if errors not in ("strict", "replace"):
        raise UserError(f"errors must be 'strict' or 'replace', got {errors!r}")
    data = Path(path).read_bytes()
    if not data:
        raise UserError(f"the text file {path} is empty")
    try:
        return data.decode("utf-8", errors=errors)
    except UnicodeDecodeError as e:
        raise UserError(
            f"the text file {path} is not UTF-8: byte offset {e.start} holds "
            f"0x{data[e.start]:02x} (use --errors replace to substitute U+FFFD)"
        ) from None


def read_corpus(paths: Path | list[Path], errors: str = "strict") -> str:
    """The text of one or more files or directories, as one stream (files in sorted order)."""
    if isinstance(paths, str | Path):
        paths = [paths]
    if not paths:
        raise UserError("no text files were given")
    parts = []
    for path in paths:
        for f in text_files(Path(path)):
            text = read_file(f, errors)
            # Keep files apart so one file's last line does not run into the next one's first.
            parts.append(text if text.endswith("\n") else text + "\n")
    return "".join(parts)


def split_validation(text: str, fraction: float = 0.1) -> tuple[str, str]:
    """The first ``1 - fraction`` of the stream for training, the rest for validation."""
    cut = int(len(text) * (1 - fraction))
    return text[:cut], text[cut:]


def training_texts(data: list[str | Path], val: str | Path | None = None,
                   val_fraction: float = 0.1, errors: str = "strict") -> tuple[str, str]:
    """``(training text, validation text)``: the ``val`` file's, else the stream's last
    ``val_fraction``."""
    if not data:
        raise UserError("no training text was given; pass --data FILE_OR_DIRECTORY")
    text = read_corpus([Path(p) for p in data], errors)
    if val is not None:
        return text, read_corpus([Path(val)], errors)
    if not 0.0 < val_fraction < 1.0:
        raise UserError(f"val_fraction must be between 0 and 1, got {val_fraction}")
    return split_validation(text, val_fraction)


class StreamBatches:
    """Windows of a token stream for truncated BPTT.

    The stream is cut into ``batch_size`` contiguous rows; window ``t`` holds columns
    ``[t*seq_len, (t+1)*seq_len)`` of every row, so row ``b`` of window ``t+1`` continues row ``b``
    of window ``t`` and the recurrent state carried between them is meaningful. Each epoch starts
    the rows at a different offset (fixed by seed and epoch) so windows do not always break at the
    same places.
    """

    def __init__(self, ids: torch.Tensor, batch_size: int, seq_len: int, seed: int = 0,
                 shift: bool = True):
        if seq_len < 1 or batch_size < 1:
            raise UserError(
                f"seq_len and batch_size must be positive, got {seq_len} and {batch_size}"
            )
        if len(ids) < seq_len + 1:
            raise UserError(
                f"the corpus has {len(ids)} tokens, shorter than one window of seq_len + 1 = "
                f"{seq_len + 1} tokens; give more text or a smaller --seq-len"
            )
        self.ids = ids
        self.seq_len = seq_len
        # A small corpus gets fewer rows rather than an error: each row holds at least a window.
        self.batch_size = min(batch_size, (len(ids) - 1) // seq_len)
        self.seed = seed
        self.shift = shift

    def _rows(self, epoch: int) -> tuple[torch.Tensor, torch.Tensor]:
        offset = 0
        if self.shift and epoch > 0:
            spare = len(self.ids) - 1 - self.batch_size * self.seq_len
            g = torch.Generator().manual_seed(self.seed * 1_000_003 + epoch)
            offset = int(torch.randint(0, min(self.seq_len, spare) + 1, (1,), generator=g))
        n = (len(self.ids) - 1 - offset) // self.batch_size
        x = self.ids[offset:offset + self.batch_size * n].view(self.batch_size, n)
        y = self.ids[offset + 1:offset + 1 + self.batch_size * n].view(self.batch_size, n)
        return x, y

    def __len__(self) -> int:
        """Windows in epoch 0 (a shifted epoch may have one fewer)."""
        return (len(self.ids) - 1) // self.batch_size // self.seq_len

    def epoch(self, epoch: int = 0) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
        """(inputs, targets) windows of shape (batch, seq_len), in stream order.

        Only full windows: the tail of each row that is shorter than a window is left for a
        later epoch's offset to cover.
        """
        x, y = self._rows(epoch)
        for start in range(0, x.shape[1] - self.seq_len + 1, self.seq_len):
            yield x[:, start:start + self.seq_len], y[:, start:start + self.seq_len]
