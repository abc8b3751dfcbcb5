"""The one exception type for user mistakes.

Anything raised as ``UserError`` is shown by the command line as one sentence with exit code 2;
every other exception is an internal error (exit code 1, traceback with ``--debug``).
"""


class UserError(ValueError):
    """Bad input from the user: a missing file, a bad flag value, data in the wrong shape."""


def require(module: str, extra: str, what: str):
    """Import an optional dependency, or say in one sentence which extra installs it."""
    import importlib

    try:
        return importlib.import_module(module)
    except ImportError as e:
        raise UserError(f"{what} needs the {module!r} package, which is not installed: "
                        f"pip install 'rnnkit[{extra}]'") from e
