"""Data-parallel training under torchrun on the CPU (gloo): the same command gives the same
model on 1 and 2 processes, on 2 nodes, after a killed worker, and when resumed on another
number of processes; a user error on one rank is one sentence and exit code 2.

Every run is tiny (one thread per process) and every subprocess has a timeout.
"""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file

from rnnkit.tasks import registry

pytestmark = pytest.mark.usefixtures("one_thread")

TIMEOUT = 120
# deterministic, no dropout, a constant learning rate: the steps, not the schedule, decide
TEXTGEN = {"hidden": 16, "seq_len": 16, "batch_size": 4, "eval_tokens": 200, "dropout": 0.0,
           "deterministic": True, "schedule": "constant", "warmup_steps": 0, "quiet": True}


def _flags(settings: dict) -> list[str]:
    out = []
    for key, value in settings.items():
        flag = "--" + key.replace("_", "-")
        if isinstance(value, bool):
            out.append(flag if value else f"--no-{key.replace('_', '-')}")
        elif isinstance(value, list):
            for v in value:
                out += [flag, str(v)]
        else:
            out += [flag, str(value)]
    return out


def _env() -> dict[str, str]:
    env = {k: v for k, v in os.environ.items()
           if not k.startswith(("RANK", "WORLD_SIZE", "LOCAL_RANK", "MASTER_", "TORCHELASTIC"))}
    return {**env, "OMP_NUM_THREADS": "1", "PYTHONUNBUFFERED": "1"}


def torchrun(*launcher: str, task: str, settings: dict, out: Path,
             extra: tuple[str, ...] = ()) -> subprocess.Popen:
    cmd = [sys.executable, "-m", "torch.distributed.run", *launcher, "-m", "rnnkit", "train",
           task, *_flags(settings), "--out", str(out), *extra]
    return subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                            env=_env())


def finish(proc: subprocess.Popen) -> str:
    try:
        output, _ = proc.communicate(timeout=TIMEOUT)
    except subprocess.TimeoutExpired:
        # the workers first (torchrun starts each in a session of its own): left behind, they
        # would hold the output pipe open for ever
        for pid in [*_workers(proc.pid), proc.pid]:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
        output, _ = proc.communicate()
        pytest.fail(f"the job did not finish in {TIMEOUT} s:\n{output}")
    assert proc.returncode == 0, output
    return output


def one_process(task: str, settings: dict, out: Path, resume: bool = False) -> Path:
    spec = registry.get(task)
    train_cfg, cfg = spec.configs(settings, resume_from=out if resume else None)
    spec.fit(train_cfg, cfg, out, resume)
    return out


def weights(run: Path) -> dict[str, torch.Tensor]:
    return load_file(str(run / "last" / "model.safetensors"))


def assert_same_model(a: Path, b: Path, rtol: float = 1e-5) -> None:
    wa, wb = weights(a), weights(b)
    assert wa.keys() == wb.keys()
    diff = sum(float((wa[k].double() - wb[k].double()).pow(2).sum()) for k in wa) ** 0.5
    norm = sum(float(wa[k].double().pow(2).sum()) for k in wa) ** 0.5
    assert diff <= rtol * norm, f"relative difference {diff / norm:.3g}"


@pytest.fixture(scope="module")
def corpus(tmp_path_factory) -> dict:
    smoke = registry.get("textgen").smoke(tmp_path_factory.mktemp("textgen-data"))
    return {"data": smoke.settings["data"], **TEXTGEN}


@pytest.fixture(scope="module")
def reference(corpus, tmp_path_factory) -> dict[int, Path]:
    """One process, uninterrupted, for 6, 12 and 60 steps."""
    root = tmp_path_factory.mktemp("reference")
    return {n: one_process("textgen", {**corpus, "max_steps": n}, root / f"steps-{n}")
            for n in (6, 12, 60)}


def test_textgen_two_processes_train_the_model_of_one_which_resumes_it(corpus, reference,
                                                                         tmp_path):
    out = tmp_path / "run"
    finish(torchrun("--standalone", "--nproc-per-node", "2", task="textgen",
                    settings={**corpus, "max_steps": 6}, out=out))
    assert_same_model(reference[6], out)
    # rank 0 alone wrote metrics.csv, with the loss of the whole batch (summed over the ranks)
    ours, theirs = _log(out), _log(reference[6])
    assert [r["step"] for r in ours] == [r["step"] for r in theirs]
    for a, b in zip(ours, theirs, strict=True):
        for key in ("train_loss", "val_loss"):
            assert (a[key] == "") == (b[key] == "")
            if a[key]:
                assert float(a[key]) == pytest.approx(float(b[key]), rel=1e-5)
    # the checkpoint holds both ranks' rows of the carried state: one process goes on from it
    one_process("textgen", {**corpus, "max_steps": 12}, out, resume=True)
    assert_same_model(reference[12], out)


