"""Data parallelism on torch.distributed, in processes that torchrun starts.

torchrun (or ``rnnkit train ... --nproc N``, which runs torchrun's own launcher, ``launch``)
starts one process per rank with ``RANK``, ``WORLD_SIZE``, ``LOCAL_RANK`` and the rendezvous in
the environment. The trainer joins the process group (gloo on the CPU, NCCL on CUDA) and trains
a ``DistributedDataParallel`` replica. Every rank builds the same global batches from the same
seed and trains on its share of their rows (``share``): dim 0 of every tensor of a batch, dim 1
of every tensor of a recurrent state ``(layers * directions, batch, hidden)``, so a rank carries
the truncated-BPTT state of the rows it owns. Rank 0 alone evaluates, prints and writes the run
directory; the others end when training ends (``WorkerDone``).
"""

from __future__ import annotations

import atexit
import json
import os
import sys
import time
import uuid
from dataclasses import dataclass
from typing import Any

import torch
import torch.distributed as dist
from torch.nn.parallel import DistributedDataParallel

from rnnkit.errors import UserError


@dataclass(frozen=True)
class Group:
    """This process's place in the job: a single process is rank 0 of 1."""

    rank: int = 0
    world: int = 1
    local_rank: int = 0

    @property
    def main(self) -> bool:
        return self.rank == 0

    @property
    def active(self) -> bool:
        return self.world > 1


class WorkerDone(SystemExit):
    """Raised by ``Trainer.fit`` on ranks other than 0 once training is over: their replica is
    rank 0's, so what a caller does with the trained model (reports, plots, test scores) happens
    once, on rank 0, and the other processes end quietly (exit code 0)."""

    def __init__(self) -> None:
        super().__init__(0)


def group_of_env() -> Group:
    """The rank and world size torchrun gave this process (rank 0 of 1 without torchrun)."""
    try:
        return Group(int(os.environ.get("RANK", 0)), int(os.environ.get("WORLD_SIZE", 1)),
                     int(os.environ.get("LOCAL_RANK", 0)))
    except ValueError as e:
        raise UserError(f"RANK, WORLD_SIZE and LOCAL_RANK must be whole numbers ({e}).") from e


def restarted() -> bool:
    """Whether torchrun restarted this group after a failure (``--max-restarts``): the run then
    continues from its last checkpoint, as with ``--resume``."""
    return int(os.environ.get("TORCHELASTIC_RESTART_COUNT", "0") or 0) > 0


def join(device: torch.device) -> tuple[Group, torch.device]:
    """Join the job's process group (once per process) and pick this rank's device: on CUDA,
    ``cuda`` without an index means the GPU of the local rank."""
    group = group_of_env()
    if not group.active:
        return group, device
    if device.type == "cuda" and device.index is None:
        device = torch.device("cuda", group.local_rank % torch.cuda.device_count())
    if device.type == "cuda":
        torch.cuda.set_device(device)
    if not dist.is_initialized():
        dist.init_process_group("nccl" if device.type == "cuda" else "gloo",
                                device_id=device if device.type == "cuda" else None,
                                store=_attempt_store(group), rank=group.rank,
                                world_size=group.world)
        atexit.register(_leave)
    return group, device


def _attempt_store(group: Group):
    """The job's key-value store (torchrun's, at MASTER_ADDR:MASTER_PORT) under a prefix of this
    attempt: a group that torchrun restarts reuses the agent's store, where the dead workers'
    addresses are still listed, and a new rank that read one would connect to a dead process."""
    from torch.distributed import PrefixStore, TCPStore
    from torch.distributed.constants import default_pg_timeout

    agent_hosts_it = os.environ.get("TORCHELASTIC_USE_AGENT_STORE") == "True"
    store = TCPStore(os.environ.get("MASTER_ADDR", "127.0.0.1"),
                     int(os.environ.get("MASTER_PORT", "29500")), group.world,
                     is_master=not agent_hosts_it and group.rank == 0,
                     timeout=default_pg_timeout, multi_tenant=not agent_hosts_it)
    attempt = os.environ.get("TORCHELASTIC_RESTART_COUNT", "0")
    return PrefixStore(f"rnnkit/attempt-{attempt}", store)


