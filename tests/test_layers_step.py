"""step() through a sequence gives forward's outputs and states, on every path."""

import copy

import pytest
import torch

import rnnkit.nn as rn

LAYERS = {
    "lstm": lambda **kw: rn.LSTM(**kw),
    "lstm_proj": lambda **kw: rn.LSTM(**kw, proj_size=3),
    "gru": lambda **kw: rn.GRU(**kw),
    "rnn_tanh": lambda **kw: rn.RNN(**kw),
    "rnn_relu": lambda **kw: rn.RNN(**kw, nonlinearity="relu"),
}


pytestmark = pytest.mark.usefixtures("one_thread")


def step_through(layer, x, state, batch_first):
    ys = []
    for t in range(x.shape[1 if batch_first else 0]):
        y, state = layer.step(x[:, t] if batch_first else x[t], state)
        ys.append(y)
    return torch.stack(ys, 1 if batch_first else 0), state


def as_tuple(state):
    return state if isinstance(state, tuple) else (state,)


@pytest.mark.parametrize("name", sorted(LAYERS))
@pytest.mark.parametrize("mode", ["no_grad", "inference", "autograd", "reference"])
@pytest.mark.parametrize("batch_first", [False, True])
def test_step_equals_forward(name, mode, batch_first):
    torch.manual_seed(0)
    layer = LAYERS[name](
        input_size=4, hidden_size=6, num_layers=2, batch_first=batch_first, dtype=torch.float64
    )
    layer.impl = "reference" if mode == "reference" else "fast"
    x = torch.randn(*((3, 5) if batch_first else (5, 3)), 4, dtype=torch.float64)
    want_out, want_state = layer(x)
    for start in (None, want_state):
        if start is not None:  # continue from a state: compare with forward from that state
            want_out, want_state = layer(x, start)
        context = {"no_grad": torch.no_grad, "inference": torch.inference_mode}.get(
            mode, torch.enable_grad
        )
        with context():
            out, state = step_through(layer, x, start, batch_first)
        torch.testing.assert_close(out, want_out)
        torch.testing.assert_close(as_tuple(state), as_tuple(want_state))
        assert out.requires_grad == (mode in ("autograd", "reference"))


def test_fast_step_follows_parameter_updates():
    layer = rn.LSTM(3, 5, 2)
    x = torch.randn(2, 3)
    with torch.no_grad():
        first, _ = layer.step(x)
        for p in layer.parameters():
            p.mul_(0.5)  # in place: the cached fused weights must be rebuilt
        second, _ = layer.step(x)
        want, _ = layer(x.unsqueeze(0))
    assert not torch.allclose(first, second)
    torch.testing.assert_close(second, want[0])
    layer.load_state_dict(rn.LSTM(3, 5, 2).state_dict())
    with torch.no_grad():
        torch.testing.assert_close(layer.step(x)[0], layer(x.unsqueeze(0))[0][0])


def test_a_stepped_layer_can_still_be_copied_and_saved(tmp_path):
    layer = rn.LSTM(3, 5, 2).to(torch.bfloat16)
    with torch.no_grad():
        layer.step(torch.randn(1, 3, dtype=torch.bfloat16))
    twin = copy.deepcopy(layer)
    torch.save(layer, tmp_path / "layer.pt")
    x = torch.randn(1, 3, dtype=torch.bfloat16)
    with torch.no_grad():
        torch.testing.assert_close(twin.step(x)[0], layer.step(x)[0])


@pytest.mark.parametrize("proj_size", [0, 2])
def test_step_of_a_layer_built_in_inference_mode(proj_size):
    with torch.inference_mode():  # its parameters are inference tensors (no version counter)
        layer = rn.LSTM(3, 5, 2, proj_size=proj_size)
        x = torch.randn(4, 2, 3)
        out, state = step_through(layer, x, None, False)
        want_out, want_state = layer(x)
    torch.testing.assert_close(out, want_out)
    torch.testing.assert_close(state, want_state)


def test_fast_step_does_not_change_the_given_state():
    layer = rn.LSTM(3, 5, 1)
    state = (torch.randn(1, 2, 5), torch.randn(1, 2, 5))
    saved = tuple(s.clone() for s in state)
    with torch.no_grad():
        layer.step(torch.randn(2, 3), state)
    torch.testing.assert_close(state, saved)


def test_step_in_bfloat16_tracks_float32():
    torch.manual_seed(1)
    layer = rn.LSTM(8, 16, 2)
    low = rn.LSTM(8, 16, 2).to(torch.bfloat16)
    low.load_state_dict(layer.state_dict())
    x = torch.randn(6, 1, 8)
    with torch.no_grad():
        want, _ = step_through(layer, x, None, False)
        got, (h, c) = step_through(low, x.bfloat16(), None, False)
    assert got.dtype == h.dtype == torch.bfloat16
    torch.testing.assert_close(got.float(), want, atol=0.05, rtol=0.05)


def test_step_rejects_bidirectional_layers_and_bad_steps():
    with pytest.raises(ValueError, match="unidirectional"):
        rn.GRU(3, 4, bidirectional=True).step(torch.randn(2, 3))
    with pytest.raises(
        ValueError, match=r"expected one time step of shape \(batch, 3\), found \(2, 1, 3\)"
    ):
        rn.GRU(3, 4).step(torch.randn(2, 1, 3))
    with torch.no_grad(), pytest.raises(ValueError, match="expected hidden state of shape"):
        rn.LSTM(3, 4).step(torch.randn(2, 3), (torch.zeros(1, 3, 4), torch.zeros(1, 3, 4)))
    with torch.no_grad(), pytest.raises(ValueError, match="dtype"):
        rn.LSTM(3, 4).step(torch.randn(2, 3, dtype=torch.float64))
