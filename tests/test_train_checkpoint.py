"""Checkpoint directories: atomic layout, keep-last and best, loading for inference safely."""

from __future__ import annotations

import json
import os

import pytest
import torch
from test_train_toy import ToyNet, train_toy

from rnnkit.errors import UserError
from rnnkit.train import checkpoint as ckpt
from rnnkit.train import load_for_inference

pytestmark = pytest.mark.usefixtures("one_thread")


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    """A finished toy run: 3 epochs, a checkpoint every 4 steps, the last 2 kept."""
    run_dir = tmp_path_factory.mktemp("ckpt") / "run"
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    trainer = train_toy(run_dir, checkpoint_every=4, keep_last=2)
    torch.set_num_threads(threads)
    return run_dir, trainer


def test_run_directory_layout_pointers_and_keep_last(run):
    run_dir, trainer = run
    assert (run_dir / "config.json").is_file() and (run_dir / "metrics.csv").is_file()
    names = ckpt.list_checkpoints(run_dir)
    best = ckpt.pointer(run_dir, "best")
    assert ckpt.pointer(run_dir, "last") == names[-1] == "step-00000018"
    assert best == trainer.best_name
    assert set(names) == {best, *names[-2:]} and len(names) <= 3
    for name in names:
        files = sorted(p.name for p in (run_dir / "checkpoints" / name).iterdir())
        assert files == ["config.json", "model.safetensors", "trainer_state.pt"]
    assert os.readlink(run_dir / "last") == "checkpoints/step-00000018"
    assert not [p for p in run_dir.rglob(".tmp-*")]


def test_load_for_inference_gives_the_config_and_the_best_weights(run):
    run_dir, trainer = run
    config, state = load_for_inference(run_dir, expect_task="toy")
    assert config["task"] == "toy" and config["train"]["keep_last"] == 2
    model = ToyNet()
    model.load_state_dict(state)  # the task rebuilds its model from the config
    _, last = load_for_inference(run_dir, which="last")
    for k, v in trainer.model.state_dict().items():
        assert torch.equal(last[k], v)
    # a checkpoint directory itself works too
    config2, _ = load_for_inference(run_dir / "best")
    assert config2 == config


def test_load_for_inference_never_unpickles(run, monkeypatch):
    import pickle

    def refuse(*a, **k):
        raise AssertionError("unpickling during inference loading")

    monkeypatch.setattr(torch, "load", refuse)
    monkeypatch.setattr(pickle, "load", refuse)
    monkeypatch.setattr(pickle, "loads", refuse)
    config, state = load_for_inference(run[0])
    assert state and config


def test_trainer_state_loads_with_weights_only_and_refuses_arbitrary_objects(run, tmp_path):
    st = ckpt.load_trainer_state(run[0] / "last")
    assert st["step"] == 18 and isinstance(st["rng"]["torch"], torch.Tensor)
    (tmp_path / "bad").mkdir()
    torch.save({"x": _Evil()}, tmp_path / "bad" / ckpt.STATE_FILE)
    with pytest.raises(UserError, match="truncated or corrupt"):
        ckpt.load_trainer_state(tmp_path / "bad")


class _Evil:
    def __reduce__(self):
        return (os.system, ("echo should never run",))


def _copy(run_dir, dst):
    import shutil

    shutil.copytree(run_dir, dst, symlinks=True)
    return dst


