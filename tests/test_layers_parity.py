"""rnnkit layers against torch.nn given the same weights: outputs, final states, every gradient."""

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from torch.nn.utils.rnn import PackedSequence, pack_padded_sequence, pad_packed_sequence

import rnnkit.nn as rn
from rnnkit.nn.registry import LAYERS as LAYERS_BY_ARCH

LAYERS = {
    "lstm": (rn.LSTM, torch.nn.LSTM),
    "gru": (rn.GRU, torch.nn.GRU),
    "rnn_tanh": (rn.RNN, torch.nn.RNN),
    "rnn_relu": (rn.RNN, torch.nn.RNN),
}


pytestmark = pytest.mark.usefixtures("one_thread")


@st.composite
def configs(draw):
    name = draw(st.sampled_from(sorted(LAYERS)))
    hidden = draw(st.integers(1, 33))
    kwargs = {
        "input_size": draw(st.integers(1, 33)),
        "hidden_size": hidden,
        "num_layers": draw(st.integers(1, 3)),
        "bias": draw(st.booleans()),
        "batch_first": draw(st.booleans()),
        "bidirectional": draw(st.booleans()),
    }
    if name == "lstm":
        kwargs["proj_size"] = draw(st.integers(0, hidden - 1))
    if name.startswith("rnn"):
        kwargs["nonlinearity"] = name[4:]
    return {
        "name": name,
        "kwargs": kwargs,
        "batch": draw(st.integers(1, 5)),
        "steps": draw(st.integers(1, 9)),
        "lengths": draw(st.sampled_from(["none", "tensor", "packed"])),
        "with_state": draw(st.booleans()),
        "seed": draw(st.integers(0, 2**16)),
    }


def pair(name, **kwargs):
    ours_cls, torch_cls = LAYERS[name]
    ours = ours_cls(**kwargs, dtype=torch.float64)
    theirs = torch_cls(**kwargs, dtype=torch.float64)
    theirs.load_state_dict(ours.state_dict())
    return ours, theirs


def states_of(final):
    return final if isinstance(final, tuple) else (final,)


@settings(max_examples=40, deadline=None)
@given(configs())
def test_layer_matches_torch_nn(c):
    torch.manual_seed(c["seed"])
    ours, theirs = pair(c["name"], **c["kwargs"])
    kw, b, t = c["kwargs"], c["batch"], c["steps"]
    x = torch.randn(
        *((b, t) if kw["batch_first"] else (t, b)), kw["input_size"], dtype=torch.float64
    )
    lengths = torch.randint(1, t + 1, (b,))
    state = None
    if c["with_state"]:
        rows = kw["num_layers"] * (2 if kw["bidirectional"] else 1)
        h = torch.randn(rows, b, kw.get("proj_size") or kw["hidden_size"], dtype=torch.float64)
        state = (
            (h, torch.randn(rows, b, kw["hidden_size"], dtype=torch.float64))
            if c["name"] == "lstm"
            else h
        )

    results = []
    for layer in (ours, theirs):
        xi = x.clone().requires_grad_()
        if c["lengths"] == "none":
            out, final = layer(xi, state)
        else:
            packed = pack_padded_sequence(xi, lengths, kw["batch_first"], enforce_sorted=False)
            if layer is ours and c["lengths"] == "tensor":
                out, final = layer(xi, state, lengths=lengths)
            else:
                out, final = layer(packed, state)
                assert isinstance(out, PackedSequence)
                out = pad_packed_sequence(out, kw["batch_first"], total_length=t)[0]
        weight = torch.linspace(-1, 1, out.numel(), dtype=torch.float64).view_as(out)
        loss = (out * weight).sum() + sum(f.sin().sum() for f in states_of(final))
        params = [p for _, p in sorted(layer.named_parameters())]
        grads = torch.autograd.grad(loss, [xi, *params])
        results.append((out, states_of(final), grads))
    (out, finals, grads), (t_out, t_finals, t_grads) = results
    torch.testing.assert_close(out, t_out)
    for f, tf in zip(finals, t_finals, strict=True):
        torch.testing.assert_close(f, tf)
    for g, tg in zip(grads, t_grads, strict=True):
        torch.testing.assert_close(g, tg)


@pytest.mark.parametrize("name", sorted(LAYERS))
def test_state_dict_loads_both_ways(name):
    kwargs = {"input_size": 3, "hidden_size": 5, "num_layers": 2, "bidirectional": True}
    if name == "lstm":
        kwargs["proj_size"] = 2
    ours, theirs = pair(name, **kwargs)
    assert list(ours.state_dict()) == list(theirs.state_dict())
    assert all(ours.state_dict()[k].shape == v.shape for k, v in theirs.state_dict().items())
    with torch.no_grad():
        for p in theirs.parameters():
            p.add_(1.0)
    ours.load_state_dict(theirs.state_dict())
    x = torch.randn(4, 2, 3, dtype=torch.float64)
    torch.testing.assert_close(ours(x)[0], theirs(x)[0])


