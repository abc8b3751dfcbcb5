"""TrainConfig, durations, config files merged with overrides, and the shared CLI helpers."""

from __future__ import annotations

import dataclasses

import pytest
from hypothesis import given
from hypothesis import strategies as st

from rnnkit.errors import UserError
from rnnkit.train import (
    TrainConfig,
    load_config_file,
    merge_config,
    parse_duration,
    resolve_device,
    task_configs,
)


@pytest.mark.parametrize("text,seconds", [("90s", 90), ("3m", 180), ("1h", 3600), ("1.5h", 5400),
                                          ("2d", 172800), ("45", 45), (" 10 s ", 10), (7, 7),
                                          (0.5, 0.5)])
def test_parse_duration(text, seconds):
    assert parse_duration(text) == seconds


@pytest.mark.parametrize("bad", ["3x", "", "m", "-1s", "0", "1h30m", True, 0, "1e3s"])
def test_bad_durations_are_user_errors(bad):
    with pytest.raises(UserError, match="max_time"):
        parse_duration(bad)


@given(st.integers(1, 10**6), st.sampled_from(["s", "m", "h"]))
def test_duration_units_multiply(n, unit):
    assert parse_duration(f"{n}{unit}") == n * {"s": 1, "m": 60, "h": 3600}[unit]


def test_train_config_checks_its_choices():
    with pytest.raises(UserError, match="optimizer must be one of sgd, adam, adamw, found 'rmsprop'"):
        TrainConfig(optimizer="rmsprop")
    with pytest.raises(UserError, match="max_time"):
        TrainConfig(max_time="soon")
    with pytest.raises(UserError, match="max_steps"):
        TrainConfig(max_steps=-1)
    assert TrainConfig(max_time="3m").max_seconds() == 180


@dataclasses.dataclass
class ModelConfig:
    hidden: int = 64
    arch: str = "lstm"
    dropout: float = 0.0
    tie: bool | None = None


def test_merge_routes_keys_to_each_dataclass_and_overrides_win():
    train, model = merge_config(
        [TrainConfig, ModelConfig],
        {"epochs": 3, "lr": "1e-3", "hidden": 128, "max-time": "2m", "tie": "true"},
        {"epochs": 5, "hidden": None, "arch": "gru"},
    )
    assert (train.epochs, train.lr, train.max_time) == (5, 1e-3, "2m")
    assert (model.hidden, model.arch, model.tie) == (128, "gru", True)


def test_merge_rejects_unknown_keys_naming_the_known_ones():
    with pytest.raises(UserError, match=r"unknown key 'hiden'; known keys are: .*hidden") as e:
        merge_config([TrainConfig, ModelConfig], {"hiden": 3}, source="config file x.yaml")
    assert str(e.value).startswith("config file x.yaml has an unknown key")
    with pytest.raises(UserError, match="the command line has an unknown key 'bogus'"):
        merge_config([TrainConfig], {}, {"bogus": 1})


def test_merge_rejects_values_of_the_wrong_type():
    with pytest.raises(UserError, match="'epochs' expects int or none, found 'many'"):
        merge_config([TrainConfig], {"epochs": "many"})
    with pytest.raises(UserError, match="'hidden' expects int, found 1.5"):
        merge_config([ModelConfig], {"hidden": 1.5})
    (t,) = merge_config([TrainConfig], {"patience": "none", "clip_norm": 0})
    assert t.patience is None and t.clip_norm == 0.0


def test_config_files_yaml_and_toml(tmp_path):
    (tmp_path / "a.yaml").write_text("epochs: 2\nlr: 1e-3\nschedule: cosine\n")
    (tmp_path / "a.toml").write_text('epochs = 2\nlr = 1e-3\nmax_time = "90s"\n')
    assert load_config_file(tmp_path / "a.yaml") == {"epochs": 2, "lr": "1e-3",
                                                      "schedule": "cosine"}
    assert load_config_file(tmp_path / "a.toml") == {"epochs": 2, "lr": 1e-3, "max_time": "90s"}
    (tmp_path / "empty.yaml").write_text("")
    assert load_config_file(tmp_path / "empty.yaml") == {}


