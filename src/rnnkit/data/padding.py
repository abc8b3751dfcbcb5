"""One padded batch from sequences of different lengths, for every task."""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch.nn.utils.rnn import pad_sequence


def pad_batch(seqs: Sequence[torch.Tensor], value: int | float | None = 0
              ) -> tuple[torch.Tensor, torch.Tensor]:
    """``(padded (batch, longest, ...), lengths (batch,))`` of tensors whose first dimension is
    time; padding holds ``value`` (0 when None: a model that reads real ids there masks them)."""
    lengths = torch.tensor([len(s) for s in seqs], dtype=torch.long)
    return pad_sequence(list(seqs), batch_first=True, padding_value=value or 0), lengths
