"""metrics.csv (and TensorBoard when it is installed) in the run directory.

Training rows fill ``train_loss, grad_norm, lr``; evaluation rows fill the validation keys. A key
that first appears later adds a column: the file is rewritten once with the wider header, and the
earlier rows get empty cells there.
"""

from __future__ import annotations

import csv
import io
import itertools
from pathlib import Path
from typing import Any

from rnnkit.train.checkpoint import write_bytes_atomic

FIXED = ["step", "epoch", "time", "train_loss", "grad_norm", "lr", "tokens_per_s"]


class MetricsLog:
    def __init__(self, run_dir: Path, keep_rows: int | None = None) -> None:
        """Open ``run_dir/metrics.csv``; with ``keep_rows`` (resume), keep that many rows, the ones
        written before the checkpoint, and drop later ones, which the resumed run writes again;
        otherwise start afresh."""
        self.path = Path(run_dir) / "metrics.csv"
        self.columns = list(FIXED)
        self.rows: list[dict[str, str]] = []
        if keep_rows and self.path.is_file():
            with open(self.path, newline="", encoding="utf-8") as f:
                reader = csv.DictReader(f)
                for col in reader.fieldnames or []:
                    if col not in self.columns:
                        self.columns.append(col)
                self.rows = list(itertools.islice(reader, keep_rows))
        self._rewrite()
        self.tb = _tensorboard(Path(run_dir))

    def log(self, values: dict[str, Any]) -> None:
        row = {k: _fmt(v) for k, v in values.items() if v is not None}
        self.rows.append(row)
        new = [k for k in row if k not in self.columns]
        if new:
            self.columns.extend(new)
            self._rewrite()
        else:
            with open(self.path, "a", newline="", encoding="utf-8") as f:
                csv.DictWriter(f, self.columns).writerow(row)
        if self.tb is not None:
            step = int(values["step"])
            for k, v in values.items():
                if k not in ("step", "epoch", "time") and isinstance(v, (int, float)):
                    self.tb.add_scalar(k, v, step)

    def _rewrite(self) -> None:
        buf = io.StringIO()
        writer = csv.DictWriter(buf, self.columns, restval="")
        writer.writeheader()
        writer.writerows(self.rows)
        write_bytes_atomic(self.path, buf.getvalue().encode())

    def close(self) -> None:
        if self.tb is not None:
            self.tb.close()
            self.tb = None


def _fmt(v: Any) -> str:
    if isinstance(v, float):
        return f"{v:.6g}"
    return str(v)


def _tensorboard(run_dir: Path) -> Any:
    """A SummaryWriter in ``run_dir/tensorboard`` if tensorboard is installed, else None."""
    try:
        from torch.utils.tensorboard import SummaryWriter
    except Exception:  # tensorboard not installed: skipped silently
        return None
    return SummaryWriter(str(run_dir / "tensorboard"))


class NoLog:
    """The log of ranks other than 0 under torchrun: rank 0 alone writes metrics.csv."""

    rows: list[dict[str, str]] = []

    def log(self, values: dict[str, Any]) -> None:
        pass

    def close(self) -> None:
        pass
