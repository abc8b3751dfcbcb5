"""Ensembles for any task: N independent member runs, merged into one checkpoint.

Member K is an ordinary run directory ``OUT/members/member-K`` trained with seed ``seed + K``,
so its own initialisation, dropout masks and batch order, and its own best checkpoint;
independent members differ more than models trained side by side on the same batches, and on
SST-2 their mean was the more accurate (BENCHMARKS.md). On the CPU, ``workers`` processes train
members at once, each with its share of the cores: small recurrent models keep one core busy
far better than two. The task supplies a picklable ``train_one(train_cfg, run_dir, resume)``
that trains one member and returns its headline numbers, and ``merged_config(configs)`` that
makes the merged run's config from the members'; the merged checkpoint holds member K's tensor
``name`` as ``members.K.name`` (``checkpoint.save_merged``).

Under torchrun the members are trained one after the other, each by all the ranks together
(data parallel, like any run), rather than side by side in a pool: one mechanism, not two.
"""

from __future__ import annotations

import dataclasses
import json
import math
import os
from collections.abc import Callable
from concurrent.futures import ProcessPoolExecutor, as_completed
from multiprocessing import get_context
from pathlib import Path
from typing import Any

import torch

from rnnkit.errors import UserError
from rnnkit.train import checkpoint as ckpt
from rnnkit.train import distributed
from rnnkit.train.config import TrainConfig
from rnnkit.train.device import resolve_device

MEMBERS = "members"
DONE = "member.json"  # written once a member is complete: a resumed ensemble keeps it

TrainOne = Callable[[TrainConfig, Path, bool], dict[str, float]]


def member_dir(out: str | Path, k: int) -> Path:
    return Path(out) / MEMBERS / f"member-{k}"


def default_workers(members: int, device: str) -> int:
    """Members trained at once: one per core on the CPU, one at a time on an accelerator."""
    if resolve_device(device).type != "cpu":
        return 1
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    return max(1, min(members, cores or 1))


def _run_member(train_one: TrainOne, train_cfg: TrainConfig, run_dir: Path, resume: bool,
                threads: int | None) -> dict[str, float]:
    if threads is not None:
        torch.set_num_threads(threads)
    result = train_one(train_cfg, run_dir, resume)
    ckpt.write_json_atomic(run_dir / DONE, result)
    return result


def _done_line(done: int, n: int, k: int, result: dict[str, float]) -> str:
    numbers = "".join(f", {name.replace('_', ' ')} {value:.4f}" for name, value in result.items())
    return f"{done} of {n} members done: member-{k}{numbers}"


def train_ensemble(train_one: TrainOne, train_cfg: TrainConfig, out: str | Path, members: int,
                   *, run_config: dict[str, Any],
                   merged_config: Callable[[list[dict[str, Any]]], dict[str, Any]],
                   workers: int | None = None, resume: bool = False) -> list[dict[str, float]]:
    """Train ``members`` runs into ``out/members`` and merge them into ``out``'s checkpoint;
    returns each member's result. ``run_config`` is written to ``out/config.json`` first, so
    ``--resume`` finds the settings even if training stops before the merge; with ``resume``,
    finished members are kept and unfinished ones resumed. A budget of ``max_time`` is shared
    out among the rounds of ``workers`` members."""
    out = Path(out)
    group = distributed.group_of_env()
    if group.active:
        workers = 1
    workers = workers or default_workers(members, train_cfg.device)
    if workers < 1:
        raise UserError(f"workers must be a positive number, found {workers}.")
    workers = min(workers, members)
    out.mkdir(parents=True, exist_ok=True)
    if not resume and (out / MEMBERS).exists():
        raise UserError(f"{out} already holds a training run; resume it with --resume or choose "
                        "another output directory.")
    if group.active:  # every rank has looked at out/members before rank 0 writes there
        distributed.join(resolve_device(train_cfg.device))
        distributed.barrier()
    if group.main:
        ckpt.write_json_atomic(out / ckpt.CONFIG_FILE, run_config)
    seconds = train_cfg.max_seconds()
    rounds = math.ceil(members / workers)
    results: dict[int, dict[str, float]] = {}
    jobs = []
    for k in range(members):
        d = member_dir(out, k)
        if (d / DONE).is_file():
            results[k] = json.loads((d / DONE).read_text(encoding="utf-8"))
            continue
        member_cfg = dataclasses.replace(
            train_cfg, seed=train_cfg.seed + k, quiet=train_cfg.quiet or workers > 1,
            max_time=None if seconds is None else seconds / rounds)
        jobs.append((k, member_cfg, d, resume and d.exists()))
    if workers == 1:
        for k, member_cfg, d, again in jobs:
            if not train_cfg.quiet and group.main:
                print(f"ensemble member {k + 1} of {members}", flush=True)
            try:
                results[k] = _run_member(train_one, member_cfg, d, again, None)
            except distributed.WorkerDone:  # this rank's part of member k is done
                pass
        if not group.main:
            raise distributed.WorkerDone
    elif jobs:
        results.update(_in_processes(train_one, jobs, workers, members, train_cfg.quiet))
    configs, states = [], []
    for k in range(members):
        config, state = ckpt.load_for_inference(member_dir(out, k), run_config.get("task"))
        configs.append(config)
        states.append(state)
    ckpt.save_merged(out, states, merged_config(configs))
    return [results[k] for k in range(members)]


def merge_configs(configs: list[dict[str, Any]], settings: dict[str, Any], out: str | Path,
                  shared: tuple[str, ...]) -> dict[str, Any]:
    """The merged run's config: member 0's, with ``model.ensemble`` the number of members and
    the ensemble's ``settings``; a ``UserError`` when a member's ``shared`` parts (its
    vocabulary, features ...) differ from member 0's."""
    first = configs[0]
    for k, config in enumerate(configs[1:], 1):
        differ = [name for name in shared if config.get(name) != first.get(name)]
        if differ:
            raise UserError(f"ensemble member {k} in {member_dir(out, k)} has another "
                            f"{' and '.join(differ)} than member 0 (was the data changed "
                            "between runs?); train the ensemble again into a new directory.")
    return {**first, "model": {**first["model"], "ensemble": len(configs)}, **settings}


def _in_processes(train_one: TrainOne, jobs: list, workers: int, members: int, quiet: bool
                  ) -> dict[int, dict[str, float]]:
    """The ``jobs`` in ``workers`` processes; a failed member (or Ctrl-C) cancels the members
    not started yet, and its exception (a ``UserError`` too) is raised here."""
    from rnnkit.train.progress import Progress

    threads = max(1, torch.get_num_threads() // workers)
    done = members - len(jobs)
    bar = Progress(quiet, members, done)
    bar.line(f"training {len(jobs)} ensemble members, {workers} at a time "
             f"({threads} thread{'s' if threads > 1 else ''} each)")
    results = {}
    pool = ProcessPoolExecutor(workers, mp_context=get_context("spawn"))
    try:
        futures = {pool.submit(_run_member, train_one, member_cfg, d, again, threads): k
                   for k, member_cfg, d, again in jobs}
        for future in as_completed(futures):
            k = futures[future]
            results[k] = future.result()
            done += 1
            bar.advance(done)
            bar.line(_done_line(done, members, k, results[k]))
    except BaseException:
        pool.shutdown(cancel_futures=True)
        raise
    finally:
        pool.shutdown()
        bar.close()
    return results