def joined() -> bool:
    """Whether this process has joined a job's process group."""
    return dist.is_available() and dist.is_initialized()


def _leave() -> None:
    if joined():
        dist.destroy_process_group()


def end_process(code: int) -> None:
    """End a process of a torchrun job with ``code``: the exit handlers run (the process group
    is destroyed), then the interpreter's finalization is skipped. There objects still holding
    the group (a DDP replica) would be freed with gloo's threads alive, which aborts the
    process now and then (SIGABRT, "terminate called without an active exception") and fails
    a job whose training had succeeded."""
    sys.stdout.flush()
    sys.stderr.flush()
    atexit._run_exitfuncs()
    os._exit(code)


def barrier() -> None:
    if joined():
        dist.barrier()


# -- the rows of a rank ------------------------------------------------------------------------

def share(n: int, group: Group) -> slice:
    """The rows of ``n`` that ``group.rank`` owns: contiguous, the first ``n % world`` ranks one
    more than the others (so a shard may be empty when ``n < world``)."""
    base, extra = divmod(n, group.world)
    start = group.rank * base + min(group.rank, extra)
    return slice(start, start + base + (group.rank < extra))


def _rows(batch: Any) -> int | None:
    if isinstance(batch, torch.Tensor):
        return batch.shape[0] if batch.dim() else None
    values = batch.values() if isinstance(batch, dict) else \
        batch if isinstance(batch, (tuple, list)) else ()
    for value in values:
        n = _rows(value)
        if n is not None:
            return n
    return None


def _take(batch: Any, rows: slice, n: int, dim: int) -> Any:
    if isinstance(batch, torch.Tensor):
        return batch.narrow(dim, rows.start, rows.stop - rows.start) \
            if batch.dim() > dim and batch.shape[dim] == n else batch
    if isinstance(batch, tuple) and hasattr(batch, "_fields"):
        return type(batch)(*(_take(b, rows, n, dim) for b in batch))
    if isinstance(batch, (tuple, list)):
        return type(batch)(_take(b, rows, n, dim) for b in batch)
    if isinstance(batch, dict):
        return {k: _take(v, rows, n, dim) for k, v in batch.items()}
    return batch


def my_rows(batch: Any, group: Group) -> tuple[Any, int]:
    """This rank's share of a global batch and how many rows it holds. A rank whose share is
    empty (the last batch of an epoch, smaller than the world) gets the first row instead, to be
    weighted 0: every rank still runs the step, so none waits for another."""
    n = _rows(batch)
    if n is None:
        raise UserError("under torchrun every training batch must hold tensors with the "
                        "examples along their first dimension, to be shared out among the ranks.")
    rows = share(n, group)
    owned = rows.stop - rows.start
    return _take(batch, rows if owned else slice(0, 1), n, 0), owned


def split_state(state: Any, group: Group) -> Any:
    """This rank's rows of a whole-batch recurrent state (from a checkpoint); None for a rank
    that owns no rows."""
    n = _state_rows(state)
    if n is None:
        return state
    rows = share(n, group)
    return _take(state, rows, n, 1) if rows.stop > rows.start else None


def _state_rows(state: Any) -> int | None:
    if isinstance(state, torch.Tensor):
        return state.shape[1] if state.dim() > 1 else None
    values = state.values() if isinstance(state, dict) else \
        state if isinstance(state, (tuple, list)) else ()
    for value in values:
        n = _state_rows(value)
        if n is not None:
            return n
    return None


def gather_state(state: Any) -> Any:
    """The whole-batch recurrent state from every rank's rows, in rank order (a collective:
    every rank calls it; ranks owning no rows give None)."""
    pieces: list[Any] = [None] * dist.get_world_size()
    dist.all_gather_object(pieces, _to_cpu(state))
    pieces = [p for p in pieces if p is not None]
    return _cat(pieces) if pieces else None


def _to_cpu(state: Any) -> Any:
    from rnnkit.train.device import to_device

    return to_device(state, torch.device("cpu"))


