"""Offline data to train on: a tiny generated corpus for the task harness, and the standard
library's source for ``rnnkit demo``."""

from __future__ import annotations

import random
import shutil
from pathlib import Path

from rnnkit.tasks.registry import Smoke

_WORDS = "the cat sat on a mat and ate the rat while dogs ran".split()


def _sentences(n: int, seed: int) -> str:
    rng = random.Random(seed)
    return "".join(" ".join(rng.choice(_WORDS) for _ in range(8)) + ".\n" for _ in range(n))


def smoke(directory: Path) -> Smoke:
    """A few KB of English-like sentences and settings that train on them in seconds."""
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    train, held_out = directory / "corpus.txt", directory / "held_out.txt"
    train.write_text(_sentences(80, 0), encoding="utf-8")
    held_out.write_text(_sentences(10, 1), encoding="utf-8")
    settings = {"data": [str(train)], "max_steps": 3, "hidden": 16, "seq_len": 16,
                "batch_size": 4, "eval_tokens": 200, "quiet": True}
    return Smoke(settings=settings, predict_input=["the cat ", "a dog"],
                 evaluate_data=str(held_out), bad={"data": [str(directory / "missing.txt")]})


def demo(out: Path, quiet: bool, max_time: str = "110s") -> list[str]:
    """Train a small character LSTM on the standard library's source (run directory
    ``out/textgen``, loss curve ``out/textgen_loss.png``); its validation bits per character
    and a sample."""
    from rnnkit.data.examples import stdlib_sources
    from rnnkit.tasks.textgen import SPEC, load, plot_losses
    from rnnkit.threads import one_thread

    out = Path(out)
    run_dir = out / "textgen"
    train_cfg, cfg = SPEC.configs({
        "data": [str(f) for f in stdlib_sources()], "errors": "replace", "max_time": max_time,
        "quiet": quiet, "eval_tokens": 50_000, "eval_every": 100, "keep_last": 1,
    })
    if run_dir.exists():  # a demo rerun starts over rather than stopping at the old run
        shutil.rmtree(run_dir)
    # One thread: this small model gains little from a second one, and on a busy machine
    # oversubscribed threads spin-wait and make each step several times slower.
    with one_thread():
        metrics = SPEC.fit(train_cfg, cfg, run_dir)["train"]
        sample = load(run_dir).generate("def ", 300, temperature=0.7, seed=0)
    plot = plot_losses(run_dir, out / "textgen_loss.png")
    return [f"validation: {metrics['val_bpc']:.2f} bits per character "
            f"(loss {metrics['val_loss']:.3f} nats); loss curve in {plot}",
            "sample:\ndef " + sample]
