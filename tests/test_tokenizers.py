import json

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from rnnkit.data.tokenizers import (
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


def test_char_vocabulary_is_the_corpus_characters():
    tok = train_tokenizer("char", [CORPUS])
    assert tok.vocab_size == len(set(CORPUS))
    assert tok.decode(range(tok.vocab_size)) == "".join(sorted(set(CORPUS)))


def test_char_unknown_character_names_it():
    tok = CharTokenizer.train(["abc"])
    with pytest.raises(UserError, match=r"the prompt has the character 'z' at position 2"):
        tok.encode("abz", what="the prompt")


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
