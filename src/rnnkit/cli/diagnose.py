"""``rnnkit diagnose``: vanishing-gradient diagnostics (filled in by the core-layers work)."""

from pathlib import Path


def demo_step(out: Path, quiet: bool) -> None:
    raise NotImplementedError("the gradient diagnostic has not landed yet")
