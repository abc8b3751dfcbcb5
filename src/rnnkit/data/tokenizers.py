"""Tokenizers for language models: characters, UTF-8 bytes, or byte-level BPE.

Each tokenizer saves itself as a JSON-able dict (``to_dict``) that goes into the checkpoint's
``config.json``; ``tokenizer_from_dict`` rebuilds it. Nothing is pickled.

Every text encodes, whatever its characters: bytes and byte-level BPE have a token for each of
the 256 bytes, and a character vocabulary reads a character it lacks as its unknown symbol
``UNKNOWN`` (U+FFFD, which decodes as itself). A character vocabulary saved before it had an
unknown symbol (no ``"unk"`` in its dict) leaves such characters out. ``unknown(text)`` says which
characters of a text were read that way, and how often.
"""

from __future__ import annotations

import codecs
import json
from collections import Counter
from collections.abc import Iterable

from rnnkit.errors import UserError

KINDS = ("char", "byte", "bpe")
UNKNOWN = "\ufffd"  # the unknown symbol of character vocabularies, U+FFFD REPLACEMENT CHARACTER


class CharTokenizer:
    """One token per Unicode character of the texts it was built from, plus ``unk``.

    ``unk`` is the symbol a character outside the vocabulary is read as (``UNKNOWN`` for
    vocabularies built now); ``None`` for one saved before it existed, which skips such
    characters instead.
    """

    kind = "char"

    def __init__(self, vocab: list[str], unk: str | None = None):
        self.vocab = list(vocab)
        self.index = {ch: i for i, ch in enumerate(self.vocab)}
        if unk is not None and unk not in self.index:
            raise UserError(f"the saved tokenizer's unknown symbol {unk!r} is not in its "
                            "vocabulary; the run's config.json was edited or damaged")
        self.unk = unk

    @classmethod
    def train(cls, texts: Iterable[str]) -> CharTokenizer:
        """The characters of every text given (training and validation alike), and ``UNKNOWN``."""
        chars: set[str] = {UNKNOWN}
        for text in texts:
            chars.update(text)
        return cls(sorted(chars), unk=UNKNOWN)

    @property
    def vocab_size(self) -> int:
        return len(self.vocab)

    def encode(self, text: str, what: str = "the text") -> list[int]:
        """Token ids of ``text``; a character outside the vocabulary is ``unk``'s id, or left out
        when there is no ``unk``. ``what`` (the text's name in messages) is kept for callers of
        every tokenizer: no text fails to encode."""
        index = self.index
        if self.unk is None:
            return [index[ch] for ch in text if ch in index]
        unk = index[self.unk]
        return [index.get(ch, unk) for ch in text]

    def unknown(self, text: str) -> dict[str, int]:
        """The characters of ``text`` outside the vocabulary, with their counts, in order of first
        appearance."""
        return {ch: n for ch, n in Counter(text).items() if ch not in self.index}

    def decode(self, ids: Iterable[int]) -> str:
        return "".join(self.vocab[i] for i in ids)

    def stream_decoder(self) -> _Stream:
        return _Stream(lambda i: self.vocab[i].encode("utf-8"))

    def to_dict(self) -> dict:
        d = {"kind": "char", "vocab": self.vocab}
        if self.unk is not None:  # absent: an old reader sees the vocabulary it knows
            d["unk"] = self.unk
        return d


class ByteTokenizer:
    """One token per UTF-8 byte: 256 tokens, every text encodes."""

    kind = "byte"
    vocab_size = 256
    unk = None  # nothing is unknown

    @classmethod
    def train(cls, texts: Iterable[str]) -> ByteTokenizer:
        return cls()

    def encode(self, text: str, what: str = "the text") -> list[int]:
        return list(text.encode("utf-8"))

    def unknown(self, text: str) -> dict[str, int]:
        return {}

    def decode(self, ids: Iterable[int]) -> str:
        # A model can emit byte sequences that are not UTF-8; show them as U+FFFD.
        return bytes(ids).decode("utf-8", errors="replace")

    def stream_decoder(self) -> _Stream:
        return _Stream(lambda i: bytes((i,)))

    def to_dict(self) -> dict:
        return {"kind": "byte"}


