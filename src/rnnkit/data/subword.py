"""Subword tokenizers for translation: BPE or unigram over words, with special tokens.

Unlike the byte-level BPE of ``rnnkit.data.tokenizers`` (made for language models, where every
byte must encode), translation needs padding, start and end tokens, and an unknown token so that
a character never seen in training is caught rather than spelled out in bytes. Words are split on
whitespace with the Metaspace scheme (a word-initial space becomes ``▁``), so decoding restores
the text exactly, up to Unicode NFC normalisation and runs of spaces.

A tokenizer saves itself as a JSON-able dict (``to_dict``); nothing is pickled.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence

from rnnkit.errors import UserError

KINDS = ("bpe", "unigram")
PAD, UNK, BOS, EOS = "<pad>", "<unk>", "<s>", "</s>"
SPECIALS = (PAD, UNK, BOS, EOS)  # ids 0..3 in every vocabulary


class SubwordTokenizer:
    """Text <-> subword ids; ids 0-3 are ``<pad> <unk> <s> </s>``."""

    pad_id, unk_id, bos_id, eos_id = 0, 1, 2, 3

    def __init__(self, tokenizer, kind: str):
        self.tokenizer = tokenizer
        self.kind = kind
        for i, tok in enumerate(SPECIALS):
            if tokenizer.token_to_id(tok) != i:
                raise UserError(f"the saved subword vocabulary must start with {', '.join(SPECIALS)}"
                                f", found {tok!r} at id {tokenizer.token_to_id(tok)}")

    @classmethod
    def train(cls, texts: Iterable[str], kind: str = "bpe", vocab_size: int = 8000
              ) -> SubwordTokenizer:
        from tokenizers import Tokenizer, decoders, models, normalizers, pre_tokenizers, trainers

        if kind not in KINDS:
            raise UserError(f"the subword tokenizer must be one of {', '.join(KINDS)}, got {kind!r}")
        if vocab_size < 2 * len(SPECIALS):
            raise UserError(f"the subword vocabulary size must be at least {2 * len(SPECIALS)}, "
                            f"got {vocab_size}")
        if kind == "bpe":
            tok = Tokenizer(models.BPE(unk_token=UNK))
            trainer = trainers.BpeTrainer(vocab_size=vocab_size, special_tokens=list(SPECIALS),
                                          show_progress=False)
        else:
            tok = Tokenizer(models.Unigram())
            trainer = trainers.UnigramTrainer(vocab_size=vocab_size, special_tokens=list(SPECIALS),
                                              unk_token=UNK, show_progress=False)
        tok.normalizer = normalizers.NFC()
        tok.pre_tokenizer = pre_tokenizers.Metaspace()
        tok.decoder = decoders.Metaspace()
        tok.train_from_iterator(texts, trainer=trainer)
        return cls(tok, kind)

    @property
    def vocab_size(self) -> int:
        return self.tokenizer.get_vocab_size()

    def encode_batch(self, texts: Sequence[str]) -> list[list[int]]:
        """Ids of each text (no start or end token); unknown characters become ``<unk>``."""
        return [e.ids for e in self.tokenizer.encode_batch(list(texts), add_special_tokens=False)]

    def encode(self, text: str, what: str = "the text", strict: bool = True) -> list[int]:
        """Ids of ``text``; with ``strict``, a character outside the vocabulary is a UserError."""
        enc = self.tokenizer.encode(text, add_special_tokens=False)
        if strict and self.unk_id in enc.ids:
            start, end = enc.offsets[enc.ids.index(self.unk_id)]
            bad = next((ch for ch in text[start:end] if not self.knows(ch)), text[start:end])
            raise UserError(f"{what} has the character {bad!r} at position {text.find(bad)}, "
                            "which the model never saw in training (not in its vocabulary)")
        return enc.ids

    def knows(self, ch: str) -> bool:
        return self.unk_id not in self.tokenizer.encode(ch, add_special_tokens=False).ids

    def decode(self, ids: Iterable[int]) -> str:
        """Text of ``ids``, special tokens left out."""
        return self.tokenizer.decode([int(i) for i in ids if int(i) >= len(SPECIALS)])

    def pieces(self, ids: Iterable[int]) -> list[str]:
        """Each id's subword as written in the vocabulary (for plots)."""
        return [self.tokenizer.id_to_token(int(i)) for i in ids]

    def to_dict(self) -> dict:
        return {"kind": self.kind, "tokenizer": json.loads(self.tokenizer.to_str())}

    @classmethod
    def from_dict(cls, d: dict) -> SubwordTokenizer:
        from tokenizers import Tokenizer

        if d.get("kind") not in KINDS or "tokenizer" not in d:
            raise UserError(f"the saved subword tokenizer must be one of {', '.join(KINDS)}, "
                            f"found {d.get('kind')!r}")
        return cls(Tokenizer.from_str(json.dumps(d["tokenizer"])), d["kind"])
