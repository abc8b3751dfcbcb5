"""``rnnkit diagnose``: vanishing gradients measured, and long-dependency benchmarks."""

import csv
import tempfile
from pathlib import Path
from typing import Annotated

import typer

from rnnkit.cli.app import diagnose_app
from rnnkit.errors import UserError
from rnnkit.models.sequence_regressor import check_init
from rnnkit.nn.registry import LAYERS, check_arch
from rnnkit.tasks.gradient_decay import (
    GradientDiagnosticConfig,
    format_table,
    measure_gradient_decay,
    plot_gradient_decay,
    write_csv,
)
from rnnkit.tasks.memory_tasks import (
    SOLVED_FRACTION,
    AddingTask,
    CopyTask,
    MemoryTask,
    run_memory_benchmark,
)

ARCH_HELP = f"Comma-separated architectures: {', '.join(LAYERS)}."
INIT_HELP = ("Weight init: default (torch's), orthogonal (recurrent weights; not mingru/minlstm, "
             "which have none) or chrono (gate biases for dependencies up to --length; gated "
             "archs only). An arch an init does not apply to keeps the default.")
FORGET_HELP = ("Bias of the gate that keeps the state (LSTM forget gate, GRU update gate); "
               "gated archs only.")

# Options the three commands share (each command sets its own default).
ArchOpt = Annotated[str, typer.Option(help=ARCH_HELP)]
HiddenOpt = Annotated[int, typer.Option(help="Hidden size.")]
InitOpt = Annotated[str, typer.Option(help=INIT_HELP)]
ForgetOpt = Annotated[float | None, typer.Option(help=FORGET_HELP)]
ClipOpt = Annotated[float, typer.Option(help="Gradient-norm clipping while training (0: off).")]
BatchOpt = Annotated[int, typer.Option(help="Training batch size.")]
LrOpt = Annotated[float, typer.Option(help="Learning rate (AdamW).")]
SeedOpt = Annotated[int, typer.Option(help="Random seed.")]
QuietOpt = Annotated[bool, typer.Option("--quiet", help="No training progress; results only.")]


def parse_archs(text: str) -> list[str]:
    archs = list(dict.fromkeys(a.strip().lower() for a in text.split(",") if a.strip()))
    if not archs:
        raise UserError(f"--arch expected a comma-separated list of {', '.join(LAYERS)}, found "
                        f"{text!r}")
    for arch in archs:
        check_arch(arch, tuple(LAYERS))
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


def check_clip(clip: float | None) -> float | None:
    if clip is not None and clip < 0:
        raise UserError(f"--clip expected a norm >= 0 (0 turns clipping off), found {clip}")
    return clip or None


@diagnose_app.command()
def gradients(
    arch: ArchOpt = "rnn,lstm,gru,mingru",
    length: int = typer.Option(200, help="Sequence length T: lags 0 .. T-1 are measured."),
    out: Path = typer.Option(Path("diagnose_out"), help="Directory for the CSV and the PNG."),
    steps: int = typer.Option(300, help="Training steps between the two measurements (0: none)."),
    hidden: HiddenOpt = 64,
    init: InitOpt = "default",
    forget_bias: ForgetOpt = None,
    clip: ClipOpt = 1.0,
    batch_size: BatchOpt = 64,
    lr: LrOpt = 3e-3,
    seed: SeedOpt = 0,
    quiet: QuietOpt = False,
) -> None:
    """Measure how the gradient of the last step's loss decays with the time lag.

    On adding-problem sequences, ||dL_T/dx_t|| is averaged over a batch for every lag T - t, at
    initialisation and after STEPS training steps; writes gradient_decay.csv (arch, phase, lag,
    grad_norm) and gradient_decay.png, and prints the norms relative to lag 0.

    Example: rnnkit diagnose gradients --arch rnn,lstm,gru --length 200 --out diagnose_out
    """
    if length < 2:
        raise UserError(f"--length must be at least 2 steps, found {length}")
    cfg = GradientDiagnosticConfig(
        archs=parse_archs(arch), length=length, hidden=hidden, init=init,
        forget_bias=forget_bias, clip=check_clip(clip), steps=steps,
        batch_size=batch_size, lr=lr, seed=seed)
    run_gradients(cfg, prepare_out(out), quiet)


