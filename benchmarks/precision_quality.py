"""float32 against bf16 autocast at equal steps: each task's default recipe, one seed, the same
number of steps in both precisions, then the validation metrics and training time of each.

    python benchmarks/precision_quality.py                    # textgen and sentiment
    python benchmarks/precision_quality.py --tasks textgen sentiment forecast --steps 300
    python benchmarks/precision_quality.py --auto        # and what ``precision: auto`` picks

With ``--auto`` each task also starts once under ``precision: auto`` (a few steps) and the
table after the first says what the probe chose on this processor and why.

The two runs of a task go one after the other on the same data, so a change of load on the
machine shows in the times (report the load), not in the metrics.
"""

from __future__ import annotations

import argparse
import json
import os
import tempfile
import time
from pathlib import Path

from rnnkit import hardware
from rnnkit.tasks import registry

DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data"


def _fsdd(folder: Path) -> dict:
    """FSDD's manifests (recordings 5-49 of each digit and speaker to train, 0-4 to validate)."""
    rows: dict[str, list[str]] = {"train": [], "val": []}
    for p in sorted((DATA / "speech" / "fsdd" / "recordings").glob("*.wav")):
        digit, _speaker, index = p.stem.split("_")
        rows["val" if int(index) < 5 else "train"].append(f"{p},{digit}")
    paths = {}
    for name, lines in rows.items():
        paths[name] = folder / f"fsdd_{name}.csv"
        paths[name].write_text("path,transcript\n" + "\n".join(lines) + "\n")
    # one model: the precisions are compared on a model's own training curve
    return {"data": str(paths["train"]), "val": str(paths["val"]), "ensemble": 1}


# the task's data on the quick benchmark settings, and the validation metrics worth comparing
TASKS = {
    "textgen": ({"data": [str(DATA / "text" / "tinyshakespeare.txt")], "eval_tokens": 20_000},
                ("val_loss",)),
    "sentiment": ({"data": str(DATA / "sentiment" / "sst2.train.txt"),
                   "val": str(DATA / "sentiment" / "sst2.dev.txt")},
                  ("val_loss", "val_accuracy", "val_macro_f1")),
    "translate": ({**{k: str(DATA / "translation" / f"multi30k.{split}.{lang}.gz")
                      for k, split, lang in (("src", "train", "de"), ("tgt", "train", "en"),
                                             ("val_src", "val", "de"), ("val_tgt", "val", "en"))},
                   "eval_bleu_sentences": 200},
                  ("val_loss", "val_ppl", "val_bleu_greedy")),
    "forecast": ({"data": str(DATA / "timeseries" / "ETTh1.csv"), "target": "OT",
                  "val": "2880", "test": "2880", "calendar": "none"},
                 ("val_loss", "val_mse", "val_mae")),
    "speech": (_fsdd, ("val_loss", "val_cer")),  # FSDD, isolated digits
}


def run(task: str, precision: str, steps: int, out: Path) -> tuple[dict, float, dict]:
    settings, _ = TASKS[task]
    if callable(settings):
        settings = settings(out.parent)
    spec = registry.get(task)
    train_cfg, cfg = spec.configs({**settings, "max_steps": steps, "seed": 0, "quiet": True,
                                   "precision": precision, "eval_every": steps})
    t0 = time.perf_counter()
    spec.fit(train_cfg, cfg, out)
    seconds = time.perf_counter() - t0
    config = json.loads((out / "config.json").read_text())
    with open(out / "metrics.csv") as f:
        rows = [dict(zip(header, line.rstrip("\n").split(","), strict=False))
                for header in [f.readline().rstrip("\n").split(",")] for line in f]
    last = [r for r in rows if r.get("val_loss")][-1]
    return last, seconds, config.get("precision", {})


def auto_choice(task: str, out: Path) -> dict:
    """What ``precision: auto`` picks for the task's default recipe here (its probe runs at the
    start of training; three steps are enough to see it)."""
    return run(task, "auto", 3, out)[2]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--tasks", nargs="+", default=["textgen", "sentiment"], choices=list(TASKS))
    ap.add_argument("--steps", type=int, default=200)
    ap.add_argument("--auto", action="store_true", help="also report what precision auto picks")
    args = ap.parse_args()
    print(f"# {hardware.describe()}; load average at start {os.getloadavg()[0]:.1f}")
    print(f"# {args.steps} steps, seed 0, each task's default recipe\n")
    print("| task | metric | fp32 | bf16 | fp32 s | bf16 s |")
    print("|---|---|---|---|---|---|")
    with tempfile.TemporaryDirectory() as tmp:
        for task in args.tasks:
            results = {p: run(task, p, args.steps, Path(tmp) / f"{task}-{p}")
                       for p in ("fp32", "bf16")}
            for metric in TASKS[task][1]:
                a, b = (results[p][0].get(metric, "") for p in ("fp32", "bf16"))
                if a == "" and b == "":
                    continue
                print(f"| {task} | {metric} | {float(a):.4f} | {float(b):.4f} | "
                      f"{results['fp32'][1]:.0f} | {results['bf16'][1]:.0f} |", flush=True)
        if args.auto:
            print("\n| task | auto picked | why |")
            print("|---|---|---|")
            for task in args.tasks:
                choice = auto_choice(task, Path(tmp) / f"{task}-auto")
                print(f"| {task} | {choice.get('used')} | {choice.get('reason')} |", flush=True)
    print(f"\n# load average at the end {os.getloadavg()[0]:.1f}")


if __name__ == "__main__":
    main()
