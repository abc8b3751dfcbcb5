"""``rnnkit train textgen``, ``rnnkit generate`` and ``rnnkit evaluate``.

``evaluate`` serves every task: it reads the task named in the checkpoint's config and calls
``rnnkit.tasks.<task>.evaluate_run(run_dir, data, errors=...)``.
"""

from __future__ import annotations

import importlib
import sys
from pathlib import Path
from typing import Annotated

import typer

from rnnkit.cli import common
from rnnkit.cli.app import app, train_app
from rnnkit.errors import UserError

ErrorsOpt = Annotated[str | None, typer.Option(
    "--errors", help="Bytes that are not UTF-8: strict (an error naming the file and offset) or "
                     "replace (U+FFFD).")]


@train_app.command("textgen")
def train_textgen(
    data: Annotated[list[Path] | None, typer.Option(
        "--data", help="Text file or directory of text files; repeat for several.")] = None,
    out: Annotated[Path, typer.Option("--out", help="Run directory to write.")] = Path("runs/textgen"),
    val: Annotated[Path | None, typer.Option(
        "--val", help="Validation text file (default: the last 10% of the data).")] = None,
    tokenizer: Annotated[str | None, typer.Option(
        "--tokenizer", help="char, byte, or bpe (trained on the data); default char.")] = None,
    bpe_vocab: Annotated[int | None, typer.Option("--bpe-vocab", help="BPE vocabulary size (default 1024).")] = None,
    seq_len: Annotated[int | None, typer.Option(
        "--seq-len", help="Tokens per window of truncated backpropagation through time (default 128).")] = None,
    arch: Annotated[str | None, typer.Option(
        "--arch", help="lstm (default), gru, rnn, mingru or minlstm.")] = None,
    layers: Annotated[int | None, typer.Option("--layers", help="Recurrent layers (default 1).")] = None,
    hidden: Annotated[int | None, typer.Option("--hidden", help="Hidden units per layer (default 256).")] = None,
    embed: Annotated[int | None, typer.Option(
        "--embed", help="Embedding width (default: the hidden width).")] = None,
    dropout: Annotated[float | None, typer.Option("--dropout", help="Dropout rate (default 0).")] = None,
    tie_weights: Annotated[bool | None, typer.Option(
        "--tie-weights/--no-tie-weights", help="Share the embedding and output matrices.")] = None,
    errors: ErrorsOpt = None,
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
) -> None:
    """Train a character, byte or BPE language model on text files.

    Example: rnnkit train textgen --data corpus.txt --out runs/lm --max-time 3m
    """
    from rnnkit.tasks import textgen

    overrides = {
        **common.shared(epochs=epochs, max_steps=max_steps, max_time=max_time,
                        batch_size=batch_size, lr=lr, seed=seed, device=device, quiet=quiet),
        "data": [str(p) for p in data] if data else None, "val": None if val is None else str(val),
        "tokenizer": tokenizer, "bpe_vocab": bpe_vocab, "seq_len": seq_len, "arch": arch,
        "layers": layers, "hidden": hidden, "embed": embed, "dropout": dropout,
        "tie_weights": tie_weights, "errors": errors,
    }
    train_cfg, cfg = textgen.configs(overrides, config, resume_from=out if resume else None)
    if not cfg.data:
        raise UserError("no training text was given; pass --data FILE_OR_DIRECTORY")
    metrics = textgen.fit(train_cfg, cfg, out, resume, fit_fn=common.fit)
    shown = "  ".join(f"{k} {v:.4f}" for k, v in metrics.items())
    typer.echo(f"{shown}\nsaved in {out}/ (try: rnnkit generate {out} --prompt 'The ')")


