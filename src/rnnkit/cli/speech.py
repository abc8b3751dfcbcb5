"""``rnnkit transcribe``: speech recognition with a trained CTC recogniser (``rnnkit train
speech`` is generated from the task's settings)."""

from __future__ import annotations

import sys
from pathlib import Path

import typer

from rnnkit.cli.app import app
from rnnkit.cli.files import writable
from rnnkit.errors import UserError


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
    from rnnkit.data.audio import read_chunks, write_transcripts
    from rnnkit.tasks import speech

    if beam < 1:
        raise UserError(f"--beam must be at least 1, found {beam}.")
    if lm_weight < 0:
        raise UserError(f"--lm-weight must not be negative, found {lm_weight}.")
    writable(output)
    rec = speech.load(run_dir)
    if lm_weight > 0 and rec.lm is None:
        raise UserError(f"{run_dir} was trained without a language model (lm_order 0), so "
                        "--lm-weight has nothing to weigh.")
    if stream is not None:
        if stream <= 0 or output is not None:
            raise UserError("--stream takes a positive chunk length in seconds and prints; it "
                            "does not write --output.")
        for f in files:
            text = ""
            for text in rec.stream(read_chunks(f, rec.features.sample_rate, stream)):
                sys.stdout.write(f"\r{f}\t{text}")
                sys.stdout.flush()
            sys.stdout.write(f"\r{f}\t{text}\n")
        return
    texts = rec.transcribe(files, beam=beam, lm_weight=lm_weight)
    if output is None:
        for f, text in zip(files, texts, strict=True):
            typer.echo(f"{f}\t{text}")
        return
    write_transcripts(output, files, texts)
    typer.echo(f"{len(texts)} transcripts written to {output}")
