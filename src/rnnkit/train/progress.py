"""The live progress bar (loss, lr, tokens/s, ETA) and one line per epoch.

The bar shows only when stdout is a terminal and the run is not quiet; epoch lines print unless
quiet, so logs of runs in the background still say how training went.
"""

from __future__ import annotations

import sys
from typing import Any


class Progress:
    def __init__(self, quiet: bool, total_steps: int | None, start_step: int = 0) -> None:
        self.quiet = quiet
        self.bar: Any = None
        if quiet or not sys.stdout.isatty():
            return
        from rich.progress import (
            BarColumn,
            MofNCompleteColumn,
            TextColumn,
            TimeElapsedColumn,
            TimeRemainingColumn,
        )
        from rich.progress import Progress as RichProgress

        self.bar = RichProgress(
            TextColumn("[bold]train"), BarColumn(), MofNCompleteColumn(),
            TextColumn("{task.fields[stats]}"), TimeElapsedColumn(), TextColumn("eta"),
            TimeRemainingColumn(), transient=True,
        )
        self.bar.start()
        self.task = self.bar.add_task("train", total=total_steps, completed=start_step, stats="")

    def advance(self, step: int) -> None:
        if self.bar is not None:
            self.bar.update(self.task, completed=step)

    def update(self, step: int, loss: float, lr: float, rate: float, eta: float | None) -> None:
        if self.bar is None:
            return
        stats = f"loss {loss:.4f}  lr {lr:.2e}  {rate:,.0f} tok/s"
        if eta is not None:  # time budget: rich cannot know it, say it directly
            stats += f"  time left {_hms(eta)}"
        self.bar.update(self.task, completed=step, stats=stats)

    def line(self, text: str) -> None:
        if self.quiet:
            return
        if self.bar is not None:
            self.bar.console.print(text, highlight=False, markup=False)
        else:
            print(text, flush=True)

    def close(self) -> None:
        if self.bar is not None:
            self.bar.stop()
            self.bar = None


def _hms(seconds: float) -> str:
    s = int(max(0, seconds))
    return f"{s // 3600}:{s % 3600 // 60:02d}:{s % 60:02d}"
