"""One architecture registry: a name (``--arch``) -> the rnnkit.nn layer class that builds it.

Every model takes its recurrent layer from here, so a new recurrence is added once.
``rnn-relu`` is the Elman RNN with a ReLU (for the long-memory diagnostics); the tasks offer the
five ``ARCHS``.
"""

from __future__ import annotations

import functools
from collections.abc import Callable

from torch import nn

from rnnkit.errors import UserError
from rnnkit.nn.minrnn import MinGRU, MinLSTM
from rnnkit.nn.recurrent import GRU, LSTM, RNN

# name -> constructor with torch.nn.LSTM's signature (input_size, hidden_size, num_layers, ...)
LAYERS: dict[str, Callable[..., nn.Module]] = {
    "lstm": LSTM,
    "gru": GRU,
    "rnn": RNN,
    "rnn-relu": functools.partial(RNN, nonlinearity="relu"),
    "mingru": MinGRU,
    "minlstm": MinLSTM,
}
# what the applications offer as --arch
ARCHS: tuple[str, ...] = ("lstm", "gru", "rnn", "mingru", "minlstm")
GATED = ("lstm", "gru", "mingru", "minlstm")  # chrono init and forget_bias apply to these
NO_RECURRENT_WEIGHTS = ("mingru", "minlstm")  # orthogonal init has nothing to act on


def check_arch(arch: str, choices: tuple[str, ...] = ARCHS) -> str:
    """``arch`` if it is one of ``choices``; a ``UserError`` naming them otherwise."""
    if arch not in choices:
        raise UserError(f"arch must be one of {', '.join(choices)}, found {arch!r}.")
    return arch


def recurrent_layer(arch: str, input_size: int, hidden_size: int, num_layers: int = 1,
                    **options) -> nn.Module:
    """The layer ``arch`` with torch.nn's constructor arguments (``batch_first``,
    ``bidirectional``, ``dropout`` ...)."""
    check_arch(arch, tuple(LAYERS))
    return LAYERS[arch](input_size, hidden_size, num_layers, **options)
