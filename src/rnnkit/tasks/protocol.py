"""What every loaded run offers, whichever task trained it (duck-typed; no need to inherit)."""

from __future__ import annotations

from typing import Any, Protocol, runtime_checkable

import torch


@runtime_checkable
class Predictor(Protocol):
    """A trained model ready for use.

    - ``task``: the task's registry name; ``config``: the run's saved config.json (a dict);
    - ``predict(inputs, ...)``: on the task's natural Python inputs (texts; audio arrays or
      paths; a data frame), returning plain Python or pandas results;
    - ``evaluate(data, ...) -> dict``: metrics on labelled data in the format the task trained
      on; its top-level numbers are what ``rnnkit evaluate`` prints;
    - ``module``: the ``torch.nn.Module`` (for export);
    - ``metrics``: the training report when the predictor came from ``train``;
    - optionally ``precision``: what it infers in and why (``rnnkit.tasks.precision``).
    """

    task: str
    config: dict[str, Any]
    metrics: dict[str, Any]

    def predict(self, inputs: Any, **options: Any) -> Any: ...

    def evaluate(self, data: Any, **options: Any) -> dict[str, Any]: ...

    @property
    def module(self) -> torch.nn.Module: ...
