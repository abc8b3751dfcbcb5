"""An ensemble of text classifiers: members trained one by one, or several at once on a
multi-core CPU, then saved as one model that predicts their mean probability.

Each member is an ordinary run in ``OUT/members/member-K`` with its own seed, so its own
initialisation, dropout masks and batch order, and its own best checkpoint on the validation
data; all members share the vocabulary and the validation split. Independent members differ
more than classifiers trained side by side on the same batches, and on SST-2 their mean was the
more accurate (BENCHMARKS.md). On the CPU, ``workers`` processes train members at once, each
with its share of the cores: small recurrent models keep one core busy far better than two.
"""

from __future__ import annotations

import dataclasses
import math
import os
from collections.abc import Callable
from concurrent.futures import ProcessPoolExecutor, as_completed
from multiprocessing import get_context
from pathlib import Path
from typing import Any

import torch

from rnnkit.errors import UserError
from rnnkit.tasks import sentiment

MEMBERS = "members"
DONE = "metrics_val.json"  # written by sentiment.fit once a member is complete


def member_dir(out: Path, k: int) -> Path:
    return out / MEMBERS / f"member-{k}"


def default_workers(members: int, device: str) -> int:
    """Members trained at once: one per core on the CPU, one at a time on an accelerator."""
    from rnnkit.train import resolve_device

    if resolve_device(device).type != "cpu":
        return 1
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    return max(1, min(members, cores or 1))


def _train_member(train_cfg, cfg, out: Path, resume: bool, threads: int | None,
                  fit_fn: Callable | None = None) -> dict[str, Any]:
    if threads is not None:
        torch.set_num_threads(threads)
    report = sentiment.fit(train_cfg, cfg, out, resume, fit_fn)
    return {"dir": str(out), **report["train"], "val_accuracy": report["val"]["accuracy"]}


def fit_ensemble(train_cfg, cfg, out: str | Path, resume: bool = False,
                 fit_fn: Callable | None = None) -> dict[str, Any]:
    """Train ``cfg.ensemble`` members, merge them into ``out``'s checkpoint, then report on the
    validation (and test) data like ``sentiment.fit``. With ``resume``, finished members are
    kept and unfinished ones resumed."""
    from rnnkit.train.checkpoint import write_json_atomic

    out = Path(out)
    n = cfg.ensemble
    workers = cfg.workers or default_workers(n, train_cfg.device)
    if workers < 1:
        raise UserError(f"workers must be a positive number, found {workers}.")
    workers = min(workers, n)
    if cfg.test is not None:  # members never read it: find a bad test file before training
        sentiment.read_split(cfg.test, cfg)
    out.mkdir(parents=True, exist_ok=True)
    if not resume and (out / MEMBERS).exists():
        raise UserError(f"{out} already holds a training run; resume it with --resume or choose "
                        "another output directory.")
    # the run's settings first, so --resume finds them even if it stops before the merge
    write_json_atomic(out / "config.json", {"task": sentiment.TASK, "sentiment":
                                            dataclasses.asdict(cfg),
                                            "train": dataclasses.asdict(train_cfg)})
    rounds = math.ceil(n / workers)
    seconds = train_cfg.max_seconds()
    member_cfg = dataclasses.replace(cfg, ensemble=1, test=None, workers=None,
                                     split_seed=train_cfg.seed if cfg.split_seed is None
                                     else cfg.split_seed)
    jobs = []
    for k in range(n):
        d = member_dir(out, k)
        if (d / DONE).is_file():
            continue
        quiet = train_cfg.quiet or workers > 1
        jobs.append((dataclasses.replace(train_cfg, seed=train_cfg.seed + k, quiet=quiet,
                                         max_time=None if seconds is None else seconds / rounds),
                     member_cfg, d, resume and d.exists()))
    if workers == 1:
        for i, job in enumerate(jobs):
            if not train_cfg.quiet:
                print(f"ensemble member {n - len(jobs) + i + 1} of {n}", flush=True)
            _train_member(*job, threads=None, fit_fn=fit_fn)
    elif jobs:
        from rnnkit.train.progress import Progress

        threads = max(1, torch.get_num_threads() // workers)
        bar = Progress(train_cfg.quiet, n, n - len(jobs))
        bar.line(f"training {len(jobs)} ensemble members, {workers} at a time "
                 f"({threads} thread{'s' if threads > 1 else ''} each)")
        done = n - len(jobs)
        pool = ProcessPoolExecutor(workers, mp_context=get_context("spawn"))
        try:
            futures = [pool.submit(_train_member, *job, threads) for job in jobs]
            for future in as_completed(futures):
                member = future.result()
                done += 1
                bar.advance(done)
                bar.line(f"{done} of {n} members done: {Path(member['dir']).name}, "
                         f"validation accuracy {member['val_accuracy']:.4f}")
        except BaseException:  # a failed member (or Ctrl-C): do not start the others
            pool.shutdown(cancel_futures=True)
            raise
        finally:
            pool.shutdown()
            bar.close()
    merge(out, n, cfg, train_cfg)
    return report(out, cfg, train_cfg.seed)


def merge(out: Path, n: int, cfg, train_cfg) -> None:
    """Save the members' best checkpoints as one ensemble checkpoint of ``out``."""
    from rnnkit.train import checkpoint as ckpt
    from rnnkit.train import load_for_inference

    state: dict[str, torch.Tensor] = {}
    first = None
    for k in range(n):
        config, member_state = load_for_inference(member_dir(out, k), sentiment.TASK)
        if first is None:
            first = config
        elif config["tokenizer"] != first["tokenizer"] or config["labels"] != first["labels"]:
            raise UserError(f"ensemble member {k} in {member_dir(out, k)} has another "
                            "vocabulary or labels than member 0 (was the data changed between "
                            "runs?); train the ensemble again into a new directory.")
        state.update({f"members.{k}.{name}": t for name, t in member_state.items()})
    config = {**first, "model": {**first["model"], "ensemble": n},
              "sentiment": dataclasses.asdict(cfg), "train": dataclasses.asdict(train_cfg)}
    name = ckpt.new_name(out, 0)
    ckpt.save_checkpoint(out, name, state, config, None)
    ckpt.set_pointer(out, "best", name)
    ckpt.set_pointer(out, "last", name)
    ckpt.prune(out, 1)  # a resumed ensemble is merged again: keep only the newest merge
    ckpt.write_json_atomic(out / "config.json", config)


def report(out: Path, cfg, seed: int) -> dict[str, Any]:
    """Validation and test metrics of the merged model, as ``sentiment.fit`` reports them."""
    import json

    clf = sentiment.load(out)
    val = sentiment.split_validation(sentiment.read_split(cfg.data, cfg), cfg, seed)[1]
    members = []
    for k in range(cfg.ensemble):
        m = json.loads((member_dir(out, k) / DONE).read_text(encoding="utf-8"))
        members.append(m["accuracy"])
    result: dict[str, Any] = {"train": {"members": cfg.ensemble, "member_val_accuracy": members}}
    result["val"] = clf.evaluate_data(val, out / "confusion_val.png")
    if cfg.test is not None:
        result["test"] = clf.evaluate_data(sentiment.read_split(cfg.test, cfg),
                                           out / "confusion_test.png")
    sentiment.write_reports(out, result)
    return result