def run_gradients(cfg: GradientDiagnosticConfig, out: Path, quiet: bool, table: bool = True):
    """Measure, write the CSV and PNG, and print the table (--quiet only silences training)."""
    # The training runs are only a means to the trained measurement: they are not kept.
    with tempfile.TemporaryDirectory(prefix="rnnkit-diagnose-") as runs:
        result = measure_gradient_decay(cfg, Path(runs), quiet=quiet, log=typer.echo)
    write_csv(result, out / "gradient_decay.csv")
    plot_gradient_decay(result, out / "gradient_decay.png", title_note=remedies_note(cfg))
    if table:
        typer.echo(f"||dL_T/dx_t|| relative to lag 0 (T={cfg.length}, hidden {cfg.hidden}, "
                   f"{remedies_note(cfg)}):")
        typer.echo(format_table(result))
        typer.echo(f"wrote {out / 'gradient_decay.csv'} and {out / 'gradient_decay.png'}")
    return result


def remedies_note(cfg: GradientDiagnosticConfig) -> str:
    where = {"orthogonal": " (archs with recurrent weights)", "chrono": " (gated archs)"}
    parts = [f"init {cfg.init}{where.get(cfg.init, '')}"]
    if cfg.forget_bias is not None:
        parts.append(f"forget bias {cfg.forget_bias:g} (gated archs)")
    parts.append(f"clip {cfg.clip:g}" if cfg.clip else "no clipping")
    return ", ".join(parts)


@diagnose_app.command()
def adding(
    arch: ArchOpt = "rnn,lstm,gru",
    length: int = typer.Option(100, help="Sequence length T."),
    steps: int = typer.Option(2000, help="Training steps per arch."),
    out: Path = typer.Option(Path("diagnose_out"),
                             help="Directory for adding_results.csv and the learning curves."),
    hidden: HiddenOpt = 64,
    init: InitOpt = "default",
    forget_bias: ForgetOpt = None,
    clip: ClipOpt = 1.0,
    batch_size: BatchOpt = 64,
    lr: LrOpt = 3e-3,
    seed: SeedOpt = 0,
    quiet: QuietOpt = False,
) -> None:
    """The adding problem (Hochreiter & Schmidhuber 1997): train each arch, report test MSE.

    Each step holds a value in [0, 1] and a marker; the target is the sum of the two marked
    values (one in each half). Always predicting 1 scores MSE 0.167; an arch counts as solving
    the task when its test MSE is below a tenth of that.

    Example: rnnkit diagnose adding --arch rnn,lstm,gru --length 100 --steps 2000
    """
    if length < 2:
        raise UserError(f"--length must be at least 2 steps, found {length}")
    run_benchmark(AddingTask, parse_archs(arch), length, steps, out, hidden, init, forget_bias,
                  clip, batch_size, lr, seed, quiet)


