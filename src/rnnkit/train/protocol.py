"""What a task supplies to the trainer; the trainer knows models only through this."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any, Protocol, runtime_checkable

import torch


@runtime_checkable
class TrainTask(Protocol):
    """A task: its batches, its loss and its metrics (duck-typed; no need to inherit)."""

    def train_batches(self, epoch: int) -> Iterable[Any]:
        """The training batches of ``epoch``, the same ones in the same order for a given seed and
        epoch: on resume the trainer skips the first k batches of the interrupted epoch.

        Batches made of tensors (alone or in tuples, lists, dicts) are moved to the model's device
        by the trainer; anything else is passed through untouched. Under torchrun every rank
        builds the same batches and takes its share of the rows: dim 0 of each tensor whose first
        dimension is the batch's (``rnnkit.train.distributed``), so ``batch_size`` is the whole
        batch over all processes.
        """
        ...

    def training_step(
        self, model: torch.nn.Module, batch: Any, state: Any
    ) -> tuple[torch.Tensor, int, Any]:
        """``(mean loss, count of tokens or examples, new recurrent state or None)``.

        ``state`` is what the previous batch of the same epoch returned, detached by the trainer
        (tensors, or tuples/lists of them), and ``None`` at the start of each epoch: truncated
        backpropagation through time across consecutive windows. State tensors are
        ``(layers * directions, batch, hidden)``: under torchrun a rank carries the rows it owns.
        """
        ...

    def evaluate(self, model: torch.nn.Module) -> dict[str, float]:
        """Validation metrics such as ``{"val_loss": 1.52, "val_bpc": 2.19}``; called under
        ``torch.no_grad()`` with ``model.eval()``. The task moves its data to the model's device.
        """
        ...

    def checkpoint_config(self) -> dict[str, Any]:
        """JSON-able description that rebuilds the model for inference, e.g.
        ``{"task": "textgen", "model": {...}, "tokenizer": {...}}``; saved in config.json.
        """
        ...
