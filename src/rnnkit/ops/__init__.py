"""Pure recurrence functions on tensors, each fast version beside its plain-loop reference.

Every recurrence has the signature ``f(x, weights, initial_state=None, lengths=None, *, ...)
-> (outputs, final_state)`` with weights in torch.nn's ``_flat_weights`` order (minGRU and
minLSTM: ``w_ih, [b_ih]`` per layer and direction).
"""

from rnnkit.ops.gru import gru, gru_cell, naive_gru, naive_gru_cell
from rnnkit.ops.lstm import lstm, lstm_cell, naive_lstm, naive_lstm_cell
from rnnkit.ops.mingru import mingru, mingru_cell, naive_mingru
from rnnkit.ops.minlstm import minlstm, minlstm_cell, naive_minlstm
from rnnkit.ops.rnn import naive_rnn, naive_rnn_cell, rnn, rnn_cell

__all__ = [
    "gru",
    "gru_cell",
    "naive_gru",
    "naive_gru_cell",
    "lstm",
    "lstm_cell",
    "naive_lstm",
    "naive_lstm_cell",
    "mingru",
    "mingru_cell",
    "naive_mingru",
    "minlstm",
    "minlstm_cell",
    "naive_minlstm",
    "rnn",
    "rnn_cell",
    "naive_rnn",
    "naive_rnn_cell",
]
