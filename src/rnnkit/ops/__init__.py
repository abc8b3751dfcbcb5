"""Pure recurrence functions on tensors, each fast version beside its plain-loop reference.

Every recurrence has the signature ``f(x, weights, initial_state=None, lengths=None, *, ...)
-> (outputs, final_state)`` with weights in torch.nn's ``_flat_weights`` order.
"""

from rnnkit.ops.gru import gru, gru_cell, naive_gru, naive_gru_cell
from rnnkit.ops.lstm import lstm, lstm_cell, naive_lstm, naive_lstm_cell
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
    "rnn",
    "rnn_cell",
    "naive_rnn",
    "naive_rnn_cell",
]
