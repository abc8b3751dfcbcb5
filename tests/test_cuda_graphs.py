"""Streaming steps from per-bucket graphs (rnnkit.nn.cuda_graphs): the bucketing, padding and
state handling on the CPU (with the eager recorder, which keeps the graphs' contract), and the
real CUDA graphs where CUDA exists (skipped elsewhere)."""

import pytest
import torch

from rnnkit.models.language_model import LanguageModel, LanguageModelConfig
from rnnkit.models.sampling import generate
from rnnkit.nn.cuda_graphs import GraphedStep, bucket_for, graphed_step, run_eagerly

pytestmark = pytest.mark.usefixtures("one_thread")
needs_cuda = pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
ARCHS = ["lstm", "gru", "mingru", "minlstm"]


def _model(arch, device="cpu", layers=2):
    torch.manual_seed(0)
    cfg = LanguageModelConfig(vocab_size=11, arch=arch, layers=layers, hidden=8)
    return LanguageModel(cfg).to(device).eval()


def _state(model, rows, seed):
    """A random state of the model's structure for ``rows`` sequences."""
    gen = torch.Generator().manual_seed(seed)
    _, fresh = model.step(torch.zeros(rows, dtype=torch.long, device=_device(model)), None)
    parts = fresh if isinstance(fresh, tuple) else (fresh,)
    made = tuple(torch.randn(p.shape, generator=gen).to(p) for p in parts)
    return made if isinstance(fresh, tuple) else made[0]


def _device(model):
    return next(model.parameters()).device


def _close(got, want):
    if isinstance(want, tuple):
        for g, w in zip(got, want, strict=True):
            torch.testing.assert_close(g, w)
    else:
        torch.testing.assert_close(got, want)


def test_bucket_is_the_smallest_that_holds_the_rows():
    assert [bucket_for(n) for n in (1, 2, 3, 4, 5, 9, 16, 17, 32)] == [1, 2, 4, 4, 8, 16, 16,
                                                                      32, 32]
    assert bucket_for(33) is None
    assert bucket_for(3, (8, 2)) == 8


@pytest.mark.parametrize("arch", ARCHS)
def test_every_batch_size_gives_the_models_own_step(arch):
    model = _model(arch)
    graphed = GraphedStep(model, record=run_eagerly)
    with torch.inference_mode():
        for rows in (1, 3, 4, 7, 32, 33):  # padded buckets, an exact one, the eager fallback
            token = torch.randint(0, 11, (rows,))
            state = _state(model, rows, seed=rows)
            logits, new = graphed(token, state)
            want_logits, want = model.step(token, state)
            assert logits.shape == (rows, 11)
            torch.testing.assert_close(logits, want_logits)
            _close(new, want)
    assert sorted(graphed._slots) == [1, 4, 8, 32]


@pytest.mark.parametrize("arch", ["lstm", "mingru"])
def test_a_state_passed_back_continues_in_place_and_another_one_is_copied_in(arch):
    model = _model(arch)
    graphed = GraphedStep(model, record=run_eagerly)
    tokens = torch.randint(0, 11, (6, 3))
    with torch.inference_mode():
        state, want = None, None
        for t in range(6):  # from a fresh state, then each time the state it returned
            logits, state = graphed(tokens[t], state)
            want_logits, want = model.step(tokens[t], want)
            torch.testing.assert_close(logits, want_logits)
            _close(state, want)
        other = _state(model, 3, seed=5)  # a different sequence in the same bucket
        logits, _ = graphed(tokens[0], other)
        torch.testing.assert_close(logits, model.step(tokens[0], other)[0])


def test_graphs_apply_only_to_modules_on_cuda_in_eval_mode():
    model = _model("lstm")
    assert graphed_step(model) is None  # CPU
    assert graphed_step(object()) is None


def test_generation_loop_takes_the_graphed_step(monkeypatch):
    """generate() steps through graphed_step's result: with the eager recorder standing in for
    CUDA, the samples equal those of the model's own step."""
    model = _model("gru")
    want = generate(model, [1, 2, 3], 12, samples=3, seed=0)
    calls = []

    def fake(m):
        calls.append(m)
        return GraphedStep(m, record=run_eagerly)

    monkeypatch.setattr("rnnkit.models.sampling.graphed_step", fake)
    got = generate(model, [1, 2, 3], 12, samples=3, seed=0)
    assert calls == [model]
    torch.testing.assert_close(got, want)


@needs_cuda
@pytest.mark.parametrize("arch", ARCHS)
def test_cuda_graphs_replay_the_step(arch):
    model = _model(arch, "cuda")
    graphed = graphed_step(model)
    assert graphed is not None and graphed_step(model) is graphed  # cached
    with torch.inference_mode():
        for rows in (1, 5, 16):
            token = torch.randint(0, 11, (rows,), device="cuda")
            state = _state(model, rows, seed=rows)
            logits, new = graphed(token, state)
            want_logits, want = model.step(token, state)
            torch.testing.assert_close(logits, want_logits)
            _close(new, want)
    assert not graphed._failed


@needs_cuda
def test_new_weights_get_new_graphs():
    model = _model("lstm", "cuda")
    first = graphed_step(model)
    with torch.no_grad():
        model.output.weight.add_(1.0)
    second = graphed_step(model)
    assert second is not first
    token = torch.tensor([3], device="cuda")
    with torch.inference_mode():
        torch.testing.assert_close(second(token, None)[0], model.step(token, None)[0])


@needs_cuda
def test_generate_on_cuda_matches_the_eager_steps(monkeypatch):
    model = _model("lstm", "cuda")
    got = generate(model, [1, 2], 20, samples=2, seed=0, temperature=0)
    monkeypatch.setattr("rnnkit.models.sampling.graphed_step", lambda m: None)
    want = generate(model, [1, 2], 20, samples=2, seed=0, temperature=0)
    torch.testing.assert_close(got, want)