def _log(run: Path) -> list[dict[str, str]]:
    import csv

    with open(run / "metrics.csv", newline="") as f:
        return list(csv.DictReader(f))


def test_sentiment_with_unequal_shards_trains_the_model_of_one(tmp_path):
    # 36 training texts in batches of 5: the last batch holds one text, so rank 1's share of
    # it is empty and it steps with weight 0 rather than waiting
    smoke = registry.get("sentiment").smoke(tmp_path / "data")
    settings = {"data": smoke.settings["data"], "hidden": 8, "embed": 8, "batch_size": 5,
                "epochs": 2, "dropout": 0.0, "embed_dropout": 0.0, "word_dropout": 0.0,
                "deterministic": True, "quiet": True}
    one = one_process("sentiment", settings, tmp_path / "one")
    finish(torchrun("--standalone", "--nproc-per-node", "2", task="sentiment",
                    settings=settings, out=tmp_path / "two"))
    assert_same_model(one, tmp_path / "two")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_two_nodes_on_loopback_train_the_model_of_one(corpus, reference, tmp_path):
    rdzv = ["--nnodes", "2", "--nproc-per-node", "1", "--rdzv-backend", "c10d",
            "--rdzv-endpoint", f"127.0.0.1:{_free_port()}", "--rdzv-id", "loopback"]
    settings = {**corpus, "max_steps": 12}
    nodes = [torchrun(*rdzv, "--node-rank", str(rank), task="textgen", settings=settings,
                      out=tmp_path / "run") for rank in (0, 1)]
    for node in nodes:
        finish(node)
    assert_same_model(reference[12], tmp_path / "run")


def _workers(pid: int) -> list[int]:
    try:
        children = Path(f"/proc/{pid}/task/{pid}/children").read_text().split()
    except OSError:
        return []
    return [int(c) for c in children
            if b"rnnkit" in Path(f"/proc/{c}/cmdline").read_bytes()]


def test_a_killed_worker_restarts_the_group_which_resumes(corpus, reference, tmp_path):
    out = tmp_path / "run"
    job = torchrun("--standalone", "--nproc-per-node", "2", "--max-restarts", "1",
                   task="textgen", settings={**corpus, "max_steps": 60, "quiet": False,
                                             "checkpoint_every": 5}, out=out)
    deadline = time.monotonic() + TIMEOUT
    while not (out / "last").is_symlink() and job.poll() is None:
        assert time.monotonic() < deadline, "no checkpoint was written"
        time.sleep(0.02)
    victims = _workers(job.pid)
    assert victims, "the job ended before a worker could be killed"
    os.kill(victims[-1], signal.SIGKILL)
    output = finish(job)
    assert "resuming from" in output, output
    assert_same_model(reference[60], out)


FAULTY = """
import os, sys
from rnnkit.tasks.textgen.task import TextGenTask

step = TextGenTask.training_step
calls = []

def training_step(self, model, batch, state):
    calls.append(1)
    if os.environ.get("RANK") == "1" and len(calls) == 3:
        from rnnkit.errors import UserError
        raise UserError("rank 1 found a bad shard.")
    return step(self, model, batch, state)

TextGenTask.training_step = training_step  # in the workers too: spawn imports this file

if __name__ == "__main__":
    from rnnkit.cli import run
    sys.exit(run(sys.argv[1:]))
"""


def test_a_user_error_on_one_rank_is_one_sentence_and_exit_code_2(corpus, tmp_path):
    script = tmp_path / "faulty.py"
    script.write_text(textwrap.dedent(FAULTY))
    cmd = [sys.executable, str(script), "train", "textgen", *_flags({**corpus, "max_steps": 12}),
           "--out", str(tmp_path / "run"), "--nproc", "2"]
    done = subprocess.run(cmd, capture_output=True, text=True, env=_env(), timeout=TIMEOUT)
    assert done.returncode == 2, done.stderr
    assert done.stderr.strip() == "error: rank 1 found a bad shard.", done.stderr
