"""Recurrent layers with torch.nn's constructor, parameter names and return values.

``RNN``, ``LSTM``, ``GRU`` and their cells load torch.nn state dicts and back; see
``rnnkit.nn.recurrent`` for the extras (lengths, step, init options).
"""

from rnnkit.nn import init
from rnnkit.nn.cells import GRUCell, LSTMCell, RNNCell
from rnnkit.nn.minrnn import MinGRU, MinLSTM
from rnnkit.nn.recurrent import GRU, LSTM, RNN
from rnnkit.nn.subword_embedding import SubwordEmbedding

__all__ = ["RNN", "LSTM", "GRU", "RNNCell", "LSTMCell", "GRUCell", "init", "MinGRU", "MinLSTM",
           "SubwordEmbedding"]
