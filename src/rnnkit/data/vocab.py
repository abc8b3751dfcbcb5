"""Word-level tokenization and a vocabulary that saves itself as JSON.

The default pattern keeps words with inner hyphens or apostrophes whole (``well-made``,
``don't``), splits clitics written apart (``n't``, ``'s``) as words, and makes every other
non-space character a token of its own, so punctuation such as ``!`` carries signal.
"""

from __future__ import annotations

import json
import re
import zlib
from collections import Counter
from collections.abc import Iterable
from pathlib import Path

from rnnkit.errors import UserError

DEFAULT_PATTERN = r"\w+(?:[-'’]\w+)*|['’]\w+|[^\w\s]"
PAD, UNK = "<pad>", "<unk>"
NGRAM_SIZES = (3, 4, 5)  # character n-grams of subword-aware word vectors


def char_ngrams(word: str, buckets: int, sizes: tuple[int, ...] = NGRAM_SIZES) -> list[int]:
    """The hash buckets of ``word``'s character n-grams, the word marked as ``<word>`` so
    prefixes and suffixes differ from inner parts. CRC-32 keeps the buckets the same in every
    process and on every machine (Python's ``hash`` of a string does not)."""
    marked = f"<{word}>"
    return [zlib.crc32(marked[i:i + n].encode("utf-8")) % buckets
            for n in sizes for i in range(len(marked) - n + 1)]


class WordTokenizer:
    """Splits text into words with a regular expression, lower-casing first if asked."""

    def __init__(self, lowercase: bool = True, pattern: str = DEFAULT_PATTERN):
        try:
            self.regex = re.compile(pattern)
        except re.error as e:
            raise UserError(f"the token pattern {pattern!r} is not a valid regular expression "
                            f"({e}).") from None
        self.lowercase = lowercase
        self.pattern = pattern

    def __call__(self, text: str) -> list[str]:
        return self.regex.findall(text.lower() if self.lowercase else text)

    def to_dict(self) -> dict:
        return {"lowercase": self.lowercase, "pattern": self.pattern}

    @classmethod
    def from_dict(cls, d: dict) -> WordTokenizer:
        return cls(lowercase=d["lowercase"], pattern=d["pattern"])


class Vocab:
    """Tokens and their ids: ``<pad>`` is 0, ``<unk>`` is 1, then by frequency (ties by token)."""

    def __init__(self, tokens: list[str]):
        if tokens[:2] != [PAD, UNK]:
            raise ValueError(f"a vocabulary starts with {PAD} and {UNK}")
        self.tokens = list(tokens)
        self.index = {t: i for i, t in enumerate(self.tokens)}
        if len(self.index) != len(self.tokens):
            raise ValueError("the vocabulary holds a token twice")

    pad_id = 0
    unk_id = 1

    @classmethod
    def build(cls, token_lists: Iterable[list[str]], min_freq: int = 1,
              max_size: int | None = None) -> Vocab:
        """Tokens seen at least ``min_freq`` times, the ``max_size`` most frequent (counting the
        two special tokens)."""
        if min_freq < 1:
            raise UserError(f"the minimum word frequency must be at least 1, found {min_freq}.")
        if max_size is not None and max_size < 3:
            raise UserError(f"the vocabulary size must be at least 3, found {max_size}.")
        counts = Counter(t for tokens in token_lists for t in tokens)
        counts.pop(PAD, None)
        counts.pop(UNK, None)
        kept = sorted((t for t, c in counts.items() if c >= min_freq),
                      key=lambda t: (-counts[t], t))
        if max_size is not None:
            kept = kept[:max_size - 2]
        return cls([PAD, UNK, *kept])

    def __len__(self) -> int:
        return len(self.tokens)

    def add(self, token: str) -> int:
        """``token``'s id, appending it if new."""
        if token not in self.index:
            self.index[token] = len(self.tokens)
            self.tokens.append(token)
        return self.index[token]

    def __contains__(self, token: str) -> bool:
        return token in self.index

    def encode(self, tokens: Iterable[str]) -> list[int]:
        return [self.index.get(t, self.unk_id) for t in tokens]

    def decode(self, ids: Iterable[int]) -> list[str]:
        return [self.tokens[i] for i in ids]

    def to_dict(self) -> dict:
        return {"tokens": self.tokens}

    @classmethod
    def from_dict(cls, d: dict) -> Vocab:
        return cls(d["tokens"])

    def save(self, path: str | Path) -> None:
        Path(path).write_text(json.dumps(self.to_dict(), ensure_ascii=False) + "\n",
                              encoding="utf-8")

    @classmethod
    def load(cls, path: str | Path) -> Vocab:
        path = Path(path)
        try:
            d = json.loads(path.read_text(encoding="utf-8"))
            return cls.from_dict(d)
        except FileNotFoundError:
            raise UserError(f"the vocabulary file {path} does not exist.") from None
        except (ValueError, KeyError, TypeError) as e:
            raise UserError(f"{path} is not an rnnkit vocabulary file ({e}).") from None
