"""Recurrent layers with torch.nn's constructor, parameter names and return values.

PLACEHOLDER until the core layers land: thin aliases of torch.nn so other parts can import.
"""

from torch.nn import GRU, LSTM, RNN, GRUCell, LSTMCell, RNNCell

__all__ = ["RNN", "LSTM", "GRU", "RNNCell", "LSTMCell", "GRUCell"]
