"""``export(run_dir, "onnx" | "pt2")``: a run's graphs written beside an ``export.json``, each
checked against the PyTorch model on random inputs, and stepping checked against the full
sequence.

ONNX goes through torch.onnx's dynamo exporter, and through the TorchScript one where that fails
(the exporter used is recorded per graph); pt2 through ``torch.export`` and
``torch.export.save``. Both trace the export twins of ``rnnkit.export.layers``.
"""

from __future__ import annotations

import contextlib
import io
import json
import logging
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import torch

from rnnkit.errors import UserError, require
from rnnkit.export.graphs import Graph, Traced, graphs_of
from rnnkit.export.layers import FusedDirection

FORMATS = ("onnx", "pt2")
RTOL, ATOL = 1e-3, 1e-5
EXPORT_FILE = "export.json"


class ParityError(RuntimeError):
    """An exported graph disagrees with the PyTorch model."""


def _dims(graph: Graph) -> tuple:
    made: dict[str, Any] = {}
    shapes = []
    for name in graph.inputs:
        axes = graph.dims.get(name, {})
        shapes.append({axis: made.setdefault(dim, torch.export.Dim(dim, min=graph.mins.get(dim, 1)))
                       for axis, dim in axes.items()} or None)
    return (tuple(shapes),)  # Traced.forward takes the inputs as *inputs


@contextlib.contextmanager
def _quiet():
    """The exporters' progress lines and warnings are not the user's business."""
    logger = logging.getLogger("torch.onnx")
    level = logger.level
    logger.setLevel(logging.ERROR)
    try:
        with warnings.catch_warnings(), contextlib.redirect_stdout(io.StringIO()):
            warnings.simplefilter("ignore")
            yield
    finally:
        logger.setLevel(level)


def _example(graph: Graph) -> tuple:
    # sizes of at least 2: torch.export specialises dimensions of size 0 and 1
    return graph.example(2, 5, torch.Generator().manual_seed(0))


def export_onnx(graph: Graph, module, path: Path, dynamo: bool) -> None:
    require("onnx", "export", "ONNX export")
    args = _example(graph)
    torch._dynamo.reset()  # see export_pt2
    with _quiet():
        if dynamo:
            torch.onnx.export(module, args, str(path), dynamo=True, input_names=graph.inputs,
                              output_names=graph.outputs, dynamic_shapes=_dims(graph),
                              external_data=False, verbose=False)
            _check_dynamic(path, graph)
        else:
            torch.onnx.export(module, args, str(path), dynamo=False, input_names=graph.inputs,
                              output_names=graph.outputs, dynamic_axes=graph.dims,
                              opset_version=17)
    _loosen_outputs(path)


def _check_dynamic(path: Path, graph: Graph) -> None:
    """The dynamo exporter falls back to fixed sizes when it cannot keep one symbolic; such a
    graph would reject other batch sizes or lengths."""
    import onnx

    for tensor in onnx.load(str(path)).graph.input:
        dims = tensor.type.tensor_type.shape.dim
        fixed = [a for a in graph.dims.get(tensor.name, {}) if dims[a].HasField("dim_value")]
        if fixed:
            raise RuntimeError(f"input {tensor.name} has fixed sizes at axes {fixed}")


def _loosen_outputs(path: Path) -> None:
    """Leave the outputs' sizes to the runtime: the tracer writes the example's sizes into
    some of them, and onnxruntime warns whenever a run differs."""
    import onnx

    model = onnx.load(str(path))
    for out in model.graph.output:
        for axis, dim in enumerate(out.type.tensor_type.shape.dim):
            dim.Clear()
            dim.dim_param = f"{out.name}_{axis}"
    onnx.save(model, str(path))


