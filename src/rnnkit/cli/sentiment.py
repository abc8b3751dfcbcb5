"""``rnnkit train sentiment`` and ``rnnkit classify``: text classification from labelled files."""

from __future__ import annotations

import csv
import sys
from pathlib import Path

import typer

from rnnkit.cli import common
from rnnkit.cli.app import app, train_app
from rnnkit.errors import UserError


@train_app.command("sentiment")
def train_sentiment(
    data: Path = typer.Option(..., "--data", help="Training file: .csv, .tsv, .jsonl, or .txt "
                              "with one 'LABEL sentence' per line."),
    out: Path = typer.Option(..., "--out", help="Run directory to write."),
    val: Path | None = typer.Option(None, "--val", help="Validation file (default: a stratified "
                                    "--val-fraction of the training data)."),
    test: Path | None = typer.Option(None, "--test", help="Test file, evaluated after training."),
    config: common.ConfigOpt = None,
    epochs: common.EpochsOpt = None,
    max_steps: common.MaxStepsOpt = None,
    max_time: common.MaxTimeOpt = None,
    batch_size: common.BatchSizeOpt = None,
    lr: common.LrOpt = None,
    seed: common.SeedOpt = None,
    device: common.DeviceOpt = None,
    resume: common.ResumeOpt = False,
    quiet: common.QuietOpt = None,
    arch: str | None = typer.Option(None, "--arch", help="lstm, gru, rnn, mingru or minlstm."),
    layers: int | None = typer.Option(None, "--layers", help="Recurrent layers."),
    hidden: int | None = typer.Option(None, "--hidden", help="Hidden units per direction."),
    embed: int | None = typer.Option(None, "--embed", help="Word embedding width."),
    pooling: str | None = typer.Option(None, "--pooling", help="last, max, mean or attention."),
    dropout: float | None = typer.Option(None, "--dropout", help="Dropout before the output."),
    word_dropout: float | None = typer.Option(None, "--word-dropout",
                                              help="Share of words dropped in training."),
    ensemble: int | None = typer.Option(None, "--ensemble", help="Classifiers trained with "
                                        "their own seeds, probabilities averaged (costs that "
                                        "many times the compute)."),
    workers: int | None = typer.Option(None, "--workers", help="Ensemble members trained at "
                                       "once (default: one per CPU core; 1 on a GPU)."),
    max_len: int | None = typer.Option(None, "--max-len", help="Tokens kept per text."),
    tokenizer: str | None = typer.Option(None, "--tokenizer", help="word (default) or bpe."),
    min_freq: int | None = typer.Option(None, "--min-freq", help="Rarer words have no vector "
                                        "of their own (only their n-grams', or <unk>'s)."),
    subwords: bool | None = typer.Option(None, "--subwords/--no-subwords", help="Word vectors "
                                         "add their character n-grams' (default on), so rare "
                                         "and unseen words get a vector from their spelling."),
    max_vocab: int | None = typer.Option(None, "--max-vocab", help="Most words kept."),
    vectors: Path | None = typer.Option(None, "--vectors", help="GloVe or word2vec text file."),
    freeze_vectors: bool | None = typer.Option(None, "--freeze-vectors",
                                               help="Keep the word vectors fixed."),
    init_from: Path | None = typer.Option(None, "--init-from", help="A text-generation run "
                                          "directory to start the tokenizer and encoder from."),
    class_weights: str | None = typer.Option(None, "--class-weights",
                                             help="none or balanced (for imbalanced classes)."),
    text_column: str | None = typer.Option(None, "--text-column", help="Default: text."),
    label_column: str | None = typer.Option(None, "--label-column", help="Default: label."),
    data_format: str | None = typer.Option(None, "--format", help="csv, tsv, jsonl or lines "
                                           "(default: from the file name)."),
    val_fraction: float | None = typer.Option(None, "--val-fraction",
                                              help="Held out for validation without --val."),
) -> None:
    """Train a text classifier (sentiment or any labels) and evaluate it.

    Writes checkpoints, metrics.csv, metrics_val.json / metrics_test.json and confusion-matrix
    PNGs to the run directory.

    Example: rnnkit train sentiment --data train.csv --val dev.csv --test test.csv --out runs/sst
    """
    from rnnkit.tasks import sentiment

    settings = {
        **common.shared(epochs=epochs, max_steps=max_steps, max_time=max_time,
                        batch_size=batch_size, lr=lr, seed=seed, device=device, quiet=quiet),
        "data": str(data), "val": _str(val), "test": _str(test), "arch": arch, "layers": layers,
        "hidden": hidden, "embed": embed, "pooling": pooling, "dropout": dropout,
        "word_dropout": word_dropout, "ensemble": ensemble, "workers": workers,
        "max_len": max_len, "tokenizer": tokenizer, "min_freq": min_freq, "max_vocab": max_vocab,
        "subwords": subwords,
        "vectors": _str(vectors), "freeze_vectors": freeze_vectors, "init_from": _str(init_from),
        "class_weights": class_weights, "text_column": text_column, "label_column": label_column,
        "data_format": data_format, "val_fraction": val_fraction,
    }
    train_cfg, cfg = sentiment.configs(settings, config, resume_from=out if resume else None)
    try:
        report = sentiment.fit(train_cfg, cfg, out, resume, fit_fn=common.fit)
    except KeyboardInterrupt:  # ensemble workers save their checkpoints, like the trainer
        raise typer.Exit(130) from None
    for split in ("val", "test"):
        if split in report:
            m = report[split]
            typer.echo(f"{split}: accuracy {m['accuracy']:.4f}  macro-F1 {m['macro_f1']:.4f}  "
                       f"({m['examples']} texts; confusion matrix in {out}/confusion_{split}.png)")
    typer.echo(f"run saved in {out}/ (classify with: rnnkit classify {out} --text \"...\")")


def _str(path: Path | None) -> str | None:
    return None if path is None else str(path)


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
    clf = sentiment.load(run_dir)
    if text is not None:
        labels, probs = clf.predict(text)
        for t, label, p in zip(text, labels, probs.tolist(), strict=True):
            shares = "  ".join(f"{c}: {q:.3f}" for c, q in zip(clf.labels, p, strict=True))
            typer.echo(f"{label}\t({shares})\t{t}")
            if explain:
                typer.echo("  " + " ".join(f"{w}:{a:.2f}" for w, a in clf.explain(t)))
        return
    if explain:
        raise UserError("--explain works with --text, not --input.")
    column = text_column or clf.config.get("sentiment", {}).get("text_column", "text")
    data = read_labelled(input, column, fmt=data_format, require_labels=False)
    if data.skipped_empty:
        typer.echo(f"note: skipped {data.skipped_empty} empty or whitespace-only texts in "
                   f"{input}.", err=True)
    labels, probs = clf.predict(data.texts)
    f = open(output, "w", encoding="utf-8", newline="") if output else sys.stdout
    try:
        writer = csv.writer(f)
        writer.writerow(["line", "text", "label", *(f"prob_{c}" for c in clf.labels)])
        for line, t, label, p in zip(data.line_numbers, data.texts, labels, probs.tolist(),
                                     strict=True):
            writer.writerow([line, t, label, *(f"{q:.6f}" for q in p)])
    finally:
        if output:
            f.close()
    if output:
        typer.echo(f"{len(labels)} predictions written to {output}")