class BPETokenizer:
    """Byte-level BPE trained on the corpus with the ``tokenizers`` library.

    Byte-level means the 256 byte symbols are always in the vocabulary, so every text encodes
    and no unknown token is needed.
    """

    kind = "bpe"
    unk = None  # nothing is unknown

    def __init__(self, tokenizer):
        from tokenizers.pre_tokenizers import ByteLevel

        self.tokenizer = tokenizer
        # Each token's bytes, for decoding and streaming: byte-level tokens are strings over
        # the ByteLevel alphabet, one symbol per byte.
        table = _byte_level_table(ByteLevel.alphabet())
        self._bytes = [
            bytes(table[ch] for ch in tokenizer.id_to_token(i))
            for i in range(tokenizer.get_vocab_size())
        ]

    @classmethod
    def train(cls, texts: Iterable[str], vocab_size: int = 1024) -> BPETokenizer:
        from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers

        if vocab_size < 257:
            raise UserError(f"the BPE vocabulary size must be at least 257, got {vocab_size}")
        tok = Tokenizer(models.BPE())
        tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
        tok.decoder = decoders.ByteLevel()
        trainer = trainers.BpeTrainer(
            vocab_size=vocab_size,
            initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
            show_progress=False,
        )
        # Lines, not whole files: the trainer counts pre-tokenized words per input it is given.
        lines = (line for text in texts for line in text.splitlines(keepends=True))
        tok.train_from_iterator(lines, trainer=trainer)
        return cls(tok)

    @property
    def vocab_size(self) -> int:
        return self.tokenizer.get_vocab_size()

    def encode(self, text: str, what: str = "the text") -> list[int]:
        # Encode long texts line by line: the library is much faster on many short inputs,
        # and the pre-tokenizer never merges across a newline anyway.
        lines = text.splitlines(keepends=True)
        ids: list[int] = []
        for enc in self.tokenizer.encode_batch(lines, add_special_tokens=False):
            ids.extend(enc.ids)
        return ids

    def unknown(self, text: str) -> dict[str, int]:
        return {}

    def decode(self, ids: Iterable[int]) -> str:
        return b"".join(self._bytes[i] for i in ids).decode("utf-8", errors="replace")

    def stream_decoder(self) -> _Stream:
        return _Stream(lambda i: self._bytes[i])

    def to_dict(self) -> dict:
        return {"kind": "bpe", "tokenizer": json.loads(self.tokenizer.to_str())}


def _byte_level_table(alphabet: list[str]) -> dict[str, int]:
    """Map each ByteLevel symbol back to its byte.

    The ByteLevel scheme keeps printable Latin-1 bytes as themselves and shifts the other bytes,
    in order, to code points from U+0100 up; the library exposes only the symbol set.
    """
    kept = [b for b in range(256) if chr(b) in alphabet and ord(chr(b)) < 256]
    shifted = [b for b in range(256) if b not in set(kept)]
    table = {chr(b): b for b in kept}
    table.update({chr(256 + n): b for n, b in enumerate(shifted)})
    if set(table) != set(alphabet):
        raise RuntimeError("unexpected ByteLevel alphabet in the tokenizers library")
    return table


class _Stream:
    """Turns token ids into text as they come, holding back incomplete UTF-8 characters."""

    def __init__(self, to_bytes):
        self._to_bytes = to_bytes
        self._decoder = codecs.getincrementaldecoder("utf-8")(errors="replace")

    def feed(self, token: int) -> str:
        return self._decoder.decode(self._to_bytes(token))

    def flush(self) -> str:
        return self._decoder.decode(b"", final=True)


def train_tokenizer(kind: str, texts: Iterable[str], bpe_vocab_size: int = 1024):
    """Build a tokenizer of ``kind`` ("char", "byte" or "bpe") from the training texts."""
    if kind == "char":
        return CharTokenizer.train(texts)
    if kind == "byte":
        return ByteTokenizer()
    if kind == "bpe":
        return BPETokenizer.train(texts, vocab_size=bpe_vocab_size)
    raise UserError(f"the tokenizer must be one of {', '.join(KINDS)}, got {kind!r}")


def tokenizer_from_dict(d: dict):
    """Rebuild a tokenizer saved with ``to_dict``."""
    kind = d.get("kind")
    if kind == "char":
        return CharTokenizer(d["vocab"], d.get("unk"))
    if kind == "byte":
        return ByteTokenizer()
    if kind == "bpe":
        from tokenizers import Tokenizer

        return BPETokenizer(Tokenizer.from_str(json.dumps(d["tokenizer"])))
    raise UserError(f"the saved tokenizer must be one of {', '.join(KINDS)}, got {kind!r}")
