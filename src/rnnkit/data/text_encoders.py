"""Texts -> token ids for classifiers: words with a vocabulary, or a subword tokenizer's ids; and
the padded batches the models read.

A ``WordEncoder`` splits words with a ``WordTokenizer`` and looks them up in a ``Vocab``; a
``SubwordEncoder`` wraps an ``rnnkit.data.tokenizers`` tokenizer (BPE trained on the data, or a
text-generation run's char, byte or BPE one). Both save themselves as a JSON dict
(``to_dict`` / ``encoder_from_dict``), which is the ``tokenizer`` entry of a run's config.
"""

from __future__ import annotations

import sys
from collections.abc import Sequence
from typing import TYPE_CHECKING

from rnnkit.data.vocab import Vocab, WordTokenizer
from rnnkit.errors import UserError

if TYPE_CHECKING:
    import torch


class WordEncoder:
    """Text -> word ids with a ``WordTokenizer`` and a ``Vocab``.

    ``rows``: the first ``rows`` ids have a vector of their own (the default: all). An ``open``
    encoder (subword-aware vectors) gives every new word it meets an id of its own instead of
    ``<unk>``, so the model can build its vector from its spelling; only the training words
    (``known``) are saved.
    """

    pad_id: int | None = Vocab.pad_id

    def __init__(self, tokenizer: WordTokenizer, vocab: Vocab, rows: int | None = None,
                 open: bool = False):
        self.tokenizer, self.vocab = tokenizer, vocab
        self.rows = len(vocab) if rows is None else rows
        self.open, self.known = open, len(vocab)

    def tokens(self, text: str) -> list[str]:
        return self.tokenizer(text)

    def encode(self, text: str) -> list[int]:
        if self.open:
            return [self.vocab.add(t) for t in self.tokens(text)]
        return self.vocab.encode(self.tokens(text))

    @property
    def vocab_size(self) -> int:
        return self.rows

    def to_dict(self) -> dict:
        return {"kind": "word", **self.tokenizer.to_dict(), "tokens": self.vocab.tokens[:self.known],
                "rows": self.rows, "open": self.open}


class SubwordEncoder:
    """Text -> ids with an ``rnnkit.data.tokenizers`` tokenizer: BPE trained on the data, or a
    text-generation run's (char, byte or BPE)."""

    pad_id: int | None = None  # every id is a real token; lengths keep padding out

    def __init__(self, tokenizer):
        self.tokenizer = tokenizer

    def tokens(self, text: str) -> list[str]:
        return [self.tokenizer.decode([i]) for i in self.encode(text)]

    def encode(self, text: str) -> list[int]:
        return self.tokenizer.encode(text)

    @property
    def vocab_size(self) -> int:
        return self.tokenizer.vocab_size

    def to_dict(self) -> dict:
        return {"kind": "subword", "tokenizer": self.tokenizer.to_dict()}


def word_encoder(texts: Sequence[str], *, lowercase: bool, pattern: str, min_freq: int,
                 max_vocab: int | None, subwords: bool) -> WordEncoder:
    """The word encoder of ``texts``: words seen ``min_freq`` times (at most ``max_vocab``) get a
    row of their own. With ``subwords`` every training word also gets an id, so its character
    n-grams count, and new words met later get new ids."""
    tokenizer = WordTokenizer(lowercase, pattern)
    words = [tokenizer(t) for t in texts]
    vocab = Vocab.build(words, min_freq, max_vocab)
    if not subwords:
        return WordEncoder(tokenizer, vocab)
    return WordEncoder(tokenizer, Vocab.build(words), rows=len(vocab), open=True)


def encoder_from_dict(d: dict) -> WordEncoder | SubwordEncoder:
    if d.get("kind") == "word":
        return WordEncoder(WordTokenizer.from_dict(d), Vocab.from_dict(d), d.get("rows"),
                           d.get("open", False))
    if d.get("kind") == "subword":
        from rnnkit.data.tokenizers import tokenizer_from_dict

        return SubwordEncoder(tokenizer_from_dict(d["tokenizer"]))
    raise UserError(f"the saved tokenizer kind must be word or subword, found {d.get('kind')!r}.")


def encode_texts(encoder, texts: Sequence[str], max_len: int, source: str = "the data"
                 ) -> list[torch.Tensor]:
    """Token ids of each text, at most ``max_len`` of them (one note says how many were cut);
    a text with no token becomes the single id that stands for unknown words."""
    import torch  # here, so that the encoders serve the torch-free onnxruntime predictor

    out, cut = [], 0
    for text in texts:
        ids = encoder.encode(text) or [Vocab.unk_id]
        if len(ids) > max_len:
            ids, cut = ids[:max_len], cut + 1
        out.append(torch.tensor(ids, dtype=torch.long))
    if cut:
        print(f"warning: {cut} of {len(texts)} texts in {source} are longer than max_len "
              f"{max_len} tokens and were truncated.", file=sys.stderr)
    return out
