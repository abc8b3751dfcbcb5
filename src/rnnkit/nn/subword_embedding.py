"""Word vectors that also know a word's spelling (fastText-style, Bojanowski et al. 2017).

A word's vector is its own row (if it has one) plus the sum of the vectors of its character
n-grams, hashed into a fixed number of buckets. Rare and unseen words then get a vector from
the parts they share with known words ("unfunny", "masterfully"), instead of one shared
unknown vector. Which buckets a word id has is told to the layer with ``add_words``; the bucket
lists are rebuilt from the vocabulary, so they are buffers outside the state dict.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import Tensor, nn


class SubwordEmbedding(nn.Module):
    """``forward(ids) -> (..., dim)``.

    Ids below ``num_words`` have a row of their own; higher ids (words too rare for a row, or
    seen only after training) use row ``unk_id``. Every id known to ``add_words`` adds its
    n-gram buckets' sum; an id with no buckets (padding) adds nothing.
    """

    def __init__(self, num_words: int, dim: int, buckets: int, padding_idx: int | None = 0,
                 unk_id: int = 1):
        super().__init__()
        if buckets < 1:
            raise ValueError(f"expected at least one bucket, found {buckets}")
        self.num_words, self.buckets, self.unk_id = num_words, buckets, unk_id
        self.embedding_dim = dim
        self.word = nn.Embedding(num_words, dim, padding_idx=padding_idx)
        self.grams = nn.EmbeddingBag(buckets, dim, mode="sum")
        # n-gram vectors start small: a word's first vector is mostly its own row
        nn.init.normal_(self.grams.weight, std=0.02)
        # id i's buckets are flat[start[i] : start[i] + count[i]]
        for name in ("flat", "start", "count"):
            self.register_buffer(name, torch.zeros(0, dtype=torch.long), persistent=False)

    @property
    def weight(self) -> Tensor:
        """The word rows (what pretrained vectors and language models fill in)."""
        return self.word.weight

    @property
    def indexed(self) -> int:
        """How many ids (0, 1, ...) have their n-gram buckets set."""
        return len(self.count)

    def add_words(self, grams: Sequence[Sequence[int]]) -> None:
        """Give the next ``len(grams)`` ids their n-gram buckets."""
        if not grams:
            return
        count = torch.tensor([len(g) for g in grams], dtype=torch.long, device=self.count.device)
        flat = torch.tensor([b for g in grams for b in g], dtype=torch.long,
                            device=self.flat.device)
        if len(flat) and (flat.min() < 0 or flat.max() >= self.buckets):
            raise ValueError(f"expected bucket ids in [0, {self.buckets})")
        self.start = torch.cat([self.start, len(self.flat) + torch.cumsum(count, 0) - count])
        self.flat = torch.cat([self.flat, flat])
        self.count = torch.cat([self.count, count])

    def forward(self, ids: Tensor) -> Tensor:
        if ids.numel() and int(ids.max()) >= self.indexed:
            raise ValueError(f"id {int(ids.max())} has no n-gram buckets; only ids below "
                             f"{self.indexed} were added with add_words")
        rows = torch.where(ids < self.num_words, ids, torch.full_like(ids, self.unk_id))
        words = self.word(rows)
        # each distinct id's buckets once, as one bag per id
        unique, inverse = ids.unique(return_inverse=True)
        count, start = self.count[unique], self.start[unique]
        offsets = torch.cumsum(count, 0) - count
        index = torch.repeat_interleave(start - offsets, count) + \
            torch.arange(int(count.sum()), device=ids.device)
        grams = self.grams(self.flat[index], offsets)
        return words + grams[inverse]

    def extra_repr(self) -> str:
        return f"{self.num_words}, {self.embedding_dim}, buckets={self.buckets}"
