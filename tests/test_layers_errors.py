"""Bad input raises ValueError with one sentence naming what was expected and what was found."""

import pytest
import torch

import rnnkit.nn as rn
from rnnkit import ops
from rnnkit.nn.registry import LAYERS


@pytest.fixture(params=["fast", "reference"])
def lstm(request):
    layer = rn.LSTM(3, 4, num_layers=2)
    layer.impl = request.param
    return layer


def one_sentence(exc: pytest.ExceptionInfo) -> str:
    message = str(exc.value)
    assert "\n" not in message and message.startswith("expected") and "found" in message
    return message


@pytest.mark.parametrize(
    ("shape", "pattern"),
    [
        ((5, 3), None),  # unbatched is fine
        ((2, 5, 2, 3), r"rank 3 \(seq_len, batch, features\), found shape \(2, 5, 2, 3\)"),
        ((5, 2, 7), "3 features in its last dimension, found 7"),
        ((0, 2, 3), "at least one time step"),
    ],
)
def test_input_shape(lstm, shape, pattern):
    if pattern is None:
        assert lstm(torch.randn(shape))[0].shape == (5, 4)
        return
    with pytest.raises(ValueError, match=pattern) as exc:
        lstm(torch.randn(shape))
    one_sentence(exc)


def test_state_shapes(lstm):
    x = torch.randn(5, 2, 3)
    good = torch.zeros(2, 2, 4)
    cases = [
        (torch.zeros(2, 2, 4), "tuple"),
        ((torch.zeros(1, 2, 4), good), r"hidden state of shape \(2, 2, 4\), found \(1, 2, 4\)"),
        ((good, torch.zeros(2, 3, 4)), r"cell state of shape \(2, 2, 4\), found \(2, 3, 4\)"),
    ]
    for state, pattern in cases:
        with pytest.raises(ValueError, match=pattern) as exc:
            lstm(x, state)
        one_sentence(exc)
    with pytest.raises(ValueError, match="one tensor") as exc:
        rn.GRU(3, 4)(x, (good, good))
    one_sentence(exc)


@pytest.mark.parametrize(
    ("lengths", "pattern"),
    [
        ([5, 0], r"between 1 and the sequence length 5, found \[5, 0\]"),
        ([6, 2], r"between 1 and the sequence length 5, found \[6, 2\]"),
        ([5, 2, 1], r"one length per sequence \(2\), found lengths of shape \(3\)"),
        (torch.tensor([5.0, 2.0]), "integer lengths, found dtype torch.float32"),
    ],
)
def test_lengths(lstm, lengths, pattern):
    with pytest.raises(ValueError, match=pattern) as exc:
        lstm(torch.randn(5, 2, 3), lengths=lengths)
    one_sentence(exc)


def test_lengths_on_another_device_are_rejected():
    """Lengths may be on the cpu or the input's device; "meta" stands in for a GPU here."""
    with pytest.raises(
        ValueError, match="on the cpu or on the input's device cpu, found them on meta"
    ) as exc:
        ops.lstm(
            torch.randn(5, 2, 3),
            rn.LSTM(3, 4)._flat_weights,
            lengths=torch.tensor([5, 2], device="meta"),
        )
    one_sentence(exc)


def test_cpu_lengths_are_accepted_as_list_or_tensor(lstm):
    x = torch.randn(5, 2, 3)
    a = lstm(x, lengths=[5, 2])[0]
    b = lstm(x, lengths=torch.tensor([5, 2], dtype=torch.int32))[0]
    torch.testing.assert_close(a, b)
    assert a[2:, 1].abs().max() == 0


def test_lengths_with_unbatched_or_packed_input():
    layer = rn.GRU(3, 4)
    with pytest.raises(ValueError, match="unbatched"):
        layer(torch.randn(5, 3), lengths=[5])
    packed = torch.nn.utils.rnn.pack_padded_sequence(torch.randn(5, 2, 3), [5, 2])
    with pytest.raises(ValueError, match="PackedSequence"):
        layer(packed, lengths=[5, 2])
    with pytest.raises(ValueError, match=r"packed data of shape \(total, 4\), found \(7, 3\)"):
        rn.GRU(4, 4)(packed)


@pytest.mark.parametrize(
    ("make", "pattern"),
    [
        (lambda: rn.LSTM(3, 4, proj_size=4), "proj_size smaller than hidden_size 4, found 4"),
        (lambda: rn.GRU(3, 0), "hidden_size to be an integer >= 1, found 0"),
        (lambda: rn.RNN(3, 4, nonlinearity="sigmoid"), "'tanh' or 'relu', found 'sigmoid'"),
        (lambda: rn.LSTM(3, 4, dropout=1.5), "dropout between 0 and 1, found 1.5"),
        (lambda: rn.LSTM(3, 4, init="xavier"), "init to be one of default, orthogonal, chrono"),
        (lambda: rn.LSTM(3, 4, init="chrono"), "t_max"),
        (lambda: rn.LSTM(3, 4, t_max=10), "t_max only with init='chrono'"),
        (lambda: rn.RNN(3, 4, forget_bias=1.0), "gated layer"),
        (lambda: rn.LSTM(3, 4, bias=False, forget_bias=1.0), "bias=False"),
    ],
)
def test_constructor_arguments(make, pattern):
    with pytest.raises(ValueError, match=pattern) as exc:
        make()
    one_sentence(exc)


def test_cells():
    with pytest.raises(ValueError, match=r"input of shape \(batch, 3\) or \(3,\), found \(2, 4\)"):
        rn.GRUCell(3, 4)(torch.randn(2, 4))
    with pytest.raises(ValueError, match=r"state of shape \(2, 4\), found \(2, 5\)"):
        rn.RNNCell(3, 4)(torch.randn(2, 3), torch.randn(2, 5))
    with pytest.raises(ValueError, match=r"tuple \(h, c\)"):
        rn.LSTMCell(3, 4)(torch.randn(2, 3), torch.randn(2, 4))


@pytest.mark.parametrize("arch", sorted(LAYERS))
def test_unknown_impl(arch):
    with pytest.raises(ValueError, match="impl to be one of fast, reference, found 'cuda'"):
        LAYERS[arch](3, 4, impl="cuda")
    layer = LAYERS[arch](3, 4)
    layer.impl = "cuda"
    with pytest.raises(ValueError, match="impl to be one of fast, reference, found 'cuda'"):
        layer(torch.randn(2, 1, 3))
