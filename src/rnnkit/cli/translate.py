"""``rnnkit translate``: translate sentences with a trained run (``rnnkit train translate`` is
generated from the task's settings, in ``rnnkit.cli.train``)."""

from __future__ import annotations

from pathlib import Path

import typer

from rnnkit.cli.app import app
from rnnkit.cli.files import writable
from rnnkit.errors import UserError


@app.command("translate")
def translate_cmd(
    run_dir: Path = typer.Argument(..., help="A translation run directory."),
    text: list[str] | None = typer.Option(None, "--text", help="A sentence to translate "
                                          "(repeatable)."),
    input: Path | None = typer.Option(None, "--input", help="A file of source sentences, one "
                                      "per line (plain or .gz)."),
    output: Path | None = typer.Option(None, "--output", help="File for the translations, one "
                                       "per line (default: standard output)."),
    beam: int | None = typer.Option(None, "--beam", help="Beam size (1: greedy; default: the "
                                    "run's setting)."),
    length_penalty: float | None = typer.Option(None, "--length-penalty", help="Length "
                                                "normalisation exponent (0: none)."),
    max_len_ratio: float | None = typer.Option(None, "--max-len-ratio", help="Output length "
                                               "limit as a multiple of the source length."),
    plot_attention: Path | None = typer.Option(None, "--plot-attention", help="Save the "
                                               "attention heat map of the first sentence as a "
                                               "PNG."),
) -> None:
    """Translate sentences with a trained model (beam search).

    Example: rnnkit translate runs/de-en --text "Ein Hund läuft im Schnee." --plot-attention att.png
    """
    from rnnkit.data.parallel import read_lines
    from rnnkit.tasks import translate

    if (text is None) == (input is None):
        raise UserError("give either --text or --input (one of them, not both)")
    if output is not None and input is None:
        raise UserError("--output needs --input; with --text the translations are printed")
    if beam is not None and beam < 1:
        raise UserError(f"--beam must be at least 1, found {beam}")
    writable(output)
    writable(plot_attention)
    tr = translate.load(run_dir)
    sentences = text if text is not None else read_lines(input)
    source = "--text" if text is not None else str(input)
    out = tr.translate(sentences, beam=beam, length_penalty=length_penalty,
                       max_len_ratio=max_len_ratio, source=source)
    if output is not None:
        output.write_text("".join(line + "\n" for line in out), encoding="utf-8")
        typer.echo(f"{len(out)} translations written to {output}")
    else:
        for line in out:
            typer.echo(line)
    if plot_attention is not None:
        first = next((s for s in sentences if s.strip()), None)
        if first is None:
            raise UserError("there is no non-empty sentence to plot the attention of")
        tr.plot_attention(first, plot_attention, beam=beam)
        typer.echo(f"attention heat map saved to {plot_attention}")