def test_unbatched_input_matches_torch_nn():
    ours, theirs = pair("lstm", input_size=3, hidden_size=4, num_layers=2)
    x = torch.randn(5, 3, dtype=torch.float64)
    state = (torch.randn(2, 4, dtype=torch.float64), torch.randn(2, 4, dtype=torch.float64))
    (out, (h, c)), (t_out, (t_h, t_c)) = ours(x, state), theirs(x, state)
    torch.testing.assert_close(out, t_out)
    torch.testing.assert_close((h, c), (t_h, t_c))


def test_positional_arguments_follow_torch_nn():
    assert rn.RNN(3, 4, 2, "relu", False, True).nonlinearity == "relu"
    lstm = rn.LSTM(3, 4, 2, False, True, 0.0, True, 2)
    assert (lstm.bias, lstm.batch_first, lstm.bidirectional, lstm.proj_size) == (
        False,
        True,
        True,
        2,
    )
    gru = rn.GRU(3, 4, 1, True, False, 0.0, True)
    assert gru.bidirectional and gru.weight_hh_l0_reverse.shape == (12, 4)


@pytest.mark.parametrize("name", ["lstm", "gru", "rnn_tanh", "rnn_relu"])
@pytest.mark.parametrize("unbatched", [False, True])
def test_cells_match_torch_nn(name, unbatched):
    torch.manual_seed(4)
    cells = {
        "lstm": (rn.LSTMCell, torch.nn.LSTMCell),
        "gru": (rn.GRUCell, torch.nn.GRUCell),
        "rnn_tanh": (rn.RNNCell, torch.nn.RNNCell),
        "rnn_relu": (rn.RNNCell, torch.nn.RNNCell),
    }
    extra = {"nonlinearity": name[4:]} if name.startswith("rnn") else {}
    ours = cells[name][0](3, 4, dtype=torch.float64, **extra)
    theirs = cells[name][1](3, 4, dtype=torch.float64, **extra)
    theirs.load_state_dict(ours.state_dict())
    x = torch.randn(*(() if unbatched else (2,)), 3, dtype=torch.float64)
    h = torch.randn(*(() if unbatched else (2,)), 4, dtype=torch.float64)
    state = (h, h.cos()) if name == "lstm" else h
    for impl in ("fast", "reference"):
        ours.impl = impl
        for hx in (None, state):
            got, want = ours(x, hx), theirs(x, hx)
            torch.testing.assert_close(got, want)
            got, want = states_of(got), states_of(want)
            grads = [
                torch.autograd.grad(sum(t.sum() for t in o), list(m.parameters()))
                for o, m in ((got, ours), (want, theirs))
            ]
            torch.testing.assert_close(grads[0], grads[1])


def test_cell_without_bias_has_no_bias_parameters():
    cell = rn.GRUCell(3, 4, bias=False)
    assert cell.bias_ih is None and set(dict(cell.named_parameters())) == {"weight_ih", "weight_hh"}
    assert set(cell.state_dict()) == set(torch.nn.GRUCell(3, 4, bias=False).state_dict())


@pytest.mark.parametrize("arch", sorted(LAYERS_BY_ARCH))
def test_reference_impl_matches_fast_impl(arch):
    """Every layer picks its path the same way: ``impl`` as a constructor keyword or attribute."""
    torch.manual_seed(5)
    kwargs = {"num_layers": 2, "bidirectional": True, "batch_first": True, "dtype": torch.float64}
    fast = LAYERS_BY_ARCH[arch](3, 6, **kwargs)
    reference = LAYERS_BY_ARCH[arch](3, 6, impl="reference", **kwargs)
    reference.load_state_dict(fast.state_dict())
    assert (fast.impl, reference.impl) == ("fast", "reference")
    x = torch.randn(3, 5, 3, dtype=torch.float64)
    lengths = [5, 2, 4]
    results = []
    for layer, impl in ((fast, "fast"), (reference, "reference"), (fast, "reference")):
        layer.impl = impl
        out, final = layer(x, lengths=lengths)
        grads = torch.autograd.grad(
            out.sum() + sum(f.sum() for f in states_of(final)), list(layer.parameters())
        )
        results.append((out, states_of(final), grads))
    torch.testing.assert_close(results[0], results[1])
    torch.testing.assert_close(results[0], results[2])


@pytest.mark.parametrize("impl", ["fast", "reference"])
def test_dropout_between_layers_only_in_training(impl):
    torch.manual_seed(6)
    ours, theirs = pair("gru", input_size=3, hidden_size=8, num_layers=2, dropout=0.5)
    ours.impl = impl
    x = torch.randn(4, 2, 3, dtype=torch.float64)
    a, b = ours(x)[0], ours(x)[0]
    assert not torch.allclose(a, b)  # a fresh mask per call
    ours.eval()
    theirs.eval()
    torch.testing.assert_close(ours(x)[0], theirs(x)[0])
    single = LAYERS["gru"][0](3, 8, num_layers=1, dropout=0.5, dtype=torch.float64)
    single.impl = impl
    torch.testing.assert_close(single(x)[0], single(x)[0])  # no layer after the last one
