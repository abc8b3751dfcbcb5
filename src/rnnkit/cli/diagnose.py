"""``rnnkit diagnose``: vanishing gradients measured, and long-dependency benchmarks."""

import csv
import shutil
import tempfile
import time
from pathlib import Path

import typer

from rnnkit.cli.app import diagnose_app
from rnnkit.errors import UserError
from rnnkit.models.sequence_regressor import ARCHS, check_arch, check_init

ARCH_HELP = f"Comma-separated architectures: {', '.join(ARCHS)}."
INIT_HELP = ("Weight init: default (torch's), orthogonal (recurrent weights) or chrono (gate biases "
             "for dependencies up to --length; gated archs only, rnn keeps the default).")
FORGET_HELP = ("Bias of the gate that keeps the state (LSTM forget gate, GRU update gate); "
               "gated archs only.")


def parse_archs(text: str) -> list[str]:
    archs = list(dict.fromkeys(a.strip().lower() for a in text.split(",") if a.strip()))
    if not archs:
        raise UserError(f"--arch expected a comma-separated list of {', '.join(ARCHS)}, found "
                        f"{text!r}")
    for arch in archs:
        check_arch(arch)
    return archs


def prepare_out(out: Path) -> Path:
    """Create ``out`` and check that it can be written to, before any work is done."""
    try:
        out.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryFile(dir=out):
            pass
    except OSError as e:
        raise UserError(f"cannot write to the output directory {out}: "
                        f"{e.strerror or e}") from None
    return out


def check_common(length: int, init: str, clip: float | None) -> float | None:
    if length < 2:
        raise UserError(f"--length must be at least 2 steps, found {length}")
    check_init(init)
    if clip is not None and clip < 0:
        raise UserError(f"--clip expected a norm >= 0 (0 turns clipping off), found {clip}")
    return clip or None


@diagnose_app.command()
def gradients(
    arch: str = typer.Option("rnn,lstm,gru,mingru", help=ARCH_HELP),
    length: int = typer.Option(200, help="Sequence length T: lags 0 .. T-1 are measured."),
    out: Path = typer.Option(Path("diagnose_out"), help="Directory for the CSV and the PNG."),
    steps: int = typer.Option(300, help="Training steps between the two measurements (0: none)."),
    hidden: int = typer.Option(64, help="Hidden size."),
    init: str = typer.Option("default", help=INIT_HELP),
    forget_bias: float | None = typer.Option(None, help=FORGET_HELP),
    clip: float = typer.Option(1.0, help="Gradient-norm clipping while training (0: off)."),
    batch_size: int = typer.Option(64, help="Training batch size."),
    lr: float = typer.Option(3e-3, help="Learning rate (AdamW)."),
    seed: int = typer.Option(0, help="Random seed."),
    quiet: bool = typer.Option(False, "--quiet", help="No progress output."),
) -> None:
    """Measure how the gradient of the last step's loss decays with the time lag.

    On adding-problem sequences, ||dL_T/dx_t|| is averaged over a batch for every lag T - t, at
    initialisation and after STEPS training steps; writes gradient_decay.csv (arch, phase, lag,
    grad_norm) and gradient_decay.png, and prints the norms relative to lag 0.

    Example: rnnkit diagnose gradients --arch rnn,lstm,gru --length 200 --out diagnose_out
    """
    from rnnkit.tasks.gradient_decay import GradientDiagnosticConfig

    cfg = GradientDiagnosticConfig(
        archs=parse_archs(arch), length=length, hidden=hidden, init=init,
        forget_bias=forget_bias, clip=check_common(length, init, clip), steps=steps,
        batch_size=batch_size, lr=lr, seed=seed)
    run_gradients(cfg, prepare_out(out), quiet)


def run_gradients(cfg, out: Path, quiet: bool):
    from rnnkit.tasks.gradient_decay import (
        format_table,
        measure_gradient_decay,
        plot_gradient_decay,
        write_csv,
    )

    # The training runs are only a means to the trained measurement: they are not kept.
    with tempfile.TemporaryDirectory(prefix="rnnkit-diagnose-") as runs:
        result = measure_gradient_decay(cfg, Path(runs), quiet=quiet, log=typer.echo)
    write_csv(result, out / "gradient_decay.csv")
    plot_gradient_decay(result, out / "gradient_decay.png", title_note=remedies_note(cfg))
    if not quiet:
        typer.echo(f"||dL_T/dx_t|| relative to lag 0 (T={cfg.length}, hidden {cfg.hidden}, "
                   f"{remedies_note(cfg)}):")
        typer.echo(format_table(result))
        typer.echo(f"wrote {out / 'gradient_decay.csv'} and {out / 'gradient_decay.png'}")
    return result


def remedies_note(cfg) -> str:
    parts = [f"init {cfg.init}"]
    if cfg.forget_bias is not None:
        parts.append(f"forget bias {cfg.forget_bias:g}")
    parts.append(f"clip {cfg.clip:g}" if cfg.clip else "no clipping")
    return ", ".join(parts)


