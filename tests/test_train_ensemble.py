"""``rnnkit.train.ensemble`` on a toy task that knows nothing of any application: member runs
with their own seeds, resume keeping finished members, the merged checkpoint, failures."""

from __future__ import annotations

import functools
import json
from pathlib import Path

import pytest
import torch

from rnnkit.errors import UserError
from rnnkit.train import TrainConfig, load_for_inference
from rnnkit.train import checkpoint as ckpt
from rnnkit.train.ensemble import member_dir, train_ensemble

pytestmark = pytest.mark.usefixtures("one_thread")


def toy_member(train_cfg: TrainConfig, run_dir: Path, resume: bool, *, fail_seed: int = -1
               ) -> dict[str, float]:
    """A 'run': one checkpoint whose tensor holds the seed (and a log of how it was called)."""
    if train_cfg.seed == fail_seed:
        raise UserError(f"member with seed {train_cfg.seed} met bad data.")
    run_dir.mkdir(parents=True, exist_ok=True)
    with open(run_dir / "calls.txt", "a", encoding="utf-8") as f:
        f.write(f"{train_cfg.seed} {resume} {train_cfg.max_time}\n")
    name = ckpt.new_name(run_dir, 1)
    ckpt.save_checkpoint(run_dir, name, {"w": torch.full((2,), float(train_cfg.seed))},
                         {"task": "toy", "size": 2}, None)
    ckpt.set_pointer(run_dir, "best", name)
    return {"score": train_cfg.seed / 10}


def merged(configs: list[dict]) -> dict:
    return {**configs[0], "members": len(configs)}


def _train(out, members=3, workers=1, resume=False, train_one=toy_member, **train):
    return train_ensemble(train_one, TrainConfig(seed=4, quiet=True, **train), out, members,
                          run_config={"task": "toy"}, merged_config=merged, workers=workers,
                          resume=resume)


def test_members_merge_into_one_checkpoint_and_resume_keeps_finished_ones(tmp_path):
    out = tmp_path / "run"
    assert _train(out, max_time=60) == [{"score": 0.4}, {"score": 0.5}, {"score": 0.6}]
    config, state = load_for_inference(out, "toy")
    assert config == {"task": "toy", "size": 2, "members": 3}
    assert json.loads((out / "config.json").read_text()) == config
    assert sorted(state) == ["members.0.w", "members.1.w", "members.2.w"]
    for k in range(3):
        assert state[f"members.{k}.w"].tolist() == [4.0 + k] * 2  # member k: seed + k
        # one worker: the whole time budget for each member, one after the other
        assert (member_dir(out, k) / "calls.txt").read_text() == f"{4 + k} False 20.0\n"
    with pytest.raises(UserError, match="--resume"):
        _train(out)
    # an unfinished member is resumed, finished ones are kept; one merged checkpoint remains
    (member_dir(out, 1) / "member.json").unlink()
    assert _train(out, resume=True)[1] == {"score": 0.5}
    assert (member_dir(out, 0) / "calls.txt").read_text().count("\n") == 1
    assert (member_dir(out, 1) / "calls.txt").read_text().splitlines()[-1] == "5 True None"
    assert len(ckpt.list_checkpoints(out)) == 1


def test_workers_train_members_at_once_and_a_failure_is_raised(tmp_path):
    out = tmp_path / "run"
    assert [r["score"] for r in _train(out, members=2, workers=2)] == [0.4, 0.5]
    assert load_for_inference(out)[1]["members.1.w"].tolist() == [5.0, 5.0]
    # a user error in a worker process arrives as itself: one sentence for the command line
    with pytest.raises(UserError, match="seed 5 met bad data"):
        _train(tmp_path / "bad", members=2, workers=2,
               train_one=functools.partial(toy_member, fail_seed=5))
    assert not (tmp_path / "bad" / "checkpoints").exists()
    with pytest.raises(UserError, match="workers must be a positive number"):
        _train(tmp_path / "none", workers=-1)
