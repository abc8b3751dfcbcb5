"""The task registry and the generated ``rnnkit train <task>`` commands, with a sixth task
declared here the way a user or a plug-in would: one config, one TaskSpec, one register call."""

from __future__ import annotations

import csv
import dataclasses
import json
from dataclasses import dataclass
from pathlib import Path

import pytest
import torch
from torch import nn

from rnnkit.cli import run
from rnnkit.cli.train import _single, option_fields
from rnnkit.errors import UserError
from rnnkit.settings import setting
from rnnkit.tasks import registry
from rnnkit.train import TrainConfig, Trainer, load_for_inference


@dataclass
class ScaleConfig:
    data: str = setting("", "CSV with columns x and y.", metavar="PATH")
    hidden: int = setting(4, "Hidden units of the little network.")
    bias: bool = setting(True, "Give the layers a bias.")
    note: str | None = setting(None, "Free text kept in the run config.")


class ScaleTask:
    def __init__(self, cfg: ScaleConfig, x: torch.Tensor, y: torch.Tensor, batch_size: int):
        self.cfg, self.x, self.y, self.batch_size = cfg, x, y, batch_size

    def train_batches(self, epoch):
        return [(self.x[i:i + self.batch_size], self.y[i:i + self.batch_size])
                for i in range(0, len(self.x), self.batch_size)]

    def training_step(self, model, batch, state):
        x, y = batch
        return nn.functional.mse_loss(model(x), y), len(x), None

    def evaluate(self, model):
        return {"val_loss": nn.functional.mse_loss(model(self.x), self.y).item()}

    def checkpoint_config(self):
        return {"task": "scale", "scale": dataclasses.asdict(self.cfg)}


def _model(cfg: ScaleConfig) -> nn.Module:
    torch.manual_seed(0)
    return nn.Sequential(nn.Linear(1, cfg.hidden, bias=cfg.bias), nn.Tanh(),
                         nn.Linear(cfg.hidden, 1, bias=cfg.bias))


def _read(path: str) -> tuple[torch.Tensor, torch.Tensor]:
    if not Path(path).is_file():
        raise UserError(f"data file {path} does not exist.")
    with open(path, newline="") as f:
        rows = list(csv.DictReader(f))
    return (torch.tensor([[float(r["x"])] for r in rows]),
            torch.tensor([[float(r["y"])] for r in rows]))


class ScalePredictor:
    task = "scale"

    def __init__(self, model, config):
        self.model, self.config, self.metrics = model, config, {}

    @property
    def module(self):
        return self.model

    def predict(self, xs):
        with torch.no_grad():
            return self.model(torch.tensor([[float(x)] for x in xs]))[:, 0].tolist()

    def evaluate(self, data):
        x, y = _read(data)
        with torch.no_grad():
            return {"mse": nn.functional.mse_loss(self.model(x), y).item()}


def fit(train_cfg, cfg, out, resume=False):
    x, y = _read(cfg.data)
    last = Trainer(_model(cfg), ScaleTask(cfg, x, y, train_cfg.batch_size), train_cfg,
                   out).fit(resume=resume)
    return {"train": last}


def load(run_dir, device="cpu", which="best"):
    config, state = load_for_inference(run_dir, expect_task="scale", which=which)
    model = _model(ScaleConfig(**config["scale"]))
    model.load_state_dict(state)
    return ScalePredictor(model, config)


SPEC = registry.TaskSpec(
    name="scale", config=ScaleConfig, fit=fit, load=load, help="Learn y = 2x.",
    example="rnnkit train scale --data xy.csv --out runs/scale",
    train_defaults={"lr": 0.01, "batch_size": 8},
    summary=lambda report, out: [f"val_loss {report['train']['val_loss']:.4f}", f"in {out}"])


@pytest.fixture
def scale_task(tmp_path, monkeypatch):
    monkeypatch.setattr(registry, "_registered", {**registry._registered})
    registry.register(SPEC)
    data = tmp_path / "xy.csv"
    data.write_text("x,y\n" + "".join(f"{i / 10},{i / 5}\n" for i in range(-16, 16)))
    return data


def test_a_registered_task_trains_from_the_command_line(scale_task, tmp_path, capsys):
    out = tmp_path / "run"
    assert "scale" in registry.names()
    code = run(["train", "scale", "--data", str(scale_task), "--out", str(out), "--hidden", "6",
                "--no-bias", "--max-steps", "3", "--quiet"])
    assert code == 0, capsys.readouterr().err
    assert capsys.readouterr().out.splitlines()[-1] == f"in {out}"
    saved = json.loads((out / "config.json").read_text())
    assert saved["scale"] == {"data": str(scale_task), "hidden": 6, "bias": False, "note": None}
    assert saved["train"]["lr"] == 0.01 and saved["train"]["max_steps"] == 3  # task defaults
    predictor = registry.load(out)
    assert predictor.module[0].out_features == 6 and predictor.module[0].bias is None
    assert len(predictor.predict([0.5, 1.0])) == 2
    assert set(predictor.evaluate(str(scale_task))) == {"mse"}
    assert run(["evaluate", str(out), "--data", str(scale_task)]) == 0
    assert capsys.readouterr().out.startswith("mse ")
    # its loader has no precision: asking for one is a sentence, not a TypeError
    assert run(["evaluate", str(out), "--data", str(scale_task), "--precision", "bf16"]) == 2
    assert "a scale run does not take it" in capsys.readouterr().err


