"""Checkpoint directories, written atomically, and loading them without unpickling anything.

A run directory::

    RUN_DIR/config.json            task config + TrainConfig + rnnkit version
    RUN_DIR/metrics.csv
    RUN_DIR/checkpoints/step-00000120/{model.safetensors, config.json, trainer_state.pt}
    RUN_DIR/best -> checkpoints/step-...   (symlinks, replaced atomically)
    RUN_DIR/last -> checkpoints/step-...

Every file is written to a temporary name, fsynced and renamed; a checkpoint directory is built
as ``.tmp-*`` and renamed into place only when complete, the pointers are moved only after that,
and old checkpoints are deleted only after both pointers moved: a crash at any moment leaves
``best`` and ``last`` pointing at complete checkpoints.
"""

from __future__ import annotations

import json
import os
import re
import shutil
from pathlib import Path
from typing import Any

import torch

from rnnkit.errors import UserError

MODEL_FILE = "model.safetensors"
CONFIG_FILE = "config.json"
STATE_FILE = "trainer_state.pt"
CHECKPOINTS = "checkpoints"
_NAME = re.compile(r"^step-(\d{8})(?:-(\d+))?$")


# -- atomic writes -----------------------------------------------------------------------------

def _fsync_path(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _tmp_name(path: Path) -> Path:
    return path.with_name(f".tmp-{path.name}-{os.getpid()}")


def write_bytes_atomic(path: Path, data: bytes) -> None:
    """Write ``data`` to ``path`` through a temporary file, fsync and rename."""
    tmp = _tmp_name(path)
    with open(tmp, "wb") as f:
        f.write(data)
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)
    _fsync_path(path.parent)


def write_json_atomic(path: Path, obj: Any) -> None:
    write_bytes_atomic(path, (json.dumps(obj, indent=2, sort_keys=False) + "\n").encode())


