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


def not_a_file(what: str, path) -> UserError:
    """The error for a ``path`` that should be a file: a directory, or nothing at all."""
    from pathlib import Path

    found = "is a directory, expected a file" if Path(path).is_dir() else "does not exist"
    return UserError(f"{what} {path} {found}.")