def _cat(pieces: list[Any]) -> Any:
    first = pieces[0]
    if isinstance(first, torch.Tensor):
        return torch.cat(pieces, 1) if first.dim() > 1 else first
    if isinstance(first, tuple) and hasattr(first, "_fields"):
        return type(first)(*(_cat(list(p)) for p in zip(*pieces, strict=True)))
    if isinstance(first, (tuple, list)):
        return type(first)(_cat(list(p)) for p in zip(*pieces, strict=True))
    if isinstance(first, dict):
        return {k: _cat([p[k] for p in pieces]) for k in first}
    return first


# -- collectives ---------------------------------------------------------------------------------

def all_sum(values: torch.Tensor) -> torch.Tensor:
    """``values`` summed over the ranks (in place, and returned)."""
    dist.all_reduce(values)
    return values


def broadcast(obj: Any) -> Any:
    """Rank 0's ``obj`` on every rank (picklable objects: metrics, a checkpoint name)."""
    box = [obj]
    dist.broadcast_object_list(box, src=0)
    return box[0]


class Replica(DistributedDataParallel):
    """DDP whose wrapped model's own attributes and methods stay reachable (a task's
    ``training_step`` may call ``model.loss(...)`` beside ``model(...)``)."""

    def __getattr__(self, name: str) -> Any:
        try:
            return super().__getattr__(name)
        except AttributeError:
            return getattr(self.module, name)


def wrap(model: torch.nn.Module, device: torch.device) -> Replica:
    """The DDP replica of ``model`` (its weights are rank 0's from here on)."""
    return Replica(model, device_ids=[device.index] if device.type == "cuda" else None)


# -- rnnkit train --nproc N ----------------------------------------------------------------------

def launch(nproc: int, entrypoint: Any, *args: Any) -> None:
    """Run ``entrypoint(*args)`` in ``nproc`` processes on this machine through torchrun's
    launcher (elastic agent, c10d rendezvous on a free local port). A worker that fails reports
    through torchelastic's error file (``report_failure``); a user error there becomes one
    ``UserError`` here, anything else a ``RuntimeError`` naming the rank."""
    import logging

    from torch.distributed.elastic.multiprocessing.errors import ChildFailedError
    from torch.distributed.launcher.api import LaunchConfig, elastic_launch

    config = LaunchConfig(min_nodes=1, max_nodes=1, nproc_per_node=nproc, run_id=uuid.uuid4().hex,
                          rdzv_backend="c10d", rdzv_endpoint="localhost:0", max_restarts=0)
    # the agent's own lines about a failed worker would repeat the one sentence reported here
    loggers = [logging.getLogger(n) for n in ("torch.distributed", "torch.multiprocessing")]
    levels = [lg.level for lg in loggers]
    for lg in loggers:
        lg.setLevel(logging.CRITICAL)
    try:
        elastic_launch(config, entrypoint)(*args)
    except ChildFailedError as e:
        failures = sorted(e.failures.items(), key=lambda kv: (kv[1].exitcode != 2,
                                                               kv[1].timestamp, kv[0]))
        rank, failure = failures[0]
        if failure.exitcode == 2:
            raise UserError(str(failure.message)) from None
        raise RuntimeError(f"rank {rank} failed ({failure.message})") from None
    finally:
        for lg, level in zip(loggers, levels, strict=True):
            lg.setLevel(level)


def leave_error(error: UserError) -> bool:
    """Under torchrun, on a rank other than 0: put the sentence in torchelastic's error file
    (torchrun's summary shows it) instead of printing it once more per rank; False elsewhere."""
    path = os.environ.get("TORCHELASTIC_ERROR_FILE")
    if not path or os.environ.get("RANK", "0") == "0":
        return False
    with open(path, "w", encoding="utf-8") as f:
        json.dump({"message": str(error), "timestamp": int(time.time())}, f)
    return True


def report_failure(error: BaseException, code: int) -> None:
    """In a worker of ``launch``: leave ``error`` in torchelastic's error file for the launcher
    to report once, instead of every rank printing it, and exit with ``code``."""
    path = os.environ.get("TORCHELASTIC_ERROR_FILE")
    message = str(error) if isinstance(error, UserError) else f"{type(error).__name__}: {error}"
    if path:
        with open(path, "w", encoding="utf-8") as f:
            json.dump({"message": message, "timestamp": int(time.time())}, f)
    else:
        print(f"error: {message}", file=sys.stderr)
    sys.exit(code)
