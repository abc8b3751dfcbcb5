"""``rnnkit train speech`` and ``rnnkit transcribe``: speech recognition with a CTC recogniser."""

from __future__ import annotations

import csv
import sys
from pathlib import Path

import typer

from rnnkit.cli import common
from rnnkit.cli.app import app, train_app
from rnnkit.errors import UserError


@train_app.command("speech")
def train_speech(
    data: Path = typer.Option(..., "--data", help="Manifest (.csv/.tsv/.jsonl with path and "
                              "transcript columns) or a folder of recordings."),
    out: Path = typer.Option(..., "--out", help="Run directory to write."),
    val: Path | None = typer.Option(None, "--val", help="Validation manifest or folder "
                                    "(default: a --val-fraction of the training data)."),
    test: Path | None = typer.Option(None, "--test", help="Test manifest or folder, evaluated "
                                     "after training."),
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
    bidirectional: bool | None = typer.Option(
        None, "--bidirectional/--unidirectional",
        help="Read each recording both ways (best accuracy) or forward only (can stream)."),
    subsample: int | None = typer.Option(None, "--subsample", help="1, 2 or 4 feature frames "
                                         "per recurrent step (causal stride-2 convolutions)."),
    features: str | None = typer.Option(None, "--features", help="logmel or mfcc."),
    sample_rate: int | None = typer.Option(None, "--sample-rate", help="Hz the audio is "
                                           "resampled to (default: the first recording's)."),
    no_resample: bool = typer.Option(False, "--no-resample", help="A recording at another "
                                     "sample rate is an error instead of being resampled."),
    spec_augment: bool | None = typer.Option(None, "--spec-augment/--no-spec-augment",
                                             help="Time and frequency masks in training."),
    unknown_chars: str | None = typer.Option(
        None, "--unknown-chars", help="Transcript characters outside --alphabet: error, drop "
        "(the characters) or skip (the recording)."),
    alphabet: str | None = typer.Option(None, "--alphabet", help="The characters to recognise "
                                        "(default: those of the training transcripts)."),
    skip_bad: bool = typer.Option(False, "--skip-bad", help="Leave out unreadable, silent or "
                                  "too-short recordings (with a note) instead of stopping."),
    lm_order: int | None = typer.Option(None, "--lm-order", help="Character n-gram LM order "
                                        "for beam search (0: none)."),
    val_fraction: float | None = typer.Option(None, "--val-fraction",
                                              help="Held out for validation without --val."),
) -> None:
    """Train a speech recogniser (recurrent encoder + CTC) on recordings with transcripts.

    Writes checkpoints, metrics.csv, metrics_val.json (WER, CER) and errors_val.csv (one row per
    utterance) to the run directory; with --test also metrics_test.json and errors_test.csv.

    Example: rnnkit train speech --data train.csv --val dev.csv --out runs/asr --max-time 10m
    """
    from rnnkit.tasks import speech

    settings = {
        **common.shared(epochs=epochs, max_steps=max_steps, max_time=max_time,
                        batch_size=batch_size, lr=lr, seed=seed, device=device, quiet=quiet),
        "data": str(data), "val": None if val is None else str(val),
        "test": None if test is None else str(test), "arch": arch, "layers": layers,
        "hidden": hidden, "bidirectional": bidirectional, "subsample": subsample,
        "features": features, "sample_rate": sample_rate,
        "resample": False if no_resample else None, "spec_augment": spec_augment,
        "unknown_chars": unknown_chars, "alphabet": alphabet,
        "skip_bad": True if skip_bad else None, "lm_order": lm_order,
        "val_fraction": val_fraction,
    }
    train_cfg, cfg = speech.configs(settings, config, resume_from=out if resume else None)
    report = speech.fit(train_cfg, cfg, out, resume, fit_fn=common.fit)
    for split in ("val", "test"):
        if split in report:
            m = report[split]
            typer.echo(f"{split}: WER {m['wer']:.4f}  CER {m['cer']:.4f}  ({m['utterances']} "
                       f"utterances; per-utterance errors in {out}/errors_{split}.csv)")
    typer.echo(f"run saved in {out}/ (transcribe with: rnnkit transcribe {out} FILE.wav)")


@app.command()
def transcribe(
    run_dir: Path = typer.Argument(..., help="A speech run directory."),
    files: list[Path] = typer.Argument(..., help="Recordings to transcribe (WAV, FLAC, ...)."),
    beam: int = typer.Option(1, "--beam", help="Prefix beam width (1: greedy)."),
    lm_weight: float = typer.Option(0.0, "--lm-weight", help="Weight of the character n-gram "
                                    "LM in beam search (0: none)."),
    stream: float | None = typer.Option(None, "--stream", help="Feed the audio in chunks of "
                                        "this many seconds and print the text as it grows "
                                        "(unidirectional models)."),
    output: Path | None = typer.Option(None, "--output", help="CSV (file, transcript) to write "
                                       "instead of printing."),
) -> None:
    """Transcribe recordings with a trained speech recogniser.

    Example: rnnkit transcribe runs/asr hello.wav --beam 8 --lm-weight 0.5
    """
    from rnnkit.data.audio import read_audio
    from rnnkit.tasks import speech

    if beam < 1:
        raise UserError(f"--beam must be at least 1, found {beam}.")
    if lm_weight < 0:
        raise UserError(f"--lm-weight must not be negative, found {lm_weight}.")
    rec = speech.load(run_dir)
    if lm_weight > 0 and rec.lm is None:
        raise UserError(f"{run_dir} was trained without a language model (lm_order 0), so "
                        "--lm-weight has nothing to weigh.")
    if stream is not None:
        if stream <= 0 or output is not None:
            raise UserError("--stream takes a positive chunk length in seconds and prints; it "
                            "does not write --output.")
        rate = rec.features.sample_rate
        step = max(1, int(stream * rate))
        for f in files:
            samples = read_audio(f, rate)
            text = ""
            for text in rec.stream(samples[i:i + step] for i in range(0, len(samples), step)):
                sys.stdout.write(f"\r{f}\t{text}")
                sys.stdout.flush()
            sys.stdout.write(f"\r{f}\t{text}\n")
        return
    texts = rec.transcribe(files, beam=beam, lm_weight=lm_weight)
    if output is None:
        for f, text in zip(files, texts, strict=True):
            typer.echo(f"{f}\t{text}")
        return
    with open(output, "w", encoding="utf-8", newline="") as fh:
        w = csv.writer(fh)
        w.writerow(["path", "transcript"])
        w.writerows(zip(map(str, files), texts, strict=True))
    typer.echo(f"{len(texts)} transcripts written to {output}")
