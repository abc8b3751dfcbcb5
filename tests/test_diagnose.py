"""The vanishing-gradient diagnostic, the adding problem and their commands."""

import csv

import numpy as np
import pytest
import torch

from rnnkit.cli import run
from rnnkit.errors import UserError
from rnnkit.models.sequence_regressor import SequenceRegressor, SequenceRegressorConfig
from rnnkit.nn import registry
from rnnkit.tasks.gradient_decay import (
    GradientDecay,
    format_table,
    gradient_norms_by_lag,
    vanishing_lag,
)
from rnnkit.tasks.memory_tasks import (
    ADDING_BASELINE_MSE,
    AddingTask,
    CopyTask,
    MemoryTaskConfig,
    adding_batch,
    copy_batch,
    seeded_generator,
)


def regressor(arch, hidden, **kw):
    torch.manual_seed(0)
    return SequenceRegressor(SequenceRegressorConfig(arch=arch, hidden_size=hidden, **kw))


def manual_bptt_input_grads(model, x, y):
    """dL_b/dx_{b,t} of a one-layer tanh RNN by hand: delta_t = (1 - h_t^2) * g_t, g_T from the
    head, g_{t-1} = W_hh^T delta_t, dL/dx_t = W_ih^T delta_t."""
    rnn, head = model.rnn, model.head
    w_ih, w_hh = rnn.weight_ih_l0.double(), rnn.weight_hh_l0.double()
    b = rnn.bias_ih_l0.double() + rnn.bias_hh_l0.double()
    x = x.double()
    batch, length, _ = x.shape
    h = torch.zeros(batch, rnn.hidden_size, dtype=torch.float64)
    hs = []
    for t in range(length):
        h = torch.tanh(x[:, t] @ w_ih.T + h @ w_hh.T + b)
        hs.append(h)
    pred = h @ head.weight.double().T + head.bias.double()
    g = 2 * (pred - y.double()[:, None]) @ head.weight.double()
    grads = torch.zeros_like(x)
    for t in reversed(range(length)):
        delta = (1 - hs[t] ** 2) * g
        grads[:, t] = delta @ w_ih
        g = delta @ w_hh
    return grads


def test_gradient_norms_match_a_hand_written_backward_pass():
    model = regressor("rnn", 5)
    x, y = adding_batch(4, 9, seeded_generator(1, 0))
    norms = gradient_norms_by_lag(model, x, y)
    assert norms.shape == (9,) and norms.dtype == torch.float64
    expected = manual_bptt_input_grads(model, x, y).norm(dim=-1).mean(dim=0).flip(0)
    torch.testing.assert_close(norms, expected, rtol=1e-9, atol=1e-12)
    # and with autograd on each sample alone
    model.double()
    for lag in (0, 4, 8):
        per_sample = []
        for i in range(4):
            xi = x[i : i + 1].double().requires_grad_(True)
            loss = (model(xi).squeeze() - y[i].double()) ** 2
            per_sample.append(torch.autograd.grad(loss, xi)[0][0, 8 - lag].norm())
        assert norms[lag].item() == pytest.approx(torch.stack(per_sample).mean().item(), rel=1e-9)


def test_lstm_with_forget_bias_keeps_gradient_that_a_small_weight_rnn_loses():
    x, y = adding_batch(8, 60, seeded_generator(2, 0))
    rnn = regressor("rnn", 16)
    with torch.no_grad():  # recurrent Jacobian norm <= 0.5 per step
        torch.nn.init.orthogonal_(rnn.rnn.weight_hh_l0)
        rnn.rnn.weight_hh_l0.mul_(0.5)
    lstm = regressor("lstm", 16, forget_bias=5.0)
    r = gradient_norms_by_lag(rnn, x, y)
    r = r / r[0]
    s = gradient_norms_by_lag(lstm, x, y)
    s = s / s[0]
    assert r[40] < 0.5**40 * 10  # the tanh RNN's signal halves (at least) every step
    assert r[0] > r[10] > r[40]
    assert s[40] > 1e-3  # the forget gate at sigmoid(5) = 0.993 lets it through
    assert s[40] / r[40] > 1e6