def _safe_state_dict(state_dict: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    # safetensors refuses tensors that share memory (tied weights): save each key as its own copy.
    return {k: v.detach().to("cpu", copy=True).contiguous() for k, v in state_dict.items()}


def new_name(run_dir: Path, step: int) -> str:
    """A checkpoint name for ``step`` not used yet in ``run_dir``."""
    root = Path(run_dir) / CHECKPOINTS
    name, n = f"step-{step:08d}", 0
    while (root / name).exists():  # a step saved again after a resume from an earlier checkpoint
        n += 1
        name = f"step-{step:08d}-{n}"
    return name


def save_checkpoint(
    run_dir: Path, name: str, state_dict: dict[str, torch.Tensor], config: dict[str, Any],
    trainer_state: dict[str, Any] | None,
) -> None:
    """Write the complete checkpoint directory ``checkpoints/name`` (see ``new_name``)."""
    from safetensors.torch import save_file

    root = Path(run_dir) / CHECKPOINTS
    root.mkdir(parents=True, exist_ok=True)
    tmp = root / f".tmp-{name}-{os.getpid()}"
    if tmp.exists():
        shutil.rmtree(tmp)
    tmp.mkdir()
    save_file(_safe_state_dict(state_dict), str(tmp / MODEL_FILE))
    _fsync_path(tmp / MODEL_FILE)
    with open(tmp / CONFIG_FILE, "w", encoding="utf-8") as f:
        json.dump(config, f, indent=2)
        f.flush()
        os.fsync(f.fileno())
    if trainer_state is not None:
        with open(tmp / STATE_FILE, "wb") as f:
            torch.save(trainer_state, f)
            f.flush()
            os.fsync(f.fileno())
    _fsync_path(tmp)
    os.rename(tmp, root / name)
    _fsync_path(root)


def set_pointer(run_dir: Path, which: str, name: str) -> None:
    """Point ``run_dir/which`` (``best`` or ``last``) at checkpoint ``name``, atomically."""
    link = Path(run_dir) / which
    tmp = _tmp_name(link)
    if tmp.is_symlink() or tmp.exists():
        tmp.unlink()
    os.symlink(f"{CHECKPOINTS}/{name}", tmp)
    os.replace(tmp, link)
    _fsync_path(Path(run_dir))


def pointer(run_dir: Path, which: str) -> str | None:
    """The checkpoint name ``run_dir/which`` points at, if it points at an existing one."""
    link = Path(run_dir) / which
    if not link.is_symlink():
        return None
    name = Path(os.readlink(link)).name
    return name if (Path(run_dir) / CHECKPOINTS / name / MODEL_FILE).is_file() else None


def sort_key(name: str) -> tuple[int, int]:
    m = _NAME.match(name)
    assert m
    return int(m.group(1)), int(m.group(2) or 0)


def list_checkpoints(run_dir: Path) -> list[str]:
    """Complete checkpoint names, oldest first."""
    root = Path(run_dir) / CHECKPOINTS
    if not root.is_dir():
        return []
    names = [p.name for p in root.iterdir() if _NAME.match(p.name) and (p / MODEL_FILE).is_file()]
    return sorted(names, key=sort_key)


def remove_checkpoint(run_dir: Path, name: str) -> None:
    """Delete a checkpoint: renamed away first, so a half-deleted one never looks complete."""
    root = Path(run_dir) / CHECKPOINTS
    trash = root / f".trash-{name}-{os.getpid()}"
    os.rename(root / name, trash)
    shutil.rmtree(trash, ignore_errors=True)


def prune(run_dir: Path, keep_last: int) -> None:
    """Keep the newest ``keep_last`` checkpoints and whatever ``best`` and ``last`` point at."""
    names = list_checkpoints(run_dir)
    keep = set(names[-keep_last:]) | {pointer(run_dir, "best"), pointer(run_dir, "last")}
    for name in names:
        if name not in keep:
            remove_checkpoint(run_dir, name)


def clean_leftovers(run_dir: Path) -> None:
    """Remove temporary files and directories a crash left behind."""
    for folder in (Path(run_dir), Path(run_dir) / CHECKPOINTS):
        if not folder.is_dir():
            continue
        for p in folder.iterdir():
            if p.name.startswith((".tmp-", ".trash-")):
                if p.is_dir() and not p.is_symlink():
                    shutil.rmtree(p, ignore_errors=True)
                else:
                    p.unlink(missing_ok=True)


def save_merged(run_dir: Path, states: list[dict[str, torch.Tensor]], config: dict[str, Any]
                ) -> str:
    """Save the state dicts of several models (an ensemble's members) as one checkpoint of
    ``run_dir``: tensor ``name`` of model K becomes ``members.K.name``. ``best`` and ``last``
    point at it, older checkpoints go (a resumed ensemble is merged again) and ``config``
    becomes the run's config.json too. Returns the checkpoint's name."""
    merged = {f"members.{k}.{name}": t for k, state in enumerate(states)
              for name, t in state.items()}
    name = new_name(run_dir, 0)
    save_checkpoint(run_dir, name, merged, config, None)
    set_pointer(run_dir, "best", name)
    set_pointer(run_dir, "last", name)
    prune(run_dir, 1)
    write_json_atomic(Path(run_dir) / CONFIG_FILE, config)
    return name


# -- loading ------------------------------------------------------------------------------------

def resolve(path: str | Path, which: str = "best") -> Path:
    """The checkpoint directory for ``path``: a checkpoint directory itself, or a run directory
    (its ``which`` pointer, then ``last``, then the newest complete checkpoint)."""
    path = Path(path)
    if not path.exists():
        raise UserError(f"checkpoint directory {path} does not exist.")
    if not path.is_dir():
        raise UserError(f"{path} is a file, expected an rnnkit run or checkpoint directory.")
    if (path / MODEL_FILE).exists() or (path / STATE_FILE).exists():
        return path
    for name in (pointer(path, which), pointer(path, "last")):
        if name:
            return path / CHECKPOINTS / name
    names = list_checkpoints(path)
    if names:
        return path / CHECKPOINTS / names[-1]
    raise UserError(f"{path} is not an rnnkit run directory: it holds no checkpoint "
                    f"({CHECKPOINTS}/step-*/{MODEL_FILE}).")


def read_config(ckpt: Path) -> dict[str, Any]:
    file = ckpt / CONFIG_FILE
    if not file.is_file():
        raise UserError(f"{ckpt} is not an rnnkit checkpoint: {CONFIG_FILE} is missing.")
    try:
        config = json.loads(file.read_text(encoding="utf-8"))
    except (ValueError, UnicodeDecodeError) as e:
        raise UserError(f"{file} is truncated or corrupt (not valid JSON).") from e
    if not isinstance(config, dict):
        raise UserError(f"{file} is not an rnnkit checkpoint config (expected a JSON object).")
    return config


def load_for_inference(
    run_dir: str | Path, expect_task: str | None = None, which: str = "best"
) -> tuple[dict[str, Any], dict[str, torch.Tensor]]:
    """``(config, state_dict)`` of a run's ``best`` (else ``last``) checkpoint, or of a checkpoint
    directory; reads only JSON and safetensors, never unpickles. Tensors are on the CPU."""
    from safetensors import SafetensorError
    from safetensors.torch import load_file

    ckpt = resolve(run_dir, which)
    config = read_config(ckpt)
    if expect_task is not None and config.get("task") != expect_task:
        found = config.get("task")
        what = f"task {found!r}" if found else "no task named in its config"
        raise UserError(f"{run_dir} holds a checkpoint of {what}, expected a {expect_task!r} one.")
    file = ckpt / MODEL_FILE
    if not file.is_file():
        raise UserError(f"{ckpt} is not a complete rnnkit checkpoint: {MODEL_FILE} is missing.")
    try:
        state_dict = load_file(str(file), device="cpu")
    except (SafetensorError, OSError, ValueError, RuntimeError) as e:
        raise UserError(f"{file} is truncated or corrupt ({e}).") from e
    return config, state_dict


def load_trainer_state(ckpt: Path, map_location: Any = "cpu") -> dict[str, Any]:
    """The trainer state of a checkpoint, loaded with ``weights_only=True`` (no arbitrary code)."""
    file = ckpt / STATE_FILE
    if not file.is_file():
        raise UserError(f"{ckpt} cannot be resumed: {STATE_FILE} is missing.")
    try:
        return torch.load(file, map_location=map_location, weights_only=True)
    except Exception as e:  # truncated zip, or a pickle that asks for anything but plain data
        raise UserError(f"{file} is truncated or corrupt ({type(e).__name__}).") from e
