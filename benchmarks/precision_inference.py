"""float32 against bf16 at inference: the time of one inference call and how far outputs agree.

Each task's default recipe is trained once in float32, then one representative inference call
is timed in both precisions on the same inputs.

    python benchmarks/precision_inference.py                  # all five tasks, 150 steps each
    python benchmarks/precision_inference.py --tasks textgen sentiment --steps 300 --repeats 7

Each precision is the task's own loader asked for it (``registry.load(run, precision=...)``):
bf16 weights for textgen, ``torch.autocast`` bf16 around the model for the other tasks (an op
autocast does not cover stays in float32: a speed-up near 1.0x). The last column is what
``precision="auto"`` chose on this machine, and why. The two precisions take turns, repeat after
repeat, so a change of load on the machine falls on both; the times are medians (report the
load). Training reuses precision_quality.py's recipes and data.
"""

from __future__ import annotations

import argparse
import csv
import gzip
import importlib.util
import itertools
import os
import statistics
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import torch

from rnnkit import hardware
from rnnkit.data.series import read_table
from rnnkit.data.windows import split_points
from rnnkit.tasks import registry


def _sibling(name: str):
    """The module of ``benchmarks/NAME.py`` (the benchmarks folder is no package)."""
    spec = importlib.util.spec_from_file_location(name, Path(__file__).with_name(f"{name}.py"))
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


quality = _sibling("precision_quality")

PROMPTS = ["ROMEO:\n", "First Citizen:\nWe are ", "The king "]
GEN_TOKENS = 200
SENTENCES = 500  # sentiment dev sentences
TRANSLATIONS = 100  # translation validation sentences
RECORDINGS = 200  # speech validation recordings