def test_chrono_and_forget_bias_reach_gated_layers_only():
    lstm = regressor("lstm", 8, forget_bias=3.0)
    assert torch.all(lstm.rnn.bias_ih_l0[8:16] == 3.0)
    gru = regressor("gru", 8, init="chrono", t_max=50)
    z_bias = gru.rnn.bias_ih_l0[8:16]
    assert torch.all((z_bias >= 0) & (z_bias <= np.log(49) + 1e-6))
    # an init that does not apply to an arch leaves it at the default, so one setting runs them all
    torch.manual_seed(0)
    plain = torch.nn.RNN(2, 8, batch_first=True)
    rnn = regressor("rnn", 8, init="chrono", t_max=50, forget_bias=1.0)
    torch.testing.assert_close(rnn.rnn.weight_hh_l0, plain.weight_hh_l0)
    regressor("mingru", 8, init="orthogonal")


def test_vanishing_lag_and_table():
    decay = GradientDecay(length=30, steps=0, norms={("rnn", "init"): 2 * 0.5 ** np.arange(30.0)})
    rel = decay.relative("rnn", "init")
    assert rel[0] == 1.0
    assert vanishing_lag(rel) == 20  # 0.5**19 = 1.9e-6, 0.5**20 = 9.5e-7
    assert vanishing_lag(np.ones(5)) is None
    table = format_table(decay)
    assert "lag 20" in table and "lag 29" in table and "1.9e-09" in table  # 0.5**29


def test_adding_data_statistics():
    x, y = adding_batch(20000, 50, seeded_generator(0, 0))
    values, markers = x[..., 0], x[..., 1]
    assert x.shape == (20000, 50, 2)
    assert torch.all(markers.sum(1) == 2)
    assert torch.all(markers[:, :25].sum(1) == 1) and torch.all(markers[:, 25:].sum(1) == 1)
    torch.testing.assert_close(y, (values * markers).sum(1))
    assert values.min() >= 0 and values.max() <= 1
    baseline = ((y - 1) ** 2).mean().item()
    assert baseline == pytest.approx(ADDING_BASELINE_MSE, abs=0.006)


def test_adding_task_batches_are_fixed_per_epoch():
    task = AddingTask(MemoryTaskConfig(length=10, batch_size=3, steps_per_epoch=2),
                      AddingTask.model_config("lstm", 4, 10))
    a, b, c = list(task.train_batches(0)), list(task.train_batches(0)), list(task.train_batches(1))
    assert len(a) == 2
    assert torch.equal(a[1][0], b[1][0]) and not torch.equal(a[1][0], c[1][0])
    model = task.build_model()
    loss, count, state = task.training_step(model, a[0], None)
    assert loss.ndim == 0 and count == 3 and state is None
    assert set(task.evaluate(model)) >= {"val_loss", "val_mse"}
    assert task.checkpoint_config()["model"]["arch"] == "lstm"


def test_copy_data_and_its_baseline():
    x, y = copy_batch(500, 7, seeded_generator(0, 0))
    ids = x.argmax(-1)
    assert x.shape == (500, 27, 10) and torch.all(x.sum(-1) == 1)
    assert torch.all((ids[:, :10] >= 1) & (ids[:, :10] <= 8))
    assert torch.all(ids[:, 16] == 9) and (ids == 9).sum() == 500
    assert torch.all(ids[:, 10:16] == 0) and torch.all(ids[:, 17:] == 0)
    assert torch.all(y[:, :17] == 0) and torch.equal(y[:, 17:], ids[:, :10])
    # blanks for 17 steps, then uniform over the 8 symbols: the task's baseline loss
    task = CopyTask(MemoryTaskConfig(length=7, test_size=500), CopyTask.model_config("gru", 4, 7))
    blind = torch.full((500, 27, 9), -1e4)
    blind[:, :17, 0] = 0
    blind[:, 17:, 1:] = 0
    assert task.loss(blind, y).item() == pytest.approx(task.baseline(), rel=1e-6)
    assert task.baseline() == pytest.approx(10 * np.log(8) / 27)
    perfect = torch.nn.functional.one_hot(y, 9).float() * 1e4
    assert task.extra_metrics(perfect, y)["val_recall_accuracy"] == 1.0


