"""The sentiment step of ``rnnkit demo``: the rated words of VADER's lexicon (shipped inside
vaderSentiment), a classifier trained on 85% of them and tested on the rest, words it never saw,
which it can only judge from their spelling (the task's character n-gram word vectors)."""

from __future__ import annotations

import csv
import random
import shutil
from pathlib import Path
from typing import Any

TEST_FRACTION = 0.15
MIN_STRENGTH = 1.0  # of the mean rating (-4 to +4): the words with a clear sign
MAX_SHOWN_STRENGTH = 2.5
# The task's defaults, but 64-wide word vectors: as accurate here (93% either way) and a third
# of the 200-wide run's size on disk; one checkpoint besides the best.
SETTINGS: dict[str, Any] = {"embed": 64, "keep_last": 1}


def _write_csv(path: Path, rows: list[tuple[str, str]]) -> str:
    with open(path, "w", newline="", encoding="utf-8") as f:
        writer = csv.writer(f)
        writer.writerow(["text", "label"])
        writer.writerows(rows)
    return str(path)


def plot_probabilities(words: list[str], positive: list[float], truth: list[str],
                       path: str | Path, title: str) -> Path:
    """Bars from 0.5 to each word's probability of being positive, coloured by the people's
    label (green positive, red negative): a red bar to the right or a green one to the left is
    a mistake."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    order = sorted(range(len(words)), key=lambda i: positive[i])
    fig, ax = plt.subplots(figsize=(7, 0.32 * len(words) + 1.2))
    colours = ["tab:green" if truth[i] == "positive" else "tab:red" for i in order]
    ax.barh(range(len(order)), [positive[i] - 0.5 for i in order], left=0.5, color=colours)
    ax.set_yticks(range(len(order)), [words[i] for i in order])
    ax.axvline(0.5, color="black", linewidth=0.8, linestyle="--")
    ax.set_xlim(0, 1)
    ax.set_xlabel("P(positive); colour: the people's rating (green positive, red negative)")
    ax.set_title(title)
    fig.tight_layout()
    path = Path(path)
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return path


def demo(out: Path, quiet: bool, max_time: str = "40s", max_words: int | None = None,
         shown: int = 20, **settings: Any) -> list[str]:
    """Train in ``out/sentiment`` (data in ``out/sentiment_data``), picture
    ``out/sentiment.png``; the held-out accuracy beside the majority class's. ``max_words``
    and ``settings`` (task or trainer fields) make it smaller for tests."""
    from rnnkit.data.sentiment_lexicon import labelled_words, read_lexicon, split_words
    from rnnkit.tasks import registry
    from rnnkit.threads import one_thread

    out = Path(out)
    rows = labelled_words(MIN_STRENGTH)
    if max_words is not None:
        rows = random.Random(0).sample(rows, min(max_words, len(rows)))
    train_rows, test_rows = split_words(rows, TEST_FRACTION, seed=0)
    data = out / "sentiment_data"
    data.mkdir(parents=True, exist_ok=True)
    run = out / "sentiment"
    if run.exists():  # a demo rerun starts over rather than stopping at the old run
        shutil.rmtree(run)
    with one_thread():  # one word per text: tiny batches that a second thread only slows
        clf = registry.train("sentiment", run, data=_write_csv(data / "train.csv", train_rows),
                             test=_write_csv(data / "test.csv", test_rows),
                             max_time=max_time, quiet=quiet, **{**SETTINGS, **settings})
        m = clf.metrics["test"]
        # the strongest-rated entries include slurs and profanity: the picture and the line
        # show milder words
        mean = {e.token: e.mean for e in read_lexicon()}
        mild = [r for r in test_rows if abs(mean[r[0]]) <= MAX_SHOWN_STRENGTH]
        shown_rows = random.Random(1).sample(mild, min(shown, len(mild)))
        words = [w for w, _ in shown_rows]
        positive = [p["probabilities"]["positive"] for p in clf.predict(words)]
    majority = max(sum(label == c for _, label in test_rows) for c in ("positive", "negative"))
    picture = plot_probabilities(words, positive, [label for _, label in shown_rows],
                                 out / "sentiment.png", f"{len(words)} words never seen in "
                                 "training")
    examples = ", ".join(f"{w} {p:.2f}" for w, p in zip(words[:5], positive, strict=False))
    return [f"  held out {len(test_rows)} of {len(rows)} words: accuracy {m['accuracy']:.1%}, "
            f"macro-F1 {m['macro_f1']:.3f} (always guessing the larger class: "
            f"{majority / len(test_rows):.1%}); P(positive) of unseen words: {examples}",
            f"  picture: {picture}"]
