"""``rnnkit generate``: continue a prompt with a trained language model.

``rnnkit train textgen`` is generated from ``rnnkit.tasks.textgen``'s settings
(``rnnkit.cli.train``); ``rnnkit evaluate`` serves every task (``rnnkit.cli.evaluate``).
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated

import typer

from rnnkit.cli.app import app


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

    Characters of the prompt that the model never saw are read as its unknown symbol (a note on
    standard error says how many).

    Example: rnnkit generate runs/lm --prompt "ROMEO:" --length 300 --temperature 0.8
    """

    from rnnkit.tasks import textgen

    gen = textgen.load(run_dir, precision="bf16" if bf16 else "auto")
    gen.check(prompt, length, temperature=temperature, top_k=top_k, top_p=top_p, samples=samples)
    note = gen.unknown_note(prompt)
    if note:  # on stderr: standard output is the text alone
        typer.echo(f"note: {note}", err=True)
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