@diagnose_app.command()
def adding(
    arch: str = typer.Option("rnn,lstm,gru", help=ARCH_HELP),
    length: int = typer.Option(100, help="Sequence length T."),
    steps: int = typer.Option(1000, help="Training steps per arch."),
    out: Path = typer.Option(Path("diagnose_out"),
                             help="Directory for adding_results.csv and the learning curves."),
    hidden: int = typer.Option(64, help="Hidden size."),
    init: str = typer.Option("default", help=INIT_HELP),
    forget_bias: float | None = typer.Option(None, help=FORGET_HELP),
    clip: float = typer.Option(1.0, help="Gradient-norm clipping (0: off)."),
    batch_size: int = typer.Option(64, help="Training batch size."),
    lr: float = typer.Option(3e-3, help="Learning rate (AdamW)."),
    seed: int = typer.Option(0, help="Random seed."),
    quiet: bool = typer.Option(False, "--quiet", help="No progress output."),
) -> None:
    """The adding problem (Hochreiter & Schmidhuber 1997): train each arch, report test MSE.

    Each step holds a value in [0, 1] and a marker; the target is the sum of the two marked
    values (one in each half). Always predicting 1 scores MSE 0.167; an arch counts as solving
    the task when its test MSE is below a tenth of that.

    Example: rnnkit diagnose adding --arch rnn,lstm,gru --length 100 --steps 1000
    """
    import torch

    from rnnkit.models.sequence_regressor import SequenceRegressorConfig
    from rnnkit.tasks.memory_tasks import (
        ADDING_BASELINE_MSE,
        SOLVED_FRACTION,
        AddingConfig,
        AddingTask,
        train_task,
    )

    archs = parse_archs(arch)
    clip_norm = check_common(length, init, clip)
    if steps < 1:
        raise UserError(f"--steps must be at least 1, found {steps}")
    out = prepare_out(out)
    data_cfg = AddingConfig(length=length, batch_size=batch_size,
                            steps_per_epoch=min(steps, 250), seed=seed)
    tasks, models = {}, {}
    for a in archs:  # build every model first: a missing arch fails before any training
        model_cfg = SequenceRegressorConfig(
            arch=a, input_size=2, hidden_size=hidden, output_size=1, init=init,
            forget_bias=forget_bias, t_max=length if init == "chrono" else None)
        tasks[a] = AddingTask(data_cfg, model_cfg)
        torch.manual_seed(seed)
        models[a] = tasks[a].build_model()
    threshold = SOLVED_FRACTION * ADDING_BASELINE_MSE
    rows = []
    for a in archs:
        model = models[a]
        if not quiet:
            typer.echo(f"training {a} for {steps} steps (T={length}, hidden {hidden})")
        t0 = time.perf_counter()
        # Only the learning curve of each run is kept, so that a rerun into the same --out works.
        with tempfile.TemporaryDirectory(prefix="rnnkit-adding-") as run_dir:
            metrics = train_task(model, tasks[a], steps=steps, lr=lr, clip=clip_norm, seed=seed,
                                 run_dir=Path(run_dir), quiet=quiet)
            shutil.copyfile(Path(run_dir) / "metrics.csv", out / f"adding_{a}_metrics.csv")
        mse = metrics["val_mse"]
        rows.append({"arch": a, "length": length, "steps": steps, "test_mse": mse,
                     "vs_baseline": mse / ADDING_BASELINE_MSE, "solved": mse < threshold,
                     "seconds": time.perf_counter() - t0})
    with open(out / "adding_results.csv", "w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=list(rows[0]))
        w.writeheader()
        w.writerows(rows)
    typer.echo(f"adding problem, T={length}, {steps} steps, hidden {hidden}: test MSE "
               f"(baseline {ADDING_BASELINE_MSE:.3f} = always predicting 1)")
    for r in rows:
        typer.echo(f"  {r['arch']:<9} {r['test_mse']:.4f}  ({r['vs_baseline']:.3f} x baseline)  "
                   f"{'solved' if r['solved'] else 'not solved'}  [{r['seconds']:.0f}s]")
    solved = [r["arch"] for r in rows if r["solved"]]
    typer.echo(f"rule: solved when test MSE < {SOLVED_FRACTION:g} x baseline = {threshold:.4f}; "
               f"solved: {', '.join(solved) or 'none'}; not solved: "
               f"{', '.join(r['arch'] for r in rows if not r['solved']) or 'none'}")


def demo_step(out: Path, quiet: bool) -> None:
    """The `make demo` step: gradient decay of each available arch at T=100, briefly trained."""
    import rnnkit.nn
    from rnnkit.tasks.gradient_decay import GradientDiagnosticConfig, vanishing_lag

    archs = ["rnn", "lstm", "gru"] + (["mingru"] if hasattr(rnnkit.nn, "MinGRU") else [])
    cfg = GradientDiagnosticConfig(archs=archs, length=100, hidden=32, steps=100, batch_size=32)
    result = run_gradients(cfg, prepare_out(out), quiet=True)
    parts = []
    for a in archs:
        gone = vanishing_lag(result.relative(a, "init"))
        parts.append(f"{a} {'lag ' + str(gone) if gone is not None else 'never'}")
    typer.echo(f"  gradient falls below 1e-6 of lag 0 at init: {'; '.join(parts)} "
               f"-> {out / 'gradient_decay.png'}")
