"""``rnnkit diagnose``: vanishing gradients measured, and long-dependency benchmarks."""

import tempfile
from pathlib import Path
from typing import Annotated

import typer

from rnnkit.cli.app import diagnose_app
from rnnkit.errors import UserError
from rnnkit.models.sequence_regressor import check_init
from rnnkit.nn.registry import LAYERS, check_arch
from rnnkit.tasks.diagnostics import run_gradients, run_memory
from rnnkit.tasks.gradient_decay import GradientDiagnosticConfig
from rnnkit.tasks.memory_tasks import AddingTask, CopyTask, MemoryTask

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
    _, lines = run_gradients(cfg, prepare_out(out), quiet, log=typer.echo)
    for line in lines:
        typer.echo(line)


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
    lines = run_memory(task_cls, archs, prepare_out(out), length=length, steps=steps,
                       hidden=hidden, init=init, forget_bias=forget_bias, clip=clip_norm,
                       batch_size=batch_size, lr=lr, seed=seed, quiet=quiet, log=typer.echo)
    for line in lines:
        typer.echo(line)
