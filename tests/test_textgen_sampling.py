import pytest
import torch

import rnnkit.nn
from rnnkit.errors import UserError
from rnnkit.models.language_model import LanguageModel, LanguageModelConfig
from rnnkit.models.sampling import filter_logits, generate, sample_next
from rnnkit.nn.registry import ARCHS

pytestmark = pytest.mark.usefixtures("one_thread")


def _model(arch="lstm", **kw):
    torch.manual_seed(0)
    return LanguageModel(LanguageModelConfig(vocab_size=11, arch=arch, layers=2, hidden=16, **kw))


@pytest.mark.parametrize("arch", ARCHS)
def test_step_by_step_logits_equal_the_full_forward(arch):
    model = _model(arch).eval()
    tokens = torch.randint(0, 11, (3, 9))
    with torch.no_grad():
        full, _ = model(tokens)
        logits, state = model(tokens[:, :4])  # a prompt read at once, then one step per token
        stepped = [logits[:, -1]]
        for t in range(4, 9):
            logits, state = model.step(tokens[:, t], state)
            stepped.append(logits)
    torch.testing.assert_close(torch.stack(stepped, 1), full[:, 3:], atol=1e-5, rtol=1e-4)


def test_the_defaults_are_the_tasks_and_the_layer_comes_from_the_registry():
    cfg = LanguageModelConfig(vocab_size=11)
    assert (cfg.arch, cfg.layers, cfg.hidden) == ("lstm", 1, 256)
    model = LanguageModel(LanguageModelConfig(vocab_size=11, arch="gru", hidden=8,
                                              forget_bias=1.0))
    assert type(model.rnn) is rnnkit.nn.GRU and model.rnn.forget_bias == 1.0
    for bad, match in (({"arch": "tcn"}, "arch must be one of lstm, gru"),
                       ({"arch": "rnn", "forget_bias": 1.0}, "forget_bias applies to the gated"),
                       ({"init": "chrono"}, "init must be default or orthogonal")):
        with pytest.raises(UserError, match=match):
            LanguageModelConfig(vocab_size=11, **bad)


def test_tied_weights_share_one_matrix():
    model = _model(tie_weights=True)
    assert model.output.weight is model.embedding.weight
    with pytest.raises(UserError, match="weight tying"):
        LanguageModelConfig(vocab_size=11, hidden=16, embed=8, tie_weights=True)


def test_top_k_and_top_p_restrict_the_support():
    logits = torch.log(torch.tensor([[0.05, 0.4, 0.1, 0.3, 0.15]]))
    kept_k = torch.isfinite(filter_logits(logits, top_k=2))[0].nonzero().flatten().tolist()
    assert kept_k == [1, 3]
    # 0.4 + 0.3 = 0.7 < 0.75, so top-p 0.75 needs the third most likely token too
    kept_p = torch.isfinite(filter_logits(logits, top_p=0.75))[0].nonzero().flatten().tolist()
    assert kept_p == [1, 3, 4]
    assert torch.isfinite(filter_logits(logits, top_p=0.01)).sum() == 1  # always one token
    g = torch.Generator().manual_seed(0)
    draws = sample_next(logits.expand(4000, -1), top_k=2, generator=g)
    assert set(draws.tolist()) == {1, 3}
    draws = sample_next(logits.expand(4000, -1), top_p=0.75, generator=g)
    assert set(draws.tolist()) == {1, 3, 4}
    assert abs((draws == 1).float().mean().item() - 0.4 / 0.85) < 0.04  # renormalised


def test_same_seed_same_text_and_samples_differ():
    model = _model()
    a = generate(model, [1, 2, 3], 30, samples=3, seed=7)
    b = generate(model, [1, 2, 3], 30, samples=3, seed=7)
    assert a.shape == (3, 30) and torch.equal(a, b)
    assert not torch.equal(a[0], a[1])
    assert not torch.equal(a, generate(model, [1, 2, 3], 30, samples=3, seed=8))


@pytest.mark.parametrize("temperature", [0.0, 1e-6])
def test_temperature_near_zero_is_greedy(temperature):
    model = _model().eval()
    out = generate(model, [1, 2], 12, temperature=temperature, seed=0)
    tokens = [1, 2]
    with torch.no_grad():
        for _ in range(12):  # greedy decoding the slow way: the whole sequence every time
            tokens.append(model(torch.tensor([tokens]))[0][0, -1].argmax().item())
    assert out[0].tolist() == tokens[2:]


def test_prompt_is_read_once_then_one_step_per_token():
    model = _model()
    calls = {"forward": 0, "step": 0}
    forward, step = model.forward, model.step

    def counting(name, fn):
        def wrapped(*args):
            calls[name] += 1
            return fn(*args)
        return wrapped

    model.forward, model.step = counting("forward", forward), counting("step", step)
    streamed = []
    out = generate(model, [1, 2, 3, 4, 5], 10, seed=0, on_token=lambda t: streamed.append(t))
    assert calls == {"forward": 1, "step": 9}
    assert torch.equal(torch.stack(streamed, 1), out)


@pytest.mark.parametrize("bad, match", [
    ({"temperature": -1.0}, "temperature"), ({"top_k": 0}, "top-k"), ({"top_p": 1.5}, "top-p"),
    ({"samples": 0}, "samples"), ({"length": -1}, "length"),
])
def test_bad_sampling_settings(bad, match):
    kwargs = {"length": 5, **bad}
    with pytest.raises(UserError, match=match):
        generate(_model(), [1], **kwargs)
