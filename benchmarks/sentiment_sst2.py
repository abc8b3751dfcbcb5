"""SST-2 sentence-level sentiment: train from scratch on the CPU, report time, accuracy, macro-F1
and how much of each batch is padding with and without length bucketing.

    .venv/bin/python benchmarks/sentiment_sst2.py [--max-time 10m] [--workers N] [--threads N]

Reads ``sst2.{train,dev,test}.txt`` from ``shared/data/sentiment/`` beside the project (skips
when absent); train, dev and test are used as given, no external word vectors. The speed of
bucketed against plain batches is measured in the same run, interleaved, as a ratio.
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import platform
import statistics
import sys
import tempfile
import time
from pathlib import Path

import torch

from rnnkit.threads import one_thread

DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "sentiment"

# The task's defaults (word tokens with subword vectors, 200-wide embedding, one bidirectional
# LSTM of 128 units per direction, max pooling, word dropout 0.25, AdamW 2e-3 with a cosine
# schedule, batches of 32, 10 epochs) as an ensemble of 12 classifiers, each with its own seed;
# with one worker process per core (the default) that is 6 rounds of 2 members on 2 cores.
SETTINGS = {"epochs": 10, "ensemble": 12}


def padding_table(train_path: Path, batch_size: int) -> tuple[float, float, int]:
    """Padding share of one epoch's batches, bucketed and plain, over the training set."""
    from rnnkit.data.bucketing import BucketBatchSampler, padding_fraction
    from rnnkit.data.table import read_labelled
    from rnnkit.data.vocab import WordTokenizer

    tok = WordTokenizer()
    lengths = [len(tok(t)) for t in read_labelled(train_path).texts]
    shares = []
    for bucket in (True, False):
        s = BucketBatchSampler(lengths, batch_size, seed=0, bucket=bucket)
        shares.append(statistics.mean(padding_fraction(lengths, s.batches(e)) for e in range(3)))
    return shares[0], shares[1], max(lengths)


def step_speed(train_path: Path, dev_path: Path, batch_size: int, steps: int, repeats: int
               ) -> dict[str, float]:
    """Median seconds per training step of one classifier: as trained (bucketed batches, fused
    AdamW), with plain shuffled batches, and with the per-operation AdamW; interleaved."""
    from rnnkit.tasks import sentiment

    variants = {"as trained": (True, True), "plain batches": (False, True),
                "unfused AdamW": (True, False)}
    times: dict[str, list[float]] = {name: [] for name in variants}
    runs = {}
    for name, (bucket, fused) in variants.items():
        train_cfg, cfg = sentiment.configs({**SETTINGS, "ensemble": 1, "data": str(train_path),
                                            "val": str(dev_path), "quiet": True, "bucket": bucket})
        task, model = sentiment.build(cfg, batch_size, seed=0)
        opt = torch.optim.AdamW(model.parameters(), lr=1e-3, weight_decay=0.0, fused=fused)
        runs[name] = task, model, opt
    for r in range(repeats):
        for name, (task, model, opt) in runs.items():
            model.train()
            batches = iter(task.train_batches(r))
            t0 = time.perf_counter()
            for _ in range(steps):
                loss, _, _ = task.training_step(model, next(batches), None)
                opt.zero_grad()
                loss.backward()
                opt.step()
            times[name].append((time.perf_counter() - t0) / steps)
    return {name: statistics.median(t) for name, t in times.items()}


