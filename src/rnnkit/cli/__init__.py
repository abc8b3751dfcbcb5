"""The ``rnnkit`` command: one entry point, a subcommand per verb.

Exit codes: 0 success; 2 a user mistake (one sentence on stderr); 1 an internal error
(traceback only with ``--debug``).
"""

import sys

import typer

# importing a module registers its commands; `train <task>` comes from the task registry
from rnnkit.cli import (  # noqa: F401
    demo,
    diagnose,
    evaluate,
    export,
    forecast,
    sentiment,
    serve,
    speech,
    textgen,
    translate,
)
from rnnkit.cli.app import app, state
from rnnkit.errors import UserError
from rnnkit.train import distributed


def run(argv: list[str] | None = None) -> int:
    """Run the command line with ``argv`` and return its exit code (used by tests)."""
    state["debug"] = False
    try:
        result = app(args=argv, prog_name="rnnkit", standalone_mode=False)
    except UserError as e:
        if not distributed.leave_error(e):  # under torchrun, rank 0 alone prints it
            print(f"error: {e}", file=sys.stderr)
        return 2
    except (KeyboardInterrupt, typer.Abort):
        print("interrupted", file=sys.stderr)
        return 130
    except typer.TyperException as e:  # bad flags and usage, exit 2
        ctx = getattr(e, "ctx", None)
        if type(e).__name__ == "NoArgsIsHelpError":  # a command given no arguments: its help
            e.show()
        else:  # click's sentence on one line, and where the right flags are listed
            hint = f" (see '{ctx.command_path} --help')" if ctx is not None else ""
            print(f"error: {e.format_message()}{hint}", file=sys.stderr)
        return e.exit_code
    except Exception as e:  # the last line of defence: no traceback unless asked for
        if state["debug"]:
            raise
        print(f"internal error: {type(e).__name__}: {e} (run with --debug for the traceback)",
              file=sys.stderr)
        return 1
    return result if isinstance(result, int) else 0


def main() -> None:
    try:
        code = run()
    except distributed.WorkerDone as done:  # a rank other than 0, its part of training over
        code = done.code
    if distributed.joined():
        distributed.end_process(code)
    sys.exit(code)
