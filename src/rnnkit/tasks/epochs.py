"""One epoch of a task that draws its batches from a ``BucketBatchSampler``."""

from __future__ import annotations

from typing import Any


class SamplerEpoch:
    """One epoch's batches, with a length so the trainer can plan its schedule.

    ``task`` has a ``sampler`` (``rnnkit.data.bucketing.BucketBatchSampler``) and
    ``collate(indices)``, which makes the batch of those examples.
    """

    def __init__(self, task: Any, epoch: int):
        self.task, self.epoch = task, epoch

    def __len__(self) -> int:
        return len(self.task.sampler)

    def __iter__(self):
        for indices in self.task.sampler.batches(self.epoch):
            yield self.task.collate(indices)
