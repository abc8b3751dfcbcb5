"""The typer applications every command module registers on; ``train`` lists the registry's
tasks (``rnnkit.cli.train``)."""

import typer

from rnnkit.cli.train import TaskCommands

app = typer.Typer(
    name="rnnkit",
    help="Recurrent neural networks on sequential data.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
train_app = typer.Typer(cls=TaskCommands, no_args_is_help=True,
                        help="Train a model for a task; writes a run directory.")
diagnose_app = typer.Typer(help="Show vanishing gradients and long-range memory.", no_args_is_help=True)
example_app = typer.Typer(help="Run an example end to end on offline data.", no_args_is_help=True)
app.add_typer(train_app, name="train")
app.add_typer(diagnose_app, name="diagnose")
app.add_typer(example_app, name="example")

state = {"debug": False}


@app.callback()
def _root(
    debug: bool = typer.Option(False, "--debug", help="Show tracebacks for internal errors."),
) -> None:
    state["debug"] = debug
