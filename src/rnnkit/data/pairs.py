"""Sentence pairs as subword ids, and their batches, for an encoder-decoder.

``Vocabularies`` holds the source and target subword tokenizers (one object when the vocabulary
is joint); ``encode_pairs`` turns ``ParallelText`` into id tensors (the target followed by the
end token); ``make_batch`` pads a batch and shifts the target into decoder inputs and outputs.
Padding is id 0 everywhere.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass

import torch

from rnnkit.data.padding import pad_batch
from rnnkit.data.parallel import ParallelText, filter_long
from rnnkit.data.subword import SubwordTokenizer
from rnnkit.errors import UserError


class Vocabularies:
    """The source and target tokenizers (the same object when the vocabulary is joint)."""

    def __init__(self, src: SubwordTokenizer, tgt: SubwordTokenizer):
        self.src, self.tgt = src, tgt

    @classmethod
    def train(cls, data: ParallelText, kind: str = "bpe", vocab_size: int = 8000,
              joint: bool = True) -> Vocabularies:
        """Subword vocabularies of ``kind`` learnt from the pairs: one for both sides, or one
        per side."""
        if joint:
            shared = SubwordTokenizer.train(data.src + data.tgt, kind, vocab_size)
            return cls(shared, shared)
        return cls(SubwordTokenizer.train(data.src, kind, vocab_size),
                   SubwordTokenizer.train(data.tgt, kind, vocab_size))

    def to_dict(self) -> dict:
        if self.src is self.tgt:
            return {"joint": self.src.to_dict()}
        return {"src": self.src.to_dict(), "tgt": self.tgt.to_dict()}

    @classmethod
    def from_dict(cls, d: dict) -> Vocabularies:
        if "joint" in d:
            shared = SubwordTokenizer.from_dict(d["joint"])
            return cls(shared, shared)
        return cls(SubwordTokenizer.from_dict(d["src"]), SubwordTokenizer.from_dict(d["tgt"]))


@dataclass
class EncodedPairs:
    src: list[torch.Tensor]  # subword ids, no start or end token
    tgt: list[torch.Tensor]  # subword ids followed by the end token
    text: ParallelText


def encode_pairs(data: ParallelText, vocab: Vocabularies, max_len: int | None = None
                 ) -> EncodedPairs:
    """Subword ids of both sides; with ``max_len``, longer pairs are left out (and counted)."""
    src = vocab.src.encode_batch(data.src)
    tgt = vocab.tgt.encode_batch(data.tgt)
    if max_len is not None:
        data, keep = filter_long(data, [len(s) for s in src], [len(t) for t in tgt], max_len)
        src, tgt = [src[i] for i in keep], [tgt[i] for i in keep]
        if not src:
            raise UserError(f"every sentence pair in {data.source} is longer than max_len "
                            f"{max_len} subwords; raise --max-len")
    eos = vocab.tgt.eos_id
    return EncodedPairs([torch.tensor(s or [vocab.src.unk_id], dtype=torch.long) for s in src],
                        [torch.tensor([*t, eos], dtype=torch.long) for t in tgt], data)


def make_batch(src: Sequence[torch.Tensor], tgt: Sequence[torch.Tensor], bos_id: int
               ) -> tuple[torch.Tensor, ...]:
    """``(src, src_lengths, tgt_in, tgt_out)``: tgt_in starts with the start token, tgt_out is
    the same shifted by one and ends with the end token; padding is 0."""
    src_ids, src_len = pad_batch(src)
    tgt_out, _ = pad_batch(tgt)
    bos = torch.full((len(tgt), 1), bos_id, dtype=torch.long)
    tgt_in = torch.cat([bos, tgt_out[:, :-1]], dim=1)
    return src_ids, src_len, tgt_in, tgt_out


def batches_by_length(seqs: Sequence[torch.Tensor], batch_size: int) -> Iterator[list[int]]:
    """Indices of ``seqs`` in batches of similar length (shortest first), for evaluation, where
    padding is wasted work and the order does not matter."""
    order = sorted(range(len(seqs)), key=lambda i: len(seqs[i]))
    for start in range(0, len(order), batch_size):
        yield order[start:start + batch_size]