def _spread(rows: list, n: int) -> list:
    """``n`` rows spread evenly over ``rows`` (all of them when there are fewer)."""
    return rows if len(rows) <= n else [rows[i * len(rows) // n] for i in range(n)]


def _share(a: list, b: list, what: str) -> str:
    same = sum(x == y for x, y in zip(a, b, strict=True))
    return f"{same / len(a):.1%} identical {what} (n={len(a)})"


# each case: (what the call is, the call of a loaded predictor, the agreement of two outputs)
Case = tuple[str, Callable[[Any], Callable[[], Any]], Callable[[Any, Any], str]]


def _load(run_dir: Path, precision: str) -> Any:
    return registry.load(run_dir, precision=precision)


def textgen_case(run_dir: Path, settings: dict) -> Case:
    def call(predictor) -> Callable[[], list[str]]:
        return lambda: predictor.predict(PROMPTS, GEN_TOKENS, temperature=0.0)

    def agreement(a: list[str], b: list[str]) -> str:
        same = [len(os.path.commonprefix([p, q])) for p, q in zip(a, b, strict=True)]
        return (f"min {min(same)} / {GEN_TOKENS} leading chars identical "
                f"({', '.join(map(str, same))})")

    return f"greedy, {GEN_TOKENS} tokens from {len(PROMPTS)} prompts", call, agreement


def sentiment_case(run_dir: Path, settings: dict) -> Case:
    from rnnkit.tasks.sentiment.reading import read_texts

    s = _load(run_dir, "fp32").config.get("sentiment", {})
    data = read_texts(settings["val"], s.get("text_column", "text"),
                      s.get("label_column", "label"))
    texts = data.texts[:SENTENCES]

    def call(predictor) -> Callable[[], list[str]]:
        return lambda: [row["label"] for row in predictor.predict(texts)]

    return f"predict {len(texts)} dev sentences", call, lambda a, b: _share(a, b, "labels")


def translate_case(run_dir: Path, settings: dict) -> Case:
    beam = _load(run_dir, "fp32").decoding["beam"]
    with gzip.open(settings["val_src"], "rt", encoding="utf-8") as f:
        texts = [line.rstrip("\n") for line in itertools.islice(f, TRANSLATIONS)]

    def call(predictor) -> Callable[[], list[str]]:
        return lambda: predictor.predict(texts)

    return (f"translate {len(texts)} val sentences, beam {beam}", call,
            lambda a, b: _share(a, b, "outputs"))


def speech_case(run_dir: Path, settings: dict) -> Case:
    with open(settings["val"], newline="") as f:
        paths = _spread([row["path"] for row in csv.DictReader(f)], RECORDINGS)

    def call(predictor) -> Callable[[], list[str]]:
        return lambda: predictor.predict(paths)

    return (f"transcribe {len(paths)} val recordings (files), greedy", call,
            lambda a, b: _share(a, b, "transcripts"))


def forecast_case(run_dir: Path, settings: dict) -> Case:
    predictor = _load(run_dir, "fp32")
    saved = predictor.config.get("forecast", {})
    frame = read_table(settings["data"])
    index = predictor.spec.series_of(frame).index
    val_start, test_start = split_points(index, saved.get("val", 0.1), saved.get("test", 0.2))
    val_frame = frame.iloc[:test_start]  # the backtest of its last part: the validation part

    def call(predictor) -> Callable[[], np.ndarray]:
        return lambda: predictor.backtest(val_frame, start=test_start - val_start).predicted

    def agreement(a: np.ndarray, b: np.ndarray) -> str:
        return (f"max abs diff {np.abs(a - b).max() / max(a.std(), 1e-12):.2g} x std of fp32 "
                f"({a.shape[0]} windows)")

    return "backtest on the validation part, stride 1", call, agreement


CASES = {"textgen": textgen_case, "sentiment": sentiment_case, "translate": translate_case,
         "speech": speech_case, "forecast": forecast_case}


def _seconds(s: float) -> str:
    return f"{s:.2f} s" if s >= 1 else f"{s * 1000:.0f} ms"


def _one_line(e: BaseException) -> str:
    text = " ".join(str(e).split()) or "(no message)"
    return f"{type(e).__name__}: {text[:160]}".replace("|", "/")


def measure(task: str, steps: int, repeats: int, tmp: Path) -> str:
    """The table row of ``task``: trained in fp32, then its inference call in both precisions."""
    settings = quality.TASKS[task][0]
    settings = settings(tmp) if callable(settings) else settings  # speech writes its manifests
    run_dir = tmp / f"{task}-fp32"
    quality.run(task, "fp32", steps, run_dir)
    what, call_of, agreement = CASES[task](run_dir, settings)
    fp32, failure = call_of(_load(run_dir, "fp32")), ""
    try:
        bf16 = call_of(_load(run_dir, "bf16"))
    except Exception as e:  # reported in the table
        bf16, failure = None, _one_line(e)
    auto = _load(run_dir, "auto").precision
    times: dict[str, list[float]] = {"fp32": [], "bf16": []}
    outputs: dict[str, Any] = {}
    for _ in range(repeats):
        for name, call in (("fp32", fp32), ("bf16", bf16)):
            if call is None:
                continue
            t0 = time.perf_counter()
            try:
                out = call()
            except Exception as e:  # a bf16 dtype mismatch, say
                if name == "fp32":
                    raise
                bf16, failure = None, _one_line(e)
                continue
            times[name].append(time.perf_counter() - t0)
            outputs.setdefault(name, out)
    a = statistics.median(times["fp32"])
    if bf16 is None:
        return f"| {task} | {what} | {_seconds(a)} | fails: {failure} | - | - | {auto.used} |"
    b = statistics.median(times["bf16"])
    return (f"| {task} | {what} | {_seconds(a)} | {_seconds(b)} | {a / b:.2f}x | "
            f"{agreement(outputs['fp32'], outputs['bf16'])} | {auto.used}: {auto.reason} |")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--tasks", nargs="+", default=list(CASES), choices=list(CASES))
    ap.add_argument("--steps", type=int, default=150, help="training steps (fp32) per task")
    ap.add_argument("--repeats", type=int, default=5,
                    help="timed calls per precision, taking turns; the median is reported")
    ap.add_argument("--threads", type=int, default=None, help="torch.set_num_threads")
    args = ap.parse_args()
    if args.repeats < 1:
        ap.error("--repeats must be at least 1")
    if args.threads:
        torch.set_num_threads(args.threads)
    print(f"# {hardware.describe()}; load average at start {os.getloadavg()[0]:.1f}")
    print(f"# trained {args.steps} steps in fp32 (seed 0, each task's default recipe); "
          f"median of {args.repeats} interleaved calls per precision\n")
    print("| task | inference call | fp32 | bf16 | speed-up | agreement | auto chose |")
    print("|---|---|---|---|---|---|---|", flush=True)
    with tempfile.TemporaryDirectory() as tmp:
        for task in args.tasks:
            print(measure(task, args.steps, args.repeats, Path(tmp)), flush=True)
    print(f"\n# load average at the end {os.getloadavg()[0]:.1f}")


if __name__ == "__main__":
    main()