def test_clear_errors_for_missing_foreign_and_broken_checkpoints(run, tmp_path):
    with pytest.raises(UserError, match="does not exist"):
        load_for_inference(tmp_path / "nope")
    (tmp_path / "empty").mkdir()
    with pytest.raises(UserError, match="not an rnnkit run directory"):
        load_for_inference(tmp_path / "empty")
    (tmp_path / "file.txt").write_text("hello")
    with pytest.raises(UserError, match="is a file"):
        load_for_inference(tmp_path / "file.txt")
    with pytest.raises(UserError, match="task 'toy', expected a 'textgen' one"):
        load_for_inference(run[0], expect_task="textgen")

    broken = _copy(run[0], tmp_path / "truncated")
    weights = broken / "best" / ckpt.MODEL_FILE
    weights.write_bytes(weights.read_bytes()[: weights.stat().st_size // 2])
    with pytest.raises(UserError, match="model.safetensors is truncated or corrupt"):
        load_for_inference(broken)

    bad_json = _copy(run[0], tmp_path / "badjson")
    cfg = bad_json / "best" / ckpt.CONFIG_FILE
    cfg.write_text(cfg.read_text()[:20])
    with pytest.raises(UserError, match="config.json is truncated or corrupt"):
        load_for_inference(bad_json)

    no_cfg = _copy(run[0], tmp_path / "nocfg")
    (no_cfg / "best" / ckpt.CONFIG_FILE).unlink()
    with pytest.raises(UserError, match="config.json is missing"):
        load_for_inference(no_cfg)


def test_pointers_fall_back_to_the_newest_complete_checkpoint(run, tmp_path):
    copy = _copy(run[0], tmp_path / "nopointers")
    (copy / "best").unlink()
    (copy / "last").unlink()
    (copy / "checkpoints" / ".tmp-step-00000099-1").mkdir()  # an unfinished save
    assert ckpt.resolve(copy) == copy / "checkpoints" / "step-00000018"


def test_a_crash_before_the_pointers_move_leaves_them_on_complete_checkpoints(run, tmp_path):
    copy = _copy(run[0], tmp_path / "crash")
    before = ckpt.pointer(copy, "last")
    name = ckpt.new_name(copy, 18)
    assert name == "step-00000018-1"  # a step saved again gets a name of its own
    ckpt.save_checkpoint(copy, name, {"w": torch.ones(2)}, {"task": "toy"}, None)
    assert ckpt.pointer(copy, "last") == before  # not moved yet: still the complete old one
    ckpt.set_pointer(copy, "last", name)
    config, state = load_for_inference(copy, which="last")
    assert torch.equal(state["w"], torch.ones(2))


def test_resume_cleans_leftovers_and_rejects_another_task(run, tmp_path):
    from test_train_toy import ToyTask

    from rnnkit.train import TrainConfig, Trainer

    copy = _copy(run[0], tmp_path / "other")
    (copy / "checkpoints" / ".tmp-step-00000020-7").mkdir()
    (copy / ".tmp-last-7").symlink_to("checkpoints/nothing")

    class Other(ToyTask):
        def checkpoint_config(self):
            return {"task": "other"}

    trainer = Trainer(ToyNet(), Other(), TrainConfig(quiet=True), copy)
    with pytest.raises(UserError, match="task 'toy', not 'other'"):
        trainer.fit(resume=True)
    assert not list(copy.rglob(".tmp-*"))


def test_write_json_atomic_replaces_whole_files(tmp_path):
    path = tmp_path / "c.json"
    ckpt.write_json_atomic(path, {"a": 1})
    ckpt.write_json_atomic(path, {"b": [1, 2]})
    assert json.loads(path.read_text()) == {"b": [1, 2]}
    assert [p.name for p in tmp_path.iterdir()] == ["c.json"]


def test_tied_weights_save_and_load(tmp_path):
    model = torch.nn.Sequential(torch.nn.Embedding(5, 3), torch.nn.Linear(3, 5, bias=False))
    model[1].weight = model[0].weight  # weight tying: two names, one tensor
    ckpt.save_checkpoint(tmp_path, "step-00000001", model.state_dict(), {"task": "t"}, None)
    _, state = load_for_inference(tmp_path / "checkpoints" / "step-00000001")
    fresh = torch.nn.Sequential(torch.nn.Embedding(5, 3), torch.nn.Linear(3, 5, bias=False))
    fresh[1].weight = fresh[0].weight
    fresh.load_state_dict(state)
    assert torch.equal(fresh[1].weight, model[0].weight)