@pytest.mark.parametrize("name,text,msg", [
    ("missing.yaml", None, "does not exist"),
    ("bad.toml", "epochs = = 2", r"is not valid TOML: .*line 1, column 10\)\.$"),
    ("bad.yaml", "epochs: [1,", r"is not valid YAML: line 1, column 12: expected the node content"),
    ("two.yaml", "a: 1\nb: c: d\n", r"is not valid YAML: line 2, column 5: mapping values"),
    ("latin.yaml", b"a: caf\xe9\n", "is not UTF-8 text"),
    ("list.yaml", "- 1\n- 2\n", "must hold a mapping"),
    ("a.json", "{}", "must end in .yaml, .yml or .toml"),
])
def test_bad_config_files_are_user_errors(tmp_path, name, text, msg):
    if isinstance(text, bytes):
        (tmp_path / name).write_bytes(text)
    elif text is not None:
        (tmp_path / name).write_text(text)
    with pytest.raises(UserError, match=msg) as caught:
        load_config_file(tmp_path / name)
    assert "\n" not in str(caught.value)  # one sentence, not the parser's report


def test_task_configs_from_defaults_file_and_flags(tmp_path):
    (tmp_path / "c.yaml").write_text("epochs: 4\nhidden: 32\nquiet: true\n")
    flags = {"epochs": None, "max_steps": 7, "lr": 0.01, "quiet": None}  # None: not given
    train, model = task_configs(ModelConfig, "toy", {"lr": 0.5, "epochs": 9},
                                {**flags, "arch": "gru"}, tmp_path / "c.yaml")
    assert (train.epochs, train.max_steps, train.lr, train.quiet) == (4, 7, 0.01, True)
    assert (model.hidden, model.arch) == (32, "gru")
    (tmp_path / "c.yaml").write_text("hiden: 32\n")
    with pytest.raises(UserError, match="c.yaml has an unknown key 'hiden'"):
        task_configs(ModelConfig, "toy", {}, {}, tmp_path / "c.yaml")


def test_task_configs_resume_from_the_saved_run_and_refuse_another_tasks(tmp_path):
    run = tmp_path / "run"
    run.mkdir()
    (run / "config.json").write_text(
        '{"task": "toy", "train": {"epochs": 3, "lr": 0.25}, "toy": {"hidden": 7}}')
    train, model = task_configs(ModelConfig, "toy", {"epochs": 9}, {"lr": 0.1}, resume_from=run)
    assert (train.epochs, train.lr, model.hidden) == (3, 0.1, 7)
    with pytest.raises(UserError, match="holds a run of task 'toy', not 'other'"):
        task_configs(ModelConfig, "other", {}, {}, resume_from=run)
    (run / "config.json").write_text('{"task": ')
    with pytest.raises(UserError, match="truncated or corrupt"):
        task_configs(ModelConfig, "toy", {}, {}, resume_from=run)


def test_device_selection():
    import torch

    assert resolve_device("auto").type == ("cuda" if torch.cuda.is_available() else "cpu")
    assert resolve_device("cpu").type == "cpu"
    with pytest.raises(UserError, match="device must be"):
        resolve_device("tpu9")
    if not torch.cuda.is_available():
        with pytest.raises(UserError, match="no usable CUDA GPU"):
            resolve_device("cuda")


@pytest.mark.parametrize("optimizer", ["adam", "adamw"])
def test_fused_optimizer_matches_the_per_operation_one(optimizer):
    """The trainer's optimiser uses the fused kernel; ten steps of it and of torch's plain
    (foreach=False) implementation end at the same weights."""
    import torch

    from rnnkit.train.trainer import build_optimizer

    torch.manual_seed(0)
    start = [torch.randn(50, 8), torch.randn(8)]
    grads = [[torch.randn_like(p) for p in start] for _ in range(10)]
    cfg = TrainConfig(optimizer=optimizer, lr=1e-2, weight_decay=0.05)
    results = []
    for fused in (True, False):
        params = [torch.nn.Parameter(p.clone()) for p in start]
        opt = build_optimizer(params, cfg)
        if not fused:
            opt = type(opt)(params, lr=cfg.lr, weight_decay=0.05, foreach=False)
        assert opt.defaults["fused"] is (True if fused else None)
        for step in grads:
            for p, g in zip(params, step, strict=True):
                p.grad = g.clone()
            opt.step()
        results.append(params)
    for a, b in zip(*results, strict=True):
        torch.testing.assert_close(a, b, atol=1e-6, rtol=1e-5)
