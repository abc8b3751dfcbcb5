"""How a loaded model's inference precision is chosen (rnnkit.tasks.precision); every task's
probe and its bf16 inference run in tests/test_task_harness.py."""

from __future__ import annotations

import time

import pytest
import torch

from rnnkit.errors import UserError
from rnnkit.tasks import precision as P

BIG = torch.nn.Linear(256, 256)


def _probe(fp32_s: float, bf16_s: float, diff: float = 0.0):
    """A probe that takes these times and makes bf16's outputs differ by ``diff``."""
    def probe(bf16: bool) -> torch.Tensor:
        time.sleep(bf16_s if bf16 else fp32_s)
        return torch.full((3,), 0.5 + (diff if bf16 else 0.0))
    return probe


@pytest.fixture
def amx(monkeypatch):
    monkeypatch.setattr(P, "bf16_unit", lambda: "amx_bf16")


def test_asked_precision_is_kept_and_a_wrong_one_is_one_sentence():
    for asked in ("fp32", "bf16"):
        chosen = P.choose(asked, "cpu", BIG, _probe(0, 0))
        assert (chosen.asked, chosen.used) == (asked, asked)
    with pytest.raises(UserError, match="precision must be one of auto, fp32, bf16"):
        P.choose("half", "cpu", BIG, _probe(0, 0))


def test_auto_is_float32_without_bf16_instructions_without_probing(monkeypatch):
    monkeypatch.setattr(P, "bf16_unit", lambda: None)

    def never(bf16):
        raise AssertionError("probed")

    chosen = P.choose("auto", "cpu", BIG, never)
    assert chosen.used == "fp32" and "no bf16 matrix instructions" in chosen.reason
    assert P.choose("auto", "meta", BIG, never).used == "fp32"
    assert P.choose("auto", "cpu", torch.nn.Linear(8, 8), never).used == "fp32"


def test_auto_takes_bf16_only_when_faster_and_alike(amx):
    faster = P.choose("auto", "cpu", BIG, _probe(0.02, 0.005))
    assert faster.used == "bf16" and "inference took" in faster.reason
    assert faster.dtype == torch.bfloat16
    slower = P.choose("auto", "cpu", BIG, _probe(0.005, 0.006))
    assert slower.used == "fp32" and "not faster" in slower.reason
    unlike = P.choose("auto", "cpu", BIG, _probe(0.02, 0.005, diff=0.2))
    assert unlike.used == "fp32" and "changed the outputs by 0.200" in unlike.reason


def test_in_precision_runs_the_method_under_the_predictors_autocast():
    class Predictor:
        module = BIG
        precision = P.FLOAT32

        @P.in_precision
        def dtype(self):
            return self.module(torch.ones(1, 256)).dtype

    p = Predictor()
    assert p.dtype() == torch.float32
    p.precision = P.choose("bf16", "cpu", BIG, _probe(0, 0))
    assert p.dtype() == torch.bfloat16
