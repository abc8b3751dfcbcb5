"""The files a command is asked to write, checked before it does any work."""

from __future__ import annotations

from pathlib import Path

from rnnkit.errors import UserError


def writable(path: Path | None) -> None:
    """An error when ``path`` is a directory; otherwise its missing parent folders are made
    (None: nothing to write)."""
    if path is None:
        return
    if path.is_dir():
        raise UserError(f"{path} is a directory, expected a file name to write.")
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
    except (FileExistsError, NotADirectoryError):
        raise UserError(f"cannot write {path}: part of {path.parent} is a file, not a "
                        "folder.") from None
    except OSError as e:
        raise UserError(f"cannot make the folder {path.parent} for {path}: {e.strerror}.") from None
