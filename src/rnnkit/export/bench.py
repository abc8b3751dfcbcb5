"""Timing an ONNX export in onnxruntime against the run's PyTorch model, for benchmarks:
one generation step of a language model, one classification batch."""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import torch


def _best_ms(fn: Callable[[], object], repeats: int) -> float:
    fn()  # warm-up: first runs allocate
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return 1000 * float(np.median(times))


def time_step(run_dir: str | Path, export_dir: str | Path, batch: int = 1, repeats: int = 200,
              threads: int = 1) -> dict[str, float]:
    """Median milliseconds of one generation step for ``batch`` sequences."""
    from rnnkit.export.runtime import load_onnx
    from rnnkit.tasks import load

    torch.set_num_threads(threads)
    model = load(run_dir).model
    stepper = load_onnx(export_dir, threads=threads)
    tokens = np.zeros(batch, dtype=np.int64)
    states = [stepper.prefill([0], None)[1] for _ in range(batch)]
    with torch.inference_mode():
        _, state = model(torch.zeros(batch, 1, dtype=torch.long))
        token = torch.zeros(batch, dtype=torch.long)
        torch_ms = _best_ms(lambda: model.step(token, state), repeats)
    ort_ms = _best_ms(lambda: stepper.step(tokens, states), repeats)
    return {"torch_ms": torch_ms, "onnxruntime_ms": ort_ms, "speedup": torch_ms / ort_ms}


def time_classify(run_dir: str | Path, export_dir: str | Path, texts: list[str],
                  repeats: int = 20, threads: int = 1) -> dict[str, float]:
    """Median milliseconds to classify ``texts`` (one batch up to 256 texts)."""
    from rnnkit.export.runtime import load_onnx
    from rnnkit.tasks import load

    torch.set_num_threads(threads)
    predictor = load(run_dir)
    onnx = load_onnx(export_dir, threads=threads)
    torch_ms = _best_ms(lambda: predictor.predict_proba(texts), repeats)
    ort_ms = _best_ms(lambda: onnx.predict_proba(texts), repeats)
    return {"torch_ms": torch_ms, "onnxruntime_ms": ort_ms, "speedup": torch_ms / ort_ms}