def unseen_share(train_path: Path, test_path: Path, min_freq: int) -> tuple[float, float]:
    """Shares of the test tokens that have no row of their own (rarer than ``min_freq`` in the
    training data) and that never occur in it: the words subword vectors give a spelling."""
    from collections import Counter

    from rnnkit.data.table import read_labelled
    from rnnkit.data.vocab import WordTokenizer

    tok = WordTokenizer()
    counts = Counter(t for text in read_labelled(train_path).texts for t in tok(text))
    test = [t for text in read_labelled(test_path).texts for t in tok(text)]
    return (sum(counts[t] < min_freq for t in test) / len(test),
            sum(counts[t] == 0 for t in test) / len(test))


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--max-time", default="10m", help="training budget (default 10m)")
    ap.add_argument("--threads", type=int, default=None, help="torch CPU threads (default: all; "
                    "shared among the workers)")
    ap.add_argument("--workers", type=int, default=None, help="members trained at once "
                    "(default: one per core)")
    ap.add_argument("--seed", type=int, default=0, help="seed of member 0 (member k: seed + k)")
    ap.add_argument("--speed-steps", type=int, default=20, help="steps per speed sample")
    ap.add_argument("--out", type=Path, default=None, help="run directory (default: temporary)")
    args = ap.parse_args()
    files = [DATA / f"sst2.{split}.txt" for split in ("train", "dev", "test")]
    if not all(f.is_file() for f in files):
        print(f"skipped: SST-2 not found in {DATA} (see shared/data/README.md)")
        return 0
    from rnnkit.tasks import sentiment
    from rnnkit.train.ensemble import default_workers, member_dir

    if args.threads:
        torch.set_num_threads(args.threads)
    workers = args.workers or default_workers(SETTINGS["ensemble"], "cpu")

    batch_size = sentiment.TRAIN_DEFAULTS["batch_size"]
    pad_b, pad_p, longest = padding_table(files[0], batch_size)
    with one_thread():
        speed = step_speed(files[0], files[1], batch_size, args.speed_steps, repeats=3)
    norow, unseen = unseen_share(files[0], files[2], sentiment.SentimentConfig().min_freq)

    out = args.out or Path(tempfile.mkdtemp(prefix="sst2-"))
    t0 = time.perf_counter()
    clf = sentiment.train(files[0], out, val=files[1], test=files[2], max_time=args.max_time,
                          quiet=True, workers=workers, seed=args.seed,
                          **SETTINGS)
    wall = time.perf_counter() - t0
    config = json.loads((out / "config.json").read_text())
    trained, trained_cfg = config["train"], config["sentiment"]
    member_times, member_epochs = [], []
    for k in range(SETTINGS["ensemble"]):
        rows = list(csv.DictReader(open(member_dir(out, k) / "metrics.csv", encoding="utf-8")))
        member_times.append(max(float(r["time"]) for r in rows if r.get("time")))
        member_epochs.append(max(int(float(r["epoch"])) for r in rows if r.get("epoch")))
    val, test = clf.metrics["val"], clf.metrics["test"]
    test_data = sentiment.read_split(files[2], sentiment.SentimentConfig())
    singles = [sentiment.SentimentClassifier(m, clf.encoder, clf.labels, clf.config)
               .evaluate_data(test_data)["accuracy"] for m in clf.model.members]

    print(f"machine: {platform.machine()} {platform.processor() or ''}, torch "
          f"{torch.__version__}, {torch.get_num_threads()} threads, {workers} workers, load average "
          f"{' '.join(f'{x:.1f}' for x in os.getloadavg())}")
    print(f"settings: {SETTINGS} (seed {args.seed}, lr {trained['lr']}, batch {batch_size}, "
          f"budget {args.max_time})")
    print()
    print("| measure | value |")
    print("|---|---|")
    print(f"| wall time: {SETTINGS['ensemble']} members, {workers} at once, incl. reading, "
          f"vocab, merge, evaluation | {wall:.0f} s |")
    print(f"| one member's training (trainer clock) | {min(member_times):.0f}-"
          f"{max(member_times):.0f} s, {min(member_epochs)}-{max(member_epochs)} epochs |")
    print(f"| dev accuracy of the ensemble (members' best checkpoints) | {val['accuracy']:.2%} |")
    print(f"| test accuracy of one member | {statistics.mean(singles):.2%} mean, "
          f"{min(singles):.2%}-{max(singles):.2%} |")
    print(f"| **test accuracy of the ensemble** | **{test['accuracy']:.2%}** |")
    print(f"| test macro-F1 | {test['macro_f1']:.4f} |")
    print(f"| padded positions, bucketed batches | {pad_b:.1%} |")
    print(f"| padded positions, plain shuffled batches | {pad_p:.1%} (longest text {longest}) |")
    base = speed["as trained"]
    for name in ("plain batches", "unfused AdamW"):
        print(f"| seconds per step, as trained / {name} (median of 3, interleaved) | "
              f"{base:.3f} / {speed[name]:.3f} = {base / speed[name]:.2f}x |")
    print(f"| test tokens without a row of their own / never seen in training | "
          f"{norow:.1%} / {unseen:.1%} (subword vectors: {trained_cfg['subwords']}) |")
    print(f"\nrun directory: {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