@diagnose_app.command()
def copy(
    arch: ArchOpt = "rnn,lstm,gru",
    delay: int = typer.Option(50, help="Steps between the last symbol and the recall signal."),
    steps: int = typer.Option(1000, help="Training steps per arch."),
    out: Path = typer.Option(Path("diagnose_out"),
                             help="Directory for copy_results.csv and the learning curves."),
    hidden: HiddenOpt = 64,
    init: InitOpt = "default",
    forget_bias: ForgetOpt = None,
    clip: ClipOpt = 1.0,
    batch_size: BatchOpt = 64,
    lr: LrOpt = 3e-3,
    seed: SeedOpt = 0,
    quiet: QuietOpt = False,
) -> None:
    """The copy task: remember 10 symbols (of 8) and recall them after DELAY blank steps.

    The model must output blanks until the recall signal and the 10 symbols after it. Blanks,
    then uniform guesses, score cross-entropy 10 ln 8 / (DELAY + 20) per step, the baseline; an
    arch counts as solving the task when its test loss is below a tenth of that.

    Example: rnnkit diagnose copy --arch rnn,lstm,gru --delay 50 --steps 1000
    """
    if delay < 1:
        raise UserError(f"--delay must be at least 1 step, found {delay}")
    run_benchmark(CopyTask, parse_archs(arch), delay, steps, out, hidden, init, forget_bias,
                  clip, batch_size, lr, seed, quiet)


def run_benchmark(task_cls: type[MemoryTask], archs: list[str], length: int, steps: int,
                  out: Path, hidden: int, init: str, forget_bias: float | None, clip: float,
                  batch_size: int, lr: float, seed: int, quiet: bool) -> None:
    check_init(init)
    clip_norm = check_clip(clip)
    if steps < 1:
        raise UserError(f"--steps must be at least 1, found {steps}")
    out = prepare_out(out)
    rows = run_memory_benchmark(
        task_cls, archs, length=length, steps=steps, hidden=hidden, init=init,
        forget_bias=forget_bias, clip=clip_norm, batch_size=batch_size, lr=lr, seed=seed,
        curves_dir=out, quiet=quiet, log=typer.echo)
    with open(out / f"{task_cls.name}_results.csv", "w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=list(rows[0]))
        w.writeheader()
        w.writerows(rows)
    name = task_cls.name
    baseline = rows[0]["test_loss"] / rows[0]["vs_baseline"]
    if name == "adding":
        typer.echo(f"adding problem, T={length}, {steps} steps, hidden {hidden}: test MSE "
                   f"(baseline {baseline:.3f} = always predicting 1)")
    else:
        typer.echo(f"copy task, delay {length}, {steps} steps, hidden {hidden}: test cross-entropy "
                   f"per step (baseline {baseline:.4f} = blanks, then uniform guesses)")
    for r in rows:
        recall = f"  recall accuracy {r['recall_accuracy']:.3f}" if "recall_accuracy" in r else ""
        typer.echo(f"  {r['arch']:<9} {r['test_loss']:.4f}  ({r['vs_baseline']:.3f} x baseline)"
                   f"{recall}  {'solved' if r['solved'] else 'not solved'}  [{r['seconds']:.0f}s]")
    solved = [r["arch"] for r in rows if r["solved"]]
    unsolved = [r["arch"] for r in rows if not r["solved"]]
    typer.echo(f"rule: solved when test {'MSE' if name == 'adding' else 'loss'} < "
               f"{SOLVED_FRACTION:g} x baseline = {SOLVED_FRACTION * baseline:.4f}; solved: "
               f"{', '.join(solved) or 'none'}; not solved: {', '.join(unsolved) or 'none'}")


def demo_step(out: Path, quiet: bool) -> None:
    """The `make demo` step: gradient decay of four archs at T=100, at initialisation
    and after 100 training steps on the adding problem (about a minute on 2 cores)."""
    archs = ["rnn", "lstm", "gru", "mingru"]
    cfg = GradientDiagnosticConfig(archs=archs, length=100, hidden=32, steps=100, batch_size=32)
    result = run_gradients(cfg, prepare_out(out), quiet=True, table=False)
    lag = 50
    parts = [f"{a} {result.relative(a, 'init')[lag]:.0e} -> {result.relative(a, 'trained')[lag]:.0e}"
             for a in archs]
    typer.echo(f"  gradient at lag {lag} relative to lag 0, at init -> after {cfg.steps} steps: "
               f"{', '.join(parts)}; picture: {out / 'gradient_decay.png'}")
