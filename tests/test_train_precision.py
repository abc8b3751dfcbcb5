"""``precision: auto``: the decision on a CPU (flags, probe, tiny models, deterministic mode),
what a run saves and prints, and that a resumed run keeps its choice without probing again.
The processor's flags and the probe's timings are patched: no test depends on a measurement."""

from __future__ import annotations

import json

import pytest
import torch
from test_train_toy import ToyNet, ToyTask

from rnnkit.train import TrainConfig, Trainer
from rnnkit.train import precision as P

pytestmark = pytest.mark.usefixtures("one_thread")
CPU = torch.device("cpu")


def _probe(fp32_s, bf16_s, calls):
    def probe():
        calls.append(1)
        return fp32_s, bf16_s
    return probe


@pytest.fixture
def amx(monkeypatch):
    monkeypatch.setattr(P.hardware, "cpu_flags", lambda: {"avx2", "amx_bf16", "avx512_bf16"})
    monkeypatch.setattr(torch.ops.mkldnn, "_is_mkldnn_bf16_supported", lambda: True)


def test_auto_on_a_cpu_follows_the_probe_where_the_processor_has_bf16_units(amx):
    calls = []
    big = ToyNet(hidden=64)
    won = P.choose("auto", CPU, model=big, probe=_probe(0.2, 0.1, calls))
    assert (won.used, won.dtype) == ("bf16", torch.bfloat16) and "amx_bf16" in won.reason
    assert "2.00x" in won.reason and calls == [1]
    # within the margin is noise, not a gain
    assert P.choose("auto", CPU, model=big, probe=_probe(0.2, 0.19, calls)).used == "fp32"
    lost = P.choose("auto", CPU, model=big, probe=_probe(0.1, 0.2, calls))
    assert lost.used == "fp32" and lost.dtype is None and "not faster" in lost.reason


@pytest.mark.parametrize("flags, onednn, unit", [
    ({"avx2", "fma"}, True, None), ({"amx_bf16"}, False, None),
    ({"avx512f", "avx512_bf16"}, True, "avx512_bf16"), ({"asimd", "bf16"}, True, "bf16")])
def test_bf16_units_need_the_flag_and_onednn(monkeypatch, flags, onednn, unit):
    monkeypatch.setattr(P.hardware, "cpu_flags", lambda: flags)
    monkeypatch.setattr(torch.ops.mkldnn, "_is_mkldnn_bf16_supported", lambda: onednn)
    assert P.bf16_unit() == unit
    calls = []
    choice = P.choose("auto", CPU, model=ToyNet(hidden=64), probe=_probe(1.0, 0.1, calls))
    assert choice.used == ("bf16" if unit else "fp32") and len(calls) == (1 if unit else 0)


def test_no_probe_when_asked_deterministic_tiny_or_resumed(amx):
    calls = []
    probe = _probe(1.0, 0.1, calls)
    big = ToyNet(hidden=64)
    assert P.choose("fp32", CPU, model=big, probe=probe).used == "fp32"
    assert P.choose("bf16", CPU, model=big, probe=probe).used == "bf16"
    det = P.choose("auto", CPU, deterministic=True, model=big, probe=probe)
    assert det.used == "fp32" and "deterministic" in det.reason
    tiny = P.choose("auto", CPU, model=ToyNet(hidden=8), probe=probe)
    assert tiny.used == "fp32" and "small" in tiny.reason
    kept = P.choose("auto", CPU, saved={"asked": "auto", "used": "bf16", "reason": "probe"},
                    resumed=True, model=big, probe=probe)
    assert kept.used == "bf16" and kept.reason == "kept from the run being resumed (probe)"
    again = P.choose("auto", CPU, saved=kept.to_json(), resumed=True, model=big, probe=probe)
    assert again == kept  # resumed twice: the reason does not nest
    # a run from before the choice was saved trained in float32
    assert P.choose("auto", CPU, resumed=True, model=big, probe=probe).used == "fp32"
    assert calls == []


def test_the_probe_leaves_weights_gradients_and_random_state_alone():
    torch.manual_seed(3)
    model, task = ToyNet(hidden=8), ToyTask()
    before = {k: v.clone() for k, v in model.state_dict().items()}
    rng = torch.get_rng_state()
    fp32_s, bf16_s = P.probe_task(model, task, CPU)
    assert fp32_s > 0 and bf16_s > 0
    assert torch.equal(torch.get_rng_state(), rng)
    assert all(torch.equal(before[k], v) for k, v in model.state_dict().items())
    assert all(p.grad is None for p in model.parameters())


class _AutocastSeen(ToyTask):
    def __init__(self):
        super().__init__()
        self.autocast: list[bool] = []

    def training_step(self, model, batch, state):
        self.autocast.append(torch.is_autocast_enabled("cpu"))
        return super().training_step(model, batch, state)


def _train(run_dir, resume=False, **cfg):
    torch.manual_seed(0)
    task = _AutocastSeen()
    trainer = Trainer(ToyNet(hidden=64), task,
                      TrainConfig(**{"epochs": 1, "lr": 1e-2, "quiet": True, **cfg}), run_dir)
    trainer.fit(resume=resume)
    return trainer, task


def test_a_run_prints_saves_and_uses_the_choice_then_resume_keeps_it(amx, monkeypatch, tmp_path,
                                                                    capsys):
    calls = []
    monkeypatch.setattr(P, "time_both", lambda step: _probe(0.3, 0.1, calls)())
    run = tmp_path / "run"
    trainer, task = _train(run, max_steps=2, quiet=False)
    out = capsys.readouterr().out
    assert out.count("precision: bf16 autocast") == 1 and "amx_bf16" in out
    saved = json.loads((run / "config.json").read_text())["precision"]
    assert saved["asked"] == "auto" and saved["used"] == "bf16" and "3.00x" in saved["reason"]
    assert task.autocast == [True, True] and calls == [1]
    assert all(p.dtype == torch.float32 for p in trainer.model.parameters())
    moments = [s["exp_avg"] for s in trainer.optimizer.state.values()]
    assert moments and all(m.dtype == torch.float32 for m in moments)

    # resumed: the saved choice, no new probe, and the same weights as one uninterrupted run
    monkeypatch.setattr(P, "time_both", lambda step: pytest.fail("probed again on resume"))
    resumed, task = _train(run, resume=True, max_steps=4)
    assert task.autocast == [True, True] and resumed.precision.used == "bf16"
    assert json.loads((run / "config.json").read_text())["precision"]["used"] == "bf16"
    monkeypatch.setattr(P, "time_both", lambda step: _probe(0.3, 0.1, calls)())
    whole, _ = _train(tmp_path / "whole", max_steps=4)
    for (name, a), b in zip(whole.model.state_dict().items(), resumed.model.state_dict().values(),
                            strict=True):
        assert torch.equal(a, b), name
    # --precision fp32 on resume overrides the saved choice; quiet prints nothing
    fp32, task = _train(run, resume=True, max_steps=5, precision="fp32")
    assert task.autocast == [False] and "precision" not in capsys.readouterr().out


def test_deterministic_mode_trains_in_bf16_when_asked(tmp_path):
    trainer, task = _train(tmp_path / "run", max_steps=2, precision="bf16", deterministic=True)
    assert task.autocast == [True, True] and "set" in trainer.precision.reason
