"""Initialisation schemes: default, orthogonal, chrono, forget-gate bias, on layers and cells."""

import math

import pytest
import torch

import rnnkit.nn as rn
from rnnkit.nn import init


def test_default_matches_torch_range():
    layer = rn.LSTM(3, 16, 2)
    bound = 1 / math.sqrt(16)
    for p in layer.parameters():
        assert p.abs().max() <= bound and p.abs().max() > bound / 2


@pytest.mark.parametrize(
    "make",
    [
        lambda: rn.LSTM(3, 8, 2, bidirectional=True, init="orthogonal"),
        lambda: rn.GRU(3, 8, init="orthogonal"),
        lambda: rn.GRUCell(3, 8, init="orthogonal"),
    ],
)
def test_orthogonal_recurrent_blocks(make):
    layer = make()
    recurrent = [p for name, p in layer.named_parameters() if name.startswith("weight_hh")]
    assert recurrent
    for w in recurrent:
        for block in w.detach().chunk(w.shape[0] // 8, 0):
            torch.testing.assert_close(block @ block.T, torch.eye(8), atol=1e-5, rtol=0)
    for name, p in layer.named_parameters():
        if name.startswith("bias"):
            assert p.abs().max() == 0


def test_orthogonal_works_on_torch_nn_layers_too():
    layer = torch.nn.RNN(3, 6)
    init.orthogonal_(layer)
    w = layer.weight_hh_l0.detach()
    torch.testing.assert_close(w @ w.T, torch.eye(6), atol=1e-5, rtol=0)


def test_chrono_lstm_biases():
    t_max = 50
    layer = rn.LSTM(3, 64, 2, init="chrono", t_max=t_max)
    for k in range(2):
        b_ih, b_hh = (
            getattr(layer, f"bias_ih_l{k}").detach(),
            getattr(layer, f"bias_hh_l{k}").detach(),
        )
        forget, inp = b_ih[64:128], b_ih[:64]
        assert forget.min() >= 0 and forget.max() <= math.log(t_max - 1) + 1e-6
        torch.testing.assert_close(inp, -forget)
        assert b_hh[:128].abs().max() == 0
        # the characteristic forgetting time 1 + exp(b_f) spans [2, t_max]
        assert (1 + forget.exp()).max() > t_max / 2


def test_chrono_gru_sets_the_update_gate():
    torch.manual_seed(0)
    layer = rn.GRU(3, 32, init="chrono", t_max=20)
    z = (layer.bias_ih_l0 + layer.bias_hh_l0).detach()[32:64]
    assert z.min() >= 0 and z.max() <= math.log(19) + 1e-6 and z.std() > 0.1
    # z keeps the old state: at init a step mostly keeps it
    with torch.no_grad():
        h0 = torch.randn(1, 1, 32)
        _, h1 = layer(torch.zeros(1, 1, 3), h0)
    assert torch.nn.functional.cosine_similarity(h0.flatten(), h1.flatten(), dim=0) > 0.5


def test_forget_bias_splits_over_the_two_biases():
    layer = rn.LSTM(3, 4, 2, bidirectional=True, forget_bias=1.0)
    for name, p in layer.named_parameters():
        if name.startswith("bias_ih"):
            torch.testing.assert_close(p.detach()[4:8], torch.ones(4))
        if name.startswith("bias_hh"):
            assert p.detach()[4:8].abs().max() == 0
    cell = rn.LSTMCell(3, 4, forget_bias=2.0)
    torch.testing.assert_close((cell.bias_ih + cell.bias_hh).detach()[4:8], torch.full((4,), 2.0))


def test_forget_bias_wins_over_chrono():
    layer = rn.LSTM(3, 4, init="chrono", t_max=10, forget_bias=3.0)
    torch.testing.assert_close(layer.bias_ih_l0.detach()[4:8], torch.full((4,), 3.0))


def test_reset_parameters_reapplies_the_scheme():
    layer = rn.LSTM(3, 4, init="orthogonal", forget_bias=1.0)
    with torch.no_grad():
        for p in layer.parameters():
            p.fill_(7.0)
    layer.reset_parameters()
    torch.testing.assert_close(layer.bias_ih_l0.detach()[4:8], torch.ones(4))
    assert layer.bias_ih_l0.detach()[:4].abs().max() == 0