def export_pt2(graph: Graph, module, path: Path) -> None:
    # dynamo's cache of the loop bodies it traced for earlier graphs adds guards against their
    # sizes ("time != 12") that fail this graph's dynamic dimensions
    torch._dynamo.reset()
    with _quiet():
        program = torch.export.export(module, _example(graph), dynamic_shapes=_dims(graph))
        torch.export.save(program, str(path))


def _fused_over_time(graph: Graph, module) -> bool:
    time = any("time" in axes.values() for axes in graph.dims.values())
    return time and any(isinstance(m, FusedDirection) for m in module.modules())


def _write(fmt: str, graph: Graph, module, path: Path, original
           ) -> tuple[str, Callable, list[dict[str, Any]]]:
    """Export one graph; for ONNX the dynamo exporter first, and the TorchScript one where it
    fails or its graph does not match (it fixes some sizes of recurrent layers to the
    example's). Returns the exporter used, the graph's runner and its parity rows."""
    attempts = [("torch.export", export_pt2)] if fmt == "pt2" else [
        ("dynamo", lambda *a: export_onnx(*a, dynamo=True)),
        ("torchscript", lambda *a: export_onnx(*a, dynamo=False))]
    if fmt == "onnx" and _fused_over_time(graph, module):
        # torch 2.13's dynamo exporter writes the example's length into the graph around
        # ONNX's LSTM/GRU/RNN ops (every such graph failed its parity check, after 3-5 s)
        attempts = attempts[1:]
    for i, (exporter, write) in enumerate(attempts):
        last = i == len(attempts) - 1
        try:
            write(graph, module, path)
            run = _runner(fmt, path, graph)
            rows = parity(graph, original, run)
        except Exception:  # noqa: BLE001 - the next exporter is the documented fallback
            if last:
                raise
            continue
        if all(r["ok"] for r in rows) or last:
            return exporter, run, rows
    raise AssertionError("unreachable")


def _runner(fmt: str, path: Path, graph: Graph) -> Callable[..., list[np.ndarray]]:
    """The exported graph as a function of tensors -> numpy outputs."""
    if fmt == "pt2":
        with _quiet():
            module = torch.export.load(str(path)).module()

        def run_pt2(*inputs):
            with torch.no_grad():
                return [o.numpy() for o in module(*inputs)]
        return run_pt2
    ort = require("onnxruntime", "export", "the ONNX parity check")
    options = ort.SessionOptions()
    # 4: fatal only; a failed dynamo graph is expected to fail some runs before the fallback
    options.intra_op_num_threads, options.log_severity_level = 1, 4
    session = ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])

    def run_onnx(*inputs):
        return session.run(None, {n: t.numpy() for n, t in zip(graph.inputs, inputs,
                                                                 strict=True)})
    return run_onnx


def _error(got: list[np.ndarray], want: list[np.ndarray]) -> tuple[float, bool]:
    worst, ok = 0.0, True
    for g, w in zip(got, want, strict=True):
        if g.shape != w.shape:
            return float("inf"), False
        if g.size:
            worst = max(worst, float(np.abs(g.astype(np.float64) - w).max()))
        ok = ok and bool(np.allclose(g, w, rtol=RTOL, atol=ATOL))
    return worst, ok


def parity(graph: Graph, original, run) -> list[dict[str, Any]]:
    """The graph against the PyTorch model at each of its (batch, length) cases."""
    rows, g = [], torch.Generator().manual_seed(1)
    for batch, length in graph.cases:
        inputs = graph.example(batch, length, g)
        with torch.no_grad():
            want = [w.float().numpy() if w.is_floating_point() else w.numpy()
                    for w in graph.fn(original, *inputs)]
        err, ok = _error(run(*inputs), want)
        rows.append({"graph": graph.name, "batch": batch, "length": length,
                     "max_abs_error": err, "ok": ok})
    return rows


