"""``rnnkit train translate`` and ``rnnkit translate``: machine translation from sentence pairs."""

from __future__ import annotations

from pathlib import Path

import typer

from rnnkit.cli import common
from rnnkit.cli.app import app, train_app
from rnnkit.errors import UserError


def _str(path: Path | None) -> str | None:
    return None if path is None else str(path)


@train_app.command("translate")
def train_translate(
    src: Path = typer.Option(..., "--src", help="Source sentences, one per line (plain or .gz), "
                             "or a .tsv file with source and target columns."),
    tgt: Path | None = typer.Option(None, "--tgt", help="Target sentences, aligned line by line "
                                    "with --src."),
    out: Path = typer.Option(..., "--out", help="Run directory to write."),
    val_src: Path | None = typer.Option(None, "--val-src", help="Validation source sentences "
                                        "(default: --val-fraction of the training pairs)."),
    val_tgt: Path | None = typer.Option(None, "--val-tgt", help="Validation target sentences."),
    test_src: Path | None = typer.Option(None, "--test-src", help="Test source sentences, "
                                         "translated and scored after training."),
    test_tgt: Path | None = typer.Option(None, "--test-tgt", help="Test target sentences."),
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
    arch: str | None = typer.Option(None, "--arch", help="gru, lstm, rnn, mingru or minlstm."),
    layers: int | None = typer.Option(None, "--layers", help="Encoder layers (bidirectional)."),
    dec_layers: int | None = typer.Option(None, "--dec-layers", help="Decoder layers."),
    hidden: int | None = typer.Option(None, "--hidden", help="Hidden units per direction."),
    embed: int | None = typer.Option(None, "--embed", help="Subword embedding width."),
    attention: str | None = typer.Option(None, "--attention",
                                         help="multiplicative (Luong) or additive (Bahdanau)."),
    input_feeding: bool | None = typer.Option(None, "--input-feeding/--no-input-feeding",
                                              help="Feed the last attentional vector back in."),
    dropout: float | None = typer.Option(None, "--dropout", help="Dropout rate."),
    tie_embeddings: bool | None = typer.Option(None, "--tie-embeddings/--no-tie-embeddings",
                                               help="Output layer shares the decoder embedding."),
    tokenizer: str | None = typer.Option(None, "--tokenizer", help="bpe or unigram subwords."),
    vocab_size: int | None = typer.Option(None, "--vocab-size", help="Subwords per vocabulary."),
    joint_vocab: bool | None = typer.Option(None, "--joint-vocab/--separate-vocab",
                                            help="One vocabulary for both languages or one each."),
    max_len: int | None = typer.Option(None, "--max-len", help="Training pairs with more "
                                       "subwords on either side are skipped."),
    label_smoothing: float | None = typer.Option(None, "--label-smoothing",
                                                 help="Label smoothing of the loss."),
    teacher_forcing: float | None = typer.Option(None, "--teacher-forcing", help="Share of "
                                                 "decoder steps fed the reference token."),
    teacher_forcing_decay: float | None = typer.Option(None, "--teacher-forcing-decay",
                                                       help="Lowered by this each epoch."),
    beam: int | None = typer.Option(None, "--beam", help="Beam size for evaluation."),
    val_fraction: float | None = typer.Option(None, "--val-fraction",
                                              help="Held out for validation without --val-src."),
) -> None:
    """Train an encoder-decoder with attention on sentence pairs; scores BLEU and chrF.

    Writes checkpoints, metrics.csv and metrics_val.json / metrics_test.json (beam-search BLEU,
    chrF and perplexity) to the run directory.

    Example: rnnkit train translate --src train.de --tgt train.en --val-src val.de --val-tgt val.en --out runs/de-en --max-time 30m
    """
    from rnnkit.tasks import translate

    settings = {
        **common.shared(epochs=epochs, max_steps=max_steps, max_time=max_time,
                        batch_size=batch_size, lr=lr, seed=seed, device=device, quiet=quiet),
        "src": str(src), "tgt": _str(tgt), "val_src": _str(val_src), "val_tgt": _str(val_tgt),
        "test_src": _str(test_src), "test_tgt": _str(test_tgt), "arch": arch, "layers": layers,
        "dec_layers": dec_layers, "hidden": hidden, "embed": embed, "attention": attention,
        "input_feeding": input_feeding, "dropout": dropout, "tie_embeddings": tie_embeddings,
        "tokenizer": tokenizer, "vocab_size": vocab_size, "joint_vocab": joint_vocab,
        "max_len": max_len, "label_smoothing": label_smoothing,
        "teacher_forcing": teacher_forcing, "teacher_forcing_decay": teacher_forcing_decay,
        "beam": beam, "val_fraction": val_fraction,
    }
    train_cfg, cfg = translate.configs({k: v for k, v in settings.items() if v is not None},
                                       config, resume_from=out if resume else None)
    report = translate.fit(train_cfg, cfg, out, resume, fit_fn=common.fit)
    for split in ("val", "test"):
        if split in report:
            m = report[split]
            typer.echo(f"{split}: BLEU {m['bleu']:.2f}  chrF {m['chrf']:.2f}  perplexity "
                       f"{m['ppl']:.2f}  (beam {int(m['beam'])}, {int(m['sentences'])} sentences)")
    typer.echo(f"run saved in {out}/ (translate with: rnnkit translate {out} --text \"...\")")


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
