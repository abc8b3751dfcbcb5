import json

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from rnnkit.data.tokenizers import (
    UNKNOWN,
    BPETokenizer,
    ByteTokenizer,
    CharTokenizer,
    tokenizer_from_dict,
    train_tokenizer,
)
from rnnkit.errors import UserError

CORPUS = ("To be, or not to be, that is the question:\n"
          "Whether 'tis nobler in the mind to suffer\n"
          "Grüße aus Köln, naïve café, 東京 and 😀 too.\n") * 20


@pytest.fixture(scope="module")
def bpe():
    return BPETokenizer.train([CORPUS], vocab_size=320)


def _reloaded(tok):
    return tokenizer_from_dict(json.loads(json.dumps(tok.to_dict())))


@settings(max_examples=50, deadline=None)
@given(st.text(alphabet=sorted(set(CORPUS))))
def test_char_round_trip(text):
    tok = CharTokenizer.train([CORPUS])
    ids = tok.encode(text)
    assert len(ids) == len(text)
    assert tok.decode(ids) == text
    assert _reloaded(tok).encode(text) == ids


def test_char_vocabulary_is_the_corpus_characters_and_the_unknown_symbol():
    tok = train_tokenizer("char", [CORPUS])
    assert tok.vocab_size == len(set(CORPUS)) + 1 and tok.unk == UNKNOWN
    assert tok.decode(range(tok.vocab_size)) == "".join(sorted(set(CORPUS) | {UNKNOWN}))
    # every text given counts: a character of the second text alone is in the vocabulary
    assert "_" in train_tokenizer("char", ["abc", "d_"]).vocab


def test_char_unknown_characters_are_read_as_the_unknown_symbol():
    tok = _reloaded(CharTokenizer.train(["abc"]))
    assert tok.to_dict() == {"kind": "char", "vocab": ["a", "b", "c", UNKNOWN], "unk": UNKNOWN}
    assert tok.encode("abzz", what="the prompt") == [0, 1, 3, 3]
    assert tok.decode(tok.encode("a🙂b")) == "a\ufffdb"
    assert tok.unknown("zabz🙂") == {"z": 2, "🙂": 1} and tok.unknown("cab") == {}
    # text holding U+FFFD itself (undecodable bytes read with errors="replace") is not unknown
    assert tok.unknown(UNKNOWN) == {}


def test_char_vocabulary_saved_before_the_unknown_symbol_skips_unknown_characters():
    old = tokenizer_from_dict({"kind": "char", "vocab": ["a", "b", "c"]})
    assert old.unk is None and old.vocab_size == 3
    assert old.encode("azbz") == [0, 1] and old.unknown("azbz") == {"z": 2}
    assert old.to_dict() == {"kind": "char", "vocab": ["a", "b", "c"]}  # saved as it was read
    with pytest.raises(UserError, match="unknown symbol 'x' is not in its vocabulary"):
        tokenizer_from_dict({"kind": "char", "vocab": ["a"], "unk": "x"})


@settings(max_examples=50, deadline=None)
@given(st.text())
def test_byte_round_trip_any_text(text):
    tok = ByteTokenizer()
    ids = tok.encode(text)
    assert ids == list(text.encode("utf-8"))
    assert tok.decode(ids) == text
    assert _reloaded(tok).encode(text) == ids


@settings(max_examples=50, deadline=None)
@given(st.text())
def test_bpe_round_trip_any_text(bpe, text):
    # Byte-level BPE has every byte in its vocabulary: even text unlike the corpus encodes.
    ids = bpe.encode(text)
    assert bpe.decode(ids) == text
    assert _reloaded(bpe).encode(text) == ids


@settings(max_examples=30, deadline=None)
@given(st.text())
def test_bytes_and_bpe_know_every_character(bpe, text):
    assert ByteTokenizer().unknown(text) == {} == bpe.unknown(text)
    assert bpe.unk is None is ByteTokenizer.unk


def test_bpe_learns_merges_that_shorten_the_corpus(bpe):
    assert 256 < bpe.vocab_size <= 320
    assert len(bpe.encode(CORPUS)) < 0.6 * len(CORPUS.encode("utf-8"))


@pytest.mark.parametrize("kind", ["char", "byte", "bpe"])
def test_streaming_decode_matches_decode(kind, bpe):
    tok = bpe if kind == "bpe" else train_tokenizer(kind, [CORPUS])
    text = "Grüße aus 東京 😀, to be.\n"
    ids = tok.encode(text)
    stream = tok.stream_decoder()
    pieces = [stream.feed(i) for i in ids] + [stream.flush()]
    assert "".join(pieces) == text
    # A multi-byte character comes out whole, never as replacement characters.
    assert all("\ufffd" not in p for p in pieces)


def test_unknown_kind_is_a_user_error():
    with pytest.raises(UserError, match="char, byte, bpe"):
        train_tokenizer("word", [CORPUS])
    with pytest.raises(UserError, match="got 'word'"):
        tokenizer_from_dict({"kind": "word"})
