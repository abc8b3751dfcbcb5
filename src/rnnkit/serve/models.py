"""The models a server holds (``Served``), the server's state, and how an endpoint finds a model
and runs it (``get_model``, ``run_model``).

Predictors are not safe to call from two threads at once (a classifier's open word encoder
grows as it reads), so each model has a lock and its calls run one at a time, on a worker thread
off the event loop, under ``torch.inference_mode``.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from starlette.concurrency import run_in_threadpool

from rnnkit.serve.errors import ApiError
from rnnkit.serve.limits import Limits
from rnnkit.serve.metrics import Metrics, label_model

# the endpoint of each task, for the sentence that says a model is used with the wrong one
ENDPOINTS = {"textgen": "/v1/completions", "sentiment": "/v1/classify",
             "translate": "/v1/translate", "speech": "/v1/transcribe",
             "forecast": "/v1/forecast"}


@dataclass
class Served:
    """One loaded model: its name in requests, task, run directory and predictor (``stepper``:
    the Stepper of a language model, for batched generation)."""

    name: str
    task: str
    run_dir: Path
    predictor: Any
    stepper: Any = None
    engine: str = "torch"
    lock: threading.Lock = field(default_factory=threading.Lock, repr=False)


@dataclass
class ServerState:
    """Everything the endpoints share: ``app.state.rnnkit``."""

    models: dict[str, Served] = field(default_factory=dict)
    limits: Limits = field(default_factory=Limits)
    metrics: Metrics = field(default_factory=Metrics)
    sessions: Any = None
    engine: str = "torch"
    device: str = "cpu"
    ready: bool = False
    load_error: str | None = None  # why loading failed; /health says it
    inflight: int = 0
    batch_window_s: float = 0.0  # how long a classification waits for others to join its batch
    extras: dict[str, Any] = field(default_factory=dict)  # per-model helpers (batchers, engines)


def _needs(tasks: tuple[str, ...]) -> str:
    return " or ".join(f"a {t}" for t in tasks)


def get_model(state: ServerState, name: str, task_or_tasks: str | tuple[str, ...]) -> Served:
    """The served model ``name`` if its task is one of ``task_or_tasks``; 503 while loading, 404
    for a name the server does not hold, 400 for a model of another task."""
    tasks = (task_or_tasks,) if isinstance(task_or_tasks, str) else tuple(task_or_tasks)
    if not state.ready:
        raise ApiError(503, "the models are still loading; retry when GET /health says ok.",
                       "server_error", {"Retry-After": "1"})
    served = state.models.get(name)
    if served is None:
        known = ", ".join(sorted(state.models)) or "none"
        raise ApiError(404, f"unknown model {name!r}; the models are {known}.",
                       "not_found_error")
    label_model(name)
    if served.task not in tasks:
        endpoint = ENDPOINTS.get(tasks[0], "this endpoint")
        raise ApiError(400, f"model {name} is a {served.task} model; {endpoint} needs "
                            f"{_needs(tasks)} model.")
    return served


async def run_model(state: ServerState, served: Served, fn: Callable, *args: Any,
                    **kwargs: Any) -> Any:
    """``fn(*args, **kwargs)`` on a worker thread, one call per model at a time, under
    ``torch.inference_mode``; 408 when it takes longer than ``request_timeout_s`` (the call
    itself runs to its end on its thread, but the request is answered and its slot freed)."""

    def call():
        with served.lock:
            if served.engine != "torch":
                return fn(*args, **kwargs)
            import torch

            with torch.inference_mode():
                return fn(*args, **kwargs)

    limit = state.limits.request_timeout_s
    try:
        return await asyncio.wait_for(run_in_threadpool(call), limit)
    except TimeoutError:
        raise ApiError(408, f"the request took longer than the limit of {limit:g} s "
                            "(--request-timeout).", "timeout_error") from None


def load_served(name: str, run_dir: Path, engine: str = "torch", device: str = "cpu"
                ) -> Served:
    """Load one run for serving: the PyTorch predictor, or with ``engine="onnx"`` the
    onnxruntime one for the tasks it supports (exporting the run first when it has no
    ``export-onnx`` folder)."""
    from rnnkit.tasks import registry

    task = registry.task_of_run(run_dir)
    if engine == "onnx" and task in onnx_tasks():
        return load_onnx_served(name, task, Path(run_dir))
    predictor = registry.get(task).load(run_dir, device=device)
    stepper = None
    if task == "textgen":
        from rnnkit.serve.stepper import TorchStepper

        stepper = TorchStepper(predictor)
    return Served(name, task, Path(run_dir), predictor, stepper)


def onnx_tasks() -> tuple[str, ...]:
    """The tasks the onnxruntime predictor runs (the others are served by PyTorch)."""
    from rnnkit.export.runtime import PREDICTORS

    return tuple(PREDICTORS)


def load_onnx_served(name: str, task: str, run_dir: Path) -> Served:
    """The onnxruntime predictor of ``run_dir/export-onnx``, exported (with its parity check)
    first when that folder has no export.json; a language model's predictor is its own
    Stepper."""
    from rnnkit.export.runtime import load_onnx

    export_dir = run_dir / "export-onnx"
    if not (export_dir / "export.json").is_file():
        from rnnkit.export.exporter import export

        export(run_dir, "onnx", export_dir, echo=None)
    predictor = load_onnx(export_dir)
    return Served(name, task, run_dir, predictor, predictor if task == "textgen" else None,
                  engine="onnx")


def describe(served: Served) -> dict[str, Any]:
    """A few facts about a model for ``GET /v1/models`` (what a client needs to call it)."""
    config = served.predictor.config or {}
    model = config.get("model", {}) if isinstance(config.get("model"), dict) else {}
    facts: dict[str, Any] = {"engine": served.engine}
    for key in ("arch", "layers", "hidden", "bidirectional"):
        if key in model:
            facts[key] = model[key]
    if served.task == "sentiment":
        facts["labels"] = [str(x) for x in config.get("labels", [])]
        facts["explain"] = model.get("pooling") == "attention"
    elif served.task == "speech":
        facts["sample_rate"] = config.get("features", {}).get("sample_rate")
        facts["streaming"] = not model.get("bidirectional", True)
    elif served.task == "forecast":
        facts.update(forecast_columns(served.predictor))
    return facts


def forecast_columns(predictor) -> dict[str, Any]:
    """The columns a forecast model reads (from the run's data spec) and its horizon."""
    d = (predictor.config or {}).get("data", {})
    columns = [*d.get("targets", []), *d.get("past", []), *d.get("future", [])]
    return {"time_column": d.get("time_col"), "id_column": d.get("id_col"),
            "value_column": d.get("value_col"), "columns": columns,
            "targets": list(d.get("targets", [])), "lookback": d.get("lookback"),
            "horizon": d.get("horizon")}
