"""What ``rnnkit diagnose`` runs: the gradient-decay measurement and the long-memory benchmarks,
with their files and result lines, and the demo's gradient step."""

from __future__ import annotations

import csv
import tempfile
from collections.abc import Callable
from pathlib import Path

from rnnkit.tasks.gradient_decay import (
    GradientDecay,
    GradientDiagnosticConfig,
    format_table,
    measure_gradient_decay,
    plot_gradient_decay,
    write_csv,
)
from rnnkit.tasks.memory_tasks import SOLVED_FRACTION, MemoryTask, run_memory_benchmark


def remedies_note(cfg: GradientDiagnosticConfig) -> str:
    where = {"orthogonal": " (archs with recurrent weights)", "chrono": " (gated archs)"}
    parts = [f"init {cfg.init}{where.get(cfg.init, '')}"]
    if cfg.forget_bias is not None:
        parts.append(f"forget bias {cfg.forget_bias:g} (gated archs)")
    parts.append(f"clip {cfg.clip:g}" if cfg.clip else "no clipping")
    return ", ".join(parts)


def run_gradients(cfg: GradientDiagnosticConfig, out: Path, quiet: bool,
                  log: Callable[[str], None] = print) -> tuple[GradientDecay, list[str]]:
    """Measure, write gradient_decay.csv and .png into ``out``; the result and its table lines
    (``quiet`` only silences training)."""
    # The training runs are only a means to the trained measurement: they are not kept.
    with tempfile.TemporaryDirectory(prefix="rnnkit-diagnose-") as runs:
        result = measure_gradient_decay(cfg, Path(runs), quiet=quiet, log=log)
    write_csv(result, out / "gradient_decay.csv")
    plot_gradient_decay(result, out / "gradient_decay.png", title_note=remedies_note(cfg))
    lines = [f"||dL_T/dx_t|| relative to lag 0 (T={cfg.length}, hidden {cfg.hidden}, "
             f"{remedies_note(cfg)}):", format_table(result),
             f"wrote {out / 'gradient_decay.csv'} and {out / 'gradient_decay.png'}"]
    return result, lines


def run_memory(task_cls: type[MemoryTask], archs: list[str], out: Path, *, length: int,
               steps: int, hidden: int, log: Callable[[str], None] = print, **options
               ) -> list[str]:
    """Train every arch on the adding or copy task, write ``<task>_results.csv`` and the
    learning curves into ``out``, and return the result lines."""
    rows = run_memory_benchmark(task_cls, archs, length=length, steps=steps, hidden=hidden,
                                curves_dir=out, log=log, **options)
    name = task_cls.name
    with open(out / f"{name}_results.csv", "w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=list(rows[0]))
        w.writeheader()
        w.writerows(rows)
    baseline = rows[0]["test_loss"] / rows[0]["vs_baseline"]
    if name == "adding":
        lines = [f"adding problem, T={length}, {steps} steps, hidden {hidden}: test MSE "
                 f"(baseline {baseline:.3f} = always predicting 1)"]
    else:
        lines = [f"copy task, delay {length}, {steps} steps, hidden {hidden}: test "
                 f"cross-entropy per step (baseline {baseline:.4f} = blanks, then uniform "
                 "guesses)"]
    for r in rows:
        recall = f"  recall accuracy {r['recall_accuracy']:.3f}" if "recall_accuracy" in r else ""
        lines.append(f"  {r['arch']:<9} {r['test_loss']:.4f}  ({r['vs_baseline']:.3f} x "
                     f"baseline){recall}  {'solved' if r['solved'] else 'not solved'}  "
                     f"[{r['seconds']:.0f}s]")
    solved = [r["arch"] for r in rows if r["solved"]]
    unsolved = [r["arch"] for r in rows if not r["solved"]]
    lines.append(f"rule: solved when test {'MSE' if name == 'adding' else 'loss'} < "
                 f"{SOLVED_FRACTION:g} x baseline = {SOLVED_FRACTION * baseline:.4f}; solved: "
                 f"{', '.join(solved) or 'none'}; not solved: {', '.join(unsolved) or 'none'}")
    return lines


def demo(out: Path, quiet: bool) -> list[str]:
    """The `make demo` step: gradient decay of four archs at T=100, at initialisation and after
    100 training steps on the adding problem (about a minute on 2 cores), in ``out/diagnose``."""
    archs = ["rnn", "lstm", "gru", "mingru"]
    cfg = GradientDiagnosticConfig(archs=archs, length=100, hidden=32, steps=100, batch_size=32)
    where = out / "diagnose"
    where.mkdir(parents=True, exist_ok=True)
    result, _ = run_gradients(cfg, where, quiet=True)
    lag = 50
    parts = [f"{a} {result.relative(a, 'init')[lag]:.0e} -> "
             f"{result.relative(a, 'trained')[lag]:.0e}" for a in archs]
    return [f"  gradient at lag {lag} relative to lag 0, at init -> after {cfg.steps} steps: "
            f"{', '.join(parts)}; picture: {where / 'gradient_decay.png'}"]
