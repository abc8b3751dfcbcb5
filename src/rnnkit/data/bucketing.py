"""Length-bucketed batches: sequences of similar length together, so little compute is padding.

Each epoch the examples are shuffled, cut into pools of ``pool`` batches, each pool sorted by
length and cut into batches, and the batches shuffled again: batches stay nearly uniform in
length, yet their make-up and order change every epoch. Everything is drawn from a generator
seeded by ``(seed, epoch)``, never the global random state, so an epoch is the same on resume.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch


class BucketBatchSampler:
    """Batches of indices into ``lengths``; each index appears exactly once per epoch."""

    def __init__(self, lengths: Sequence[int], batch_size: int, seed: int = 0, pool: int = 50,
                 bucket: bool = True, shuffle: bool = True):
        if batch_size < 1:
            raise ValueError(f"batch_size must be positive, got {batch_size}")
        self.lengths = torch.as_tensor(list(lengths), dtype=torch.long)
        self.batch_size = batch_size
        self.seed = seed
        self.pool = max(1, pool)
        self.bucket = bucket
        self.shuffle = shuffle

    def __len__(self) -> int:
        return -(-len(self.lengths) // self.batch_size)

    def batches(self, epoch: int = 0) -> list[list[int]]:
        n = len(self.lengths)
        g = torch.Generator().manual_seed(self.seed * 1_000_003 + epoch)
        order = torch.randperm(n, generator=g) if self.shuffle else torch.arange(n)
        if not self.bucket:
            return [order[i:i + self.batch_size].tolist() for i in range(0, n, self.batch_size)]
        out = []
        span = self.batch_size * self.pool
        for start in range(0, n, span):
            chunk = order[start:start + span]
            # stable sort: equal lengths keep their shuffled order
            chunk = chunk[torch.sort(self.lengths[chunk], stable=True).indices]
            out += [chunk[i:i + self.batch_size].tolist()
                    for i in range(0, len(chunk), self.batch_size)]
        if self.shuffle:
            out = [out[i] for i in torch.randperm(len(out), generator=g).tolist()]
        return out


def padding_fraction(lengths: Sequence[int], batches: list[list[int]]) -> float:
    """The share of positions in padded batches that are padding."""
    total = real = 0
    for batch in batches:
        lens = [lengths[i] for i in batch]
        total += max(lens) * len(lens)
        real += sum(lens)
    return 1.0 - real / total if total else 0.0
