"""``rnnkit classify``: labels and class probabilities of texts from a trained classifier
(``rnnkit train sentiment`` is generated from the task's settings, see ``rnnkit.cli.train``)."""

from __future__ import annotations

import csv
import sys
from pathlib import Path

import typer

from rnnkit.cli.app import app
from rnnkit.cli.files import writable
from rnnkit.errors import UserError


@app.command()
def classify(
    run_dir: Path = typer.Argument(..., help="A sentiment run directory."),
    text: list[str] | None = typer.Option(None, "--text", help="A text to classify (repeatable)."),
    input: Path | None = typer.Option(None, "--input", help="A .csv, .tsv or .jsonl file with a "
                                      "text column, or a .txt file of one text per line."),
    output: Path | None = typer.Option(None, "--output", help="CSV of predictions to write "
                                       "(default: standard output)."),
    text_column: str | None = typer.Option(None, "--text-column",
                                           help="Default: the one the model was trained with."),
    data_format: str | None = typer.Option(None, "--format", help="csv, tsv, jsonl or lines."),
    explain: bool = typer.Option(False, "--explain", help="Show each word's attention weight "
                                 "(models trained with --pooling attention)."),
) -> None:
    """Predict labels and class probabilities for texts with a trained classifier.

    Example: rnnkit classify runs/sst --text "a gorgeous, witty film"
    """
    from rnnkit.data.table import read_labelled
    from rnnkit.tasks import sentiment

    if (text is None) == (input is None):
        raise UserError("give either --text or --input (one of them, not both).")
    if output is not None and input is None:
        raise UserError("--output needs --input; with --text the predictions are printed.")
    if explain and input is not None:
        raise UserError("--explain works with --text, not --input.")
    writable(output)
    clf = sentiment.load(run_dir)
    if text is not None:
        for t, p in zip(text, clf.predict(text), strict=True):
            shares = "  ".join(f"{c}: {q:.3f}" for c, q in p["probabilities"].items())
            typer.echo(f"{p['label']}\t({shares})\t{t}")
            if explain:
                typer.echo("  " + " ".join(f"{w}:{a:.2f}" for w, a in clf.explain(t)))
        return
    column = text_column or clf.config.get("sentiment", {}).get("text_column", "text")
    data = read_labelled(input, column, fmt=data_format, require_labels=False)
    if data.skipped_empty:
        typer.echo(f"note: skipped {data.skipped_empty} empty or whitespace-only texts in "
                   f"{input}.", err=True)
    predictions = clf.predict(data.texts)
    f = open(output, "w", encoding="utf-8", newline="") if output else sys.stdout
    try:
        writer = csv.writer(f)
        writer.writerow(["line", "text", "label", *(f"prob_{c}" for c in clf.labels)])
        for line, t, p in zip(data.line_numbers, data.texts, predictions, strict=True):
            writer.writerow([line, t, p["label"],
                             *(f"{p['probabilities'][c]:.6f}" for c in clf.labels)])
    finally:
        if output:
            f.close()
    if output:
        typer.echo(f"{len(predictions)} predictions written to {output}")
