"""``rnnkit export RUN_DIR --format onnx|pt2``: portable graphs of a trained run, checked
against the PyTorch model."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from rnnkit.cli.app import app


@app.command("export")
def export_command(
    run_dir: Annotated[Path, typer.Argument(help="Run directory of a training.")],
    format: Annotated[str, typer.Option(
        "--format", help="onnx (for onnxruntime; with export.json for the torch-free "
                         "predictor) or pt2 (torch.export).")] = "onnx",
    out: Annotated[Path | None, typer.Option(
        "--out", help="Directory for the graphs and export.json (default: "
                      "RUN_DIR/export-onnx or RUN_DIR/export-pt2).")] = None,
) -> None:
    """Export a run's network with dynamic batch and length, the recurrent state as inputs and
    outputs (and a one-step graph for language models and streaming speech); prints the
    parity check against PyTorch.

    Example: rnnkit export runs/lm --format onnx
    """
    from rnnkit.export.exporter import export

    directory = export(run_dir, format, out, echo=typer.echo)
    typer.echo(f"wrote {directory}")