def test_resume_restores_the_saved_settings(scale_task, tmp_path, capsys):
    out = tmp_path / "run"
    assert run(["train", "scale", "--data", str(scale_task), "--out", str(out), "--hidden", "6",
                "--max-steps", "2", "--quiet"]) == 0
    # no --hidden now: the run's own 6, not the default 4, or the weights would not fit
    assert run(["train", "scale", "--data", str(scale_task), "--out", str(out), "--resume",
                "--max-steps", "5", "--quiet"]) == 0, capsys.readouterr().err
    saved = json.loads((out / "config.json").read_text())
    assert saved["scale"]["hidden"] == 6 and saved["train"]["max_steps"] == 5


def test_every_setting_is_an_option_with_its_default_and_help(scale_task):
    """For every registered task: each config and TrainConfig field is exactly one option, with
    the field's help and default, and the command has no other options besides --out, --config,
    --resume, --nproc (and --help)."""
    import typer

    for name in registry.names():
        spec = registry.get(name)
        command = typer.main.get_command(_single(spec))
        options = {p.name: p for p in command.params}
        fields = option_fields(spec)
        assert set(options) == {f.name for f, *_ in fields} | {"out", "config", "resume",
                                                                         "nproc"}, name
        for f, _hint, default, _panel in fields:
            option = options[f.name]
            assert option.help == f.metadata["help"] and option.help, (name, f.name)
            assert option.default is None, (name, f.name)  # not given: file and resume stand
            shown = option.show_default
            if default in (None, "", []):
                assert shown is False, (name, f.name)
            else:
                assert shown == (str(default).lower() if isinstance(default, bool)
                                 else str(default)), (name, f.name)
        for f in dataclasses.fields(TrainConfig):
            assert f.name in options, (name, f.name)


def test_a_config_file_and_an_unknown_key(scale_task, tmp_path, capsys):
    cfg = tmp_path / "s.yaml"
    cfg.write_text("hidden: 3\nmax_steps: 1\nquiet: true\n")
    out = tmp_path / "run"
    assert run(["train", "scale", "--data", str(scale_task), "--out", str(out),
                "--config", str(cfg)]) == 0
    assert json.loads((out / "config.json").read_text())["scale"]["hidden"] == 3
    cfg.write_text("hiden: 3\n")
    assert run(["train", "scale", "--data", str(scale_task), "--out", str(tmp_path / "r2"),
                "--config", str(cfg)]) == 2
    err = capsys.readouterr().err
    assert "unknown key 'hiden'" in err and len(err.strip().splitlines()) == 1


def test_a_bad_input_is_one_sentence_and_exit_2(scale_task, tmp_path, capsys):
    assert run(["train", "scale", "--data", str(tmp_path / "missing.csv"), "--out",
                str(tmp_path / "r"), "--quiet"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert err == [f"error: data file {tmp_path / 'missing.csv'} does not exist."]


def test_ctrl_c_in_training_exits_130(scale_task, tmp_path, monkeypatch):
    def interrupted(train_cfg, cfg, out, resume=False):
        raise KeyboardInterrupt  # the trainer raises it after saving its checkpoint

    registry.register(dataclasses.replace(SPEC, fit=interrupted))
    assert run(["train", "scale", "--data", str(scale_task), "--out", str(tmp_path / "r")]) == 130


def test_unknown_task_names_the_known_ones():
    with pytest.raises(UserError, match="there is no task 'nope'; the tasks are textgen"):
        registry.get("nope")


def test_an_entry_point_registers_a_task(monkeypatch):
    class EntryPoint:
        name = "scale"

        def load(self):
            return SPEC

    monkeypatch.setattr(registry, "_registered", {})
    monkeypatch.setattr(registry, "_entry_points", {"scale": EntryPoint()})
    assert "scale" in registry.names()
    assert registry.get("scale") is SPEC


# The options of `rnnkit train <task>` before the registry (read from the commands of commit
# f382db4): every one of them must still be accepted.
EARLIER_FLAGS = {
    "textgen": "--arch --bpe-vocab --data --dropout --embed --hidden --layers --out --seq-len "
               "--tie-weights --no-tie-weights --tokenizer --val --errors",
    "sentiment": "--arch --class-weights --data --dropout --embed --ensemble --format "
                 "--freeze-vectors --hidden --init-from --label-column --layers --max-len "
                 "--max-vocab --min-freq --out --pooling --subwords --no-subwords --test "
                 "--text-column --tokenizer --val --val-fraction --vectors --word-dropout "
                 "--workers",
    "translate": "--arch --attention --beam --dec-layers --dropout --embed --hidden "
                 "--input-feeding --no-input-feeding --joint-vocab --separate-vocab "
                 "--label-smoothing --layers --max-len --out --src --teacher-forcing "
                 "--teacher-forcing-decay --test-src --test-tgt --tgt --tie-embeddings "
                 "--no-tie-embeddings --tokenizer --val-fraction --val-src --val-tgt "
                 "--vocab-size",
    "speech": "--alphabet --arch --bidirectional --unidirectional --data --features --hidden "
              "--layers --lm-order --no-resample --out --sample-rate --skip-bad --spec-augment "
              "--no-spec-augment --subsample --test --unknown-chars --val --val-fraction",
    "forecast": "--arch --calendar --channels --dropout --fill --freq --future-cov --head "
                "--hidden --horizon --id-col --layers --levels --lookback --model --norm --out "
                "--past --scaler --target --test --time-col --val --value-col --data",
}
SHARED_FLAGS = ("--config --epochs --max-steps --max-time --batch-size --lr --seed --device "
                "--resume --quiet")


@pytest.mark.parametrize("task", sorted(EARLIER_FLAGS))
def test_every_earlier_flag_is_still_accepted(task):
    import typer

    command = typer.main.get_command(_single(registry.get(task)))
    names = {name for p in command.params for name in (*p.opts, *p.secondary_opts)}
    missing = set(f"{EARLIER_FLAGS[task]} {SHARED_FLAGS}".split()) - names
    assert not missing, missing
