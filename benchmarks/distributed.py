"""Data-parallel text-generation training on this machine: 1 process x 2 threads against 2
processes x 1 thread (torchrun, gloo), and the share of a step that the gradient all-reduce
takes.

    .venv/bin/python benchmarks/distributed.py [--steps 60] [--threads 2]

- tokens/s: ``rnnkit train textgen`` with the task's default model (1x256 LSTM, batch 32,
  seq_len 128) for ``--steps`` steps, once as one process with ``--threads`` threads and once as
  ``torchrun --nproc-per-node 2`` with one thread each; the median of metrics.csv's tokens_per_s
  rows after the first (rank 0 logs the whole batch's tokens), so start-up is not counted;
- all-reduce share: in 2 torchrun workers, the same model's training step through DDP against
  the same step under ``no_sync()`` (no gradient all-reduce), interleaved, medians; plus the
  trainer's one small all-reduce of the step's count and loss.
"""

from __future__ import annotations

import argparse
import contextlib
import csv
import os
import random
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import torch

from rnnkit import hardware

DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "text" / "tinyshakespeare.txt"


def machine() -> str:
    return f"{hardware.describe()}; load average at start {os.getloadavg()[0]:.1f}"


def corpus(folder: Path) -> Path:
    if DATA.is_file():
        return DATA
    rng = random.Random(0)  # offline fallback: English-like words
    words = "the cat sat on a mat and ate the rat while dogs ran home".split()
    text = "".join(" ".join(rng.choice(words) for _ in range(10)) + ".\n" for _ in range(20000))
    path = folder / "corpus.txt"
    path.write_text(text, encoding="utf-8")
    return path


def train(launcher: list[str], threads: int, data: Path, out: Path, steps: int) -> float:
    """Median tokens/s of a ``rnnkit train textgen`` run (rows after the first)."""
    cmd = [sys.executable, *launcher, "-m", "rnnkit", "train", "textgen", "--data", str(data),
           "--max-steps", str(steps), "--log-every", "5", "--eval-tokens", "2000", "--quiet",
           "--device", "cpu", "--out", str(out)]
    env = {**os.environ, "OMP_NUM_THREADS": str(threads)}
    subprocess.run(cmd, env=env, check=True, stdout=subprocess.DEVNULL)
    with open(out / "metrics.csv", newline="") as f:
        rates = [float(r["tokens_per_s"]) for r in csv.DictReader(f) if r.get("tokens_per_s")]
    return statistics.median(rates[1:])


def allreduce_worker(steps: int) -> dict[str, float] | None:
    """In each of 2 torchrun workers: seconds per step with and without the gradient
    all-reduce, and per all-reduce of the trainer's 3 statistics."""
    import torch.distributed as dist
    import torch.nn.functional as F

    from rnnkit.models.language_model import LanguageModel, LanguageModelConfig
    from rnnkit.train import distributed

    torch.set_num_threads(1)
    group, device = distributed.join(torch.device("cpu"))
    torch.manual_seed(0)
    model = LanguageModel(LanguageModelConfig(vocab_size=65))
    net = distributed.wrap(model, device)
    opt = torch.optim.AdamW(model.parameters(), lr=1e-3)
    x = torch.randint(0, 65, (16, 128))  # this rank's half of a batch of 32
    y = torch.randint(0, 65, (16, 128))

    def step(sync: bool) -> float:
        start = time.perf_counter()
        opt.zero_grad(set_to_none=True)
        ctx = contextlib.nullcontext() if sync else net.no_sync()
        with ctx:
            logits, _ = net(x)
            F.cross_entropy(logits.flatten(0, 1), y.flatten()).backward()
        opt.step()
        return time.perf_counter() - start

    times: dict[str, list[float]] = {"ddp": [], "no_sync": []}
    step(True)
    step(False)
    for i in range(steps):
        for name in (("ddp", "no_sync") if i % 2 else ("no_sync", "ddp")):
            dist.barrier()
            times[name].append(step(name == "ddp"))
    stats = []
    for _ in range(50):
        t = torch.zeros(3, dtype=torch.float64)
        start = time.perf_counter()
        distributed.all_sum(t)
        stats.append(time.perf_counter() - start)
    if not group.main:
        return None
    return {**{k: statistics.median(v) for k, v in times.items()},
            "stats": statistics.median(stats)}


def allreduce_share(steps: int) -> dict[str, float]:
    from torch.distributed.launcher.api import LaunchConfig, elastic_launch

    config = LaunchConfig(min_nodes=1, max_nodes=1, nproc_per_node=2, rdzv_backend="c10d",
                          rdzv_endpoint="localhost:0", run_id="bench", max_restarts=0)
    return elastic_launch(config, allreduce_worker)(steps)[0]


def print_table(header, rows) -> None:
    widths = [max(len(str(r[i])) for r in [header, *rows]) for i in range(len(header))]
    for i, row in enumerate([header, *rows]):
        print("| " + " | ".join(str(c).ljust(w) for c, w in zip(row, widths, strict=True)) + " |")
        if i == 0:
            print("|" + "|".join("-" * (w + 2) for w in widths) + "|")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--steps", type=int, default=60, help="training steps per run")
    ap.add_argument("--threads", type=int, default=2, help="threads of the one-process run")
    args = ap.parse_args()
    print(f"machine: {machine()}")
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        data = corpus(tmp)
        print(f"data: {data.name}; textgen defaults (1x256 LSTM, batch 32, seq_len 128), "
              f"{args.steps} steps per run", flush=True)
        one = train([], args.threads, data, tmp / "one", args.steps)
        two = train(["-m", "torch.distributed.run", "--standalone", "--nproc-per-node", "2"], 1,
                    data, tmp / "two", args.steps)
    share = allreduce_share(args.steps // 2)
    rows = [
        [f"1 process x {args.threads} threads", f"{one:,.0f}", "1.00", ""],
        ["2 processes x 1 thread (gloo)", f"{two:,.0f}", f"{two / one:.2f}", ""],
        ["DDP step, 2 x 1 thread", f"{share['ddp'] * 1e3:.1f} ms/step", "",
         f"all-reduce {1 - share['no_sync'] / share['ddp']:.1%} of the step"],
        ["step under no_sync()", f"{share['no_sync'] * 1e3:.1f} ms/step", "", ""],
        ["count+loss all-reduce", f"{share['stats'] * 1e3:.3f} ms", "",
         f"{share['stats'] / share['ddp']:.2%} of the step"],
    ]
    print_table(["run", "tokens/s (or time)", "vs 1 process", "note"], rows)


if __name__ == "__main__":
    main()