def test_gradients_command_writes_csv_and_png(tmp_path, capsys):
    out = tmp_path / "diag"
    args = ["diagnose", "gradients", "--arch", "rnn,gru", "--length", "12", "--steps", "2",
            "--hidden", "4", "--out", str(out)]
    assert run(args) == 0
    printed = capsys.readouterr().out
    assert "lag 11" in printed and "trained" in printed
    with open(out / "gradient_decay.csv") as f:
        rows = list(csv.DictReader(f))
    assert list(rows[0]) == ["arch", "phase", "lag", "grad_norm"]
    assert len(rows) == 2 * 2 * 12
    assert {(r["arch"], r["phase"]) for r in rows} == {
        (a, p) for a in ("rnn", "gru") for p in ("init", "trained")}
    assert all(float(r["grad_norm"]) >= 0 for r in rows)
    assert (out / "gradient_decay.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert run(args + ["--quiet"]) == 0  # a rerun into the same directory works


def test_adding_command_reports_against_the_baseline(tmp_path, capsys):
    out = tmp_path / "adding"
    assert run(["diagnose", "adding", "--arch", "rnn,lstm", "--length", "8", "--steps", "3",
                "--hidden", "4", "--out", str(out), "--quiet"]) == 0
    printed = capsys.readouterr().out
    assert "0.167" in printed and "rule: solved when test MSE < 0.1 x baseline" in printed
    assert (out / "adding_results.csv").read_text().count("\n") == 3
    assert (out / "adding_lstm_metrics.csv").exists()
    assert run(["diagnose", "copy", "--arch", "gru", "--delay", "3", "--steps", "2",
                "--hidden", "4", "--out", str(out), "--quiet"]) == 0
    assert "recall accuracy" in capsys.readouterr().out


@pytest.mark.parametrize("args, words", [
    (["--arch", "rnn,transformer"],
     "arch must be one of lstm, gru, rnn, rnn-relu, mingru, minlstm, found 'transformer'"),
    (["--length", "1"], "--length must be at least 2"),
    (["--init", "xavier"], "unknown init 'xavier'"),
    (["--clip", "-1"], "--clip"),
    (["--arch", ","], "--arch expected"),
])
def test_bad_input_is_one_sentence_and_exit_2(tmp_path, capsys, args, words):
    for command in ("gradients", "adding", "copy"):
        if command == "copy" and "--length" in args:
            args = ["--delay", "0"]
            words = "--delay must be at least 1"
        code = run(["diagnose", command, "--out", str(tmp_path), "--steps", "1", *args])
        err = capsys.readouterr().err
        assert code == 2, err
        assert err.startswith("error: ") and words in err and "Traceback" not in err
        assert len(err.strip().splitlines()) == 1


def test_unwritable_out_and_missing_layer_are_user_errors(tmp_path, capsys, monkeypatch):
    blocker = tmp_path / "file"
    blocker.write_text("x")
    assert run(["diagnose", "gradients", "--arch", "rnn", "--out", str(blocker / "sub")]) == 2
    assert "cannot write to the output directory" in capsys.readouterr().err
    # The archs are the registry's: one taken out of it is refused before any work.
    monkeypatch.delitem(registry.LAYERS, "mingru")
    assert run(["diagnose", "gradients", "--arch", "rnn,mingru", "--length", "5",
                "--out", str(tmp_path / "o")]) == 2
    assert "found 'mingru'" in capsys.readouterr().err
    assert not (tmp_path / "o").exists()
    with pytest.raises(UserError, match="at least 2"):
        adding_batch(2, 1, seeded_generator(0, 0))
