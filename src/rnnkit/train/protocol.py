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
        by the trainer; anything else is passed through untouched.
        """
        ...

    def training_step(
        self, model: torch.nn.Module, batch: Any, state: Any
    ) -> tuple[torch.Tensor, int, Any]:
        """``(mean loss, count of tokens or examples, new recurrent state or None)``.

        ``state`` is what the previous batch of the same epoch returned, detached by the trainer
        (tensors, or tuples/lists of them), and ``None`` at the start of each epoch: truncated
        backpropagation through time across consecutive windows.
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