def step_check(task: str, graphs: dict[str, Graph], runs: dict[str, Callable]
               ) -> dict[str, Any] | None:
    """Stepping the one-step graph through a sequence against the full graph on it."""
    if "step" not in graphs:
        return None
    g = torch.Generator().manual_seed(2)
    full, step = graphs["full"], graphs["step"]
    batch, steps = 2, 8
    if task == "textgen":
        tokens, *state = full.example(batch, steps, g)
        want = runs["full"](tokens, *state)
        got, last = [], list(state)
        for t in range(steps):
            logits, *last = runs["step"](tokens[:, t], *last)
            got.append(logits)
            last = [torch.from_numpy(s) for s in last]
        got, want = [np.stack(got, 1), *(s.numpy() for s in last)], want
    else:  # streaming speech: `subsample` feature frames per step, from zero tails and state
        sub = step.example(1, 1, g)[0].shape[1]
        feats = torch.randn(batch, steps * sub, full.example(1, 1, g)[0].shape[2], generator=g)
        want = runs["full"](feats, torch.full((batch,), steps * sub))[:1]
        carry = [torch.zeros_like(t) for t in step.example(batch, 1, g)[1:]]
        got = []
        for t in range(steps):
            log_probs, *carry = runs["step"](feats[:, t * sub:(t + 1) * sub], *carry)
            got.append(log_probs)
            carry = [torch.from_numpy(c) for c in carry]
        got = [np.stack(got, 1)]
    err, ok = _error(got, want)
    return {"graph": "step == full", "batch": batch, "length": steps, "max_abs_error": err,
            "ok": ok}


def table(rows: list[dict[str, Any]]) -> str:
    lines = [f"{'graph':<14}{'batch':>6}{'length':>8}{'max abs error':>15}"]
    for r in rows:
        lines.append(f"{r['graph']:<14}{r['batch']:>6}{r['length']:>8}"
                     f"{r['max_abs_error']:>15.2e}{'' if r['ok'] else '  FAIL'}")
    return "\n".join(lines)


def export(run_dir: str | Path, fmt: str = "onnx", out: str | Path | None = None, *,
           echo: Callable[[str], None] | None = print) -> Path:
    """Export the run ``run_dir`` as ``fmt`` into ``out`` (default RUN_DIR/export-FMT), check
    parity, write export.json; returns the export directory."""
    from rnnkit.tasks import load

    if fmt not in FORMATS:
        raise UserError(f"the export format must be onnx or pt2, found {fmt!r}.")
    run_dir = Path(run_dir)
    predictor = load(run_dir)
    graphs, facts, twin = graphs_of(predictor, loop=fmt == "pt2")
    out = Path(out) if out is not None else run_dir / f"export-{fmt}"
    out.mkdir(parents=True, exist_ok=True)
    rows, runs, entries = [], {}, {}
    with torch.no_grad():
        for graph in graphs:
            path = out / f"{graph.name}.{fmt}"
            exporter, runs[graph.name], checked = _write(
                fmt, graph, Traced(graph.fn, twin).eval(), path, predictor.module)
            rows += checked
            entries[graph.name] = {"file": path.name, "inputs": graph.inputs,
                                   "outputs": graph.outputs, "dims": graph.dims,
                                   "exporter": exporter}
    stepped = step_check(predictor.task, {g.name: g for g in graphs}, runs)
    rows += [stepped] if stepped else []
    if echo is not None:
        echo(table(rows))
    bad = [r for r in rows if not r["ok"]]
    if bad:
        raise ParityError(f"the exported {bad[0]['graph']} graph differs from the PyTorch model "
                          f"by {bad[0]['max_abs_error']:.2e} at batch {bad[0]['batch']}, length "
                          f"{bad[0]['length']} (tolerance rtol {RTOL}, atol {ATOL}).")
    meta = {"format": fmt, "task": predictor.task, "torch_version": torch.__version__,
            "graphs": entries, "model": facts, "config": predictor.config, "parity": rows}
    (out / EXPORT_FILE).write_text(json.dumps(meta, indent=2) + "\n", encoding="utf-8")
    return out