@app.command()
def generate(
    run_dir: Annotated[Path, typer.Argument(help="Run directory of a textgen training.")],
    prompt: Annotated[str, typer.Option("--prompt", help="Text to continue.")] = "\n",
    length: Annotated[int, typer.Option("--length", help="Tokens to generate.")] = 500,
    temperature: Annotated[float, typer.Option(
        "--temperature", help="Below 1: safer, above 1: wilder; 0: always the likeliest.")] = 0.8,
    top_k: Annotated[int | None, typer.Option(
        "--top-k", help="Sample among the k likeliest tokens only.")] = None,
    top_p: Annotated[float | None, typer.Option(
        "--top-p", help="Sample among the likeliest tokens that make up this probability.")] = None,
    samples: Annotated[int, typer.Option("--samples", help="Independent continuations.")] = 1,
    seed: Annotated[int | None, typer.Option("--seed", help="Random seed (same seed, same text).")
                    ] = None,
    bf16: Annotated[bool, typer.Option(
        "--bf16", help="Run the model in bfloat16: faster on CPUs, slightly different odds.")
                    ] = False,
) -> None:
    """Continue a prompt with a trained language model, streaming the text as it comes.

    Example: rnnkit generate runs/lm --prompt "ROMEO:" --length 300 --temperature 0.8
    """
    import torch

    from rnnkit.tasks import textgen

    gen = textgen.load(run_dir, dtype=torch.bfloat16 if bf16 else torch.float32)
    gen.check(prompt, length, temperature=temperature, top_k=top_k, top_p=top_p, samples=samples)
    out = sys.stdout

    def stream(i: int, piece: str) -> None:
        out.write(piece)
        out.flush()

    if samples == 1:
        out.write(prompt)
        gen.generate(prompt, length, temperature=temperature, top_k=top_k, top_p=top_p,
                     seed=seed, on_text=stream)
        out.write("\n")
        return
    texts = gen.generate(prompt, length, temperature=temperature, top_k=top_k, top_p=top_p,
                         samples=samples, seed=seed)
    for i, text in enumerate(texts, 1):
        out.write(f"--- sample {i} ---\n{prompt}{text}\n")


@app.command()
def evaluate(
    run_dir: Annotated[Path, typer.Argument(help="Run directory of a training.")],
    data: Annotated[list[Path], typer.Option(
        "--data", help="Data to evaluate on, in the format the task trained on; repeatable.")],
    errors: ErrorsOpt = None,
) -> None:
    """Evaluate a trained model on other data and print its metrics.

    Example: rnnkit evaluate runs/lm --data held_out.txt
    """
    from rnnkit.train.checkpoint import read_config, resolve

    task = read_config(resolve(run_dir)).get("task")
    try:
        module = importlib.import_module(f"rnnkit.tasks.{task}")
        evaluate_run = module.evaluate_run
    except (ImportError, AttributeError, ValueError):
        raise UserError(f"{run_dir} holds a checkpoint of task {task!r}, which rnnkit evaluate "
                        "does not know") from None
    metrics = evaluate_run(run_dir, data, errors=errors or "strict")
    for name, value in metrics.items():
        typer.echo(f"{name} {value:.4f}")


def stdlib_sources(max_bytes: int = 2_000_000) -> list[Path]:
    """Python's own standard-library modules (the top-level ``.py`` files, sorted by name, up to
    ``max_bytes``): a text corpus every machine with Python has offline."""
    import sysconfig

    files, total = [], 0
    for f in sorted(Path(sysconfig.get_paths()["stdlib"]).glob("*.py")):
        size = f.stat().st_size
        if total + size > max_bytes:
            break
        files.append(f)
        total += size
    if not files:
        raise UserError("the Python standard library's source files were not found")
    return files


def demo_step(out: Path, quiet: bool, max_time: str = "110s") -> None:
    """Train a small character LSTM on the standard library's source, print its validation bits
    per character and a sample, save the loss curve."""
    from rnnkit.tasks import textgen

    run_dir = out / "textgen"
    train_cfg, cfg = textgen.configs({
        "data": [str(f) for f in stdlib_sources()], "errors": "replace", "max_time": max_time,
        "quiet": quiet, "eval_tokens": 50_000, "eval_every": 100, "keep_last": 1,
    })
    if run_dir.exists():  # a demo rerun starts over rather than stopping at the old run
        import shutil

        shutil.rmtree(run_dir)
    from rnnkit.threads import one_thread

    # One thread: this small model gains little from a second one, and on a busy machine
    # oversubscribed threads spin-wait and make each step several times slower.
    with one_thread():
        metrics = textgen.fit(train_cfg, cfg, run_dir)
        sample = textgen.load(run_dir).generate("def ", 300, temperature=0.7, seed=0)
    plot = textgen.plot_losses(run_dir, out / "textgen_loss.png")
    typer.echo(f"validation: {metrics['val_bpc']:.2f} bits per character "
               f"(loss {metrics['val_loss']:.3f} nats); loss curve in {plot}")
    typer.echo("sample:\ndef " + sample)
