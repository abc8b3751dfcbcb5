import json

import pytest

from rnnkit.data.vocab import PAD, UNK, Vocab, WordTokenizer
from rnnkit.errors import UserError


def test_default_tokenizer_keeps_words_and_splits_punctuation():
    tok = WordTokenizer()
    assert tok("A well-made film, isn't it?!") == [
        "a", "well-made", "film", ",", "isn't", "it", "?", "!"]
    # SST-style clitics written apart stay one token each
    assert tok("it does n't work , it 's bad") == [
        "it", "does", "n't", "work", ",", "it", "'s", "bad"]


def test_tokenizer_options():
    assert WordTokenizer(lowercase=False)("Good Film") == ["Good", "Film"]
    assert WordTokenizer(pattern=r"\S+")("wow!! so-so.") == ["wow!!", "so-so."]
    with pytest.raises(UserError, match="not a valid regular expression"):
        WordTokenizer(pattern="(")


def test_vocab_frequency_order_min_freq_and_max_size():
    docs = [["b", "a", "a", "c"], ["a", "b", "d"]]
    v = Vocab.build(docs)
    assert v.tokens == [PAD, UNK, "a", "b", "c", "d"]  # by count, ties alphabetical
    assert Vocab.build(docs, min_freq=2).tokens == [PAD, UNK, "a", "b"]
    assert Vocab.build(docs, max_size=3).tokens == [PAD, UNK, "a"]
    assert v.encode(["a", "zzz", "d"]) == [2, 1, 5]
    assert v.decode([2, 1]) == ["a", UNK]
    with pytest.raises(UserError, match="minimum word frequency"):
        Vocab.build(docs, min_freq=0)


def test_vocab_save_load_round_trip(tmp_path):
    v = Vocab.build([["ça", "va", "ça"]])
    path = tmp_path / "vocab.json"
    v.save(path)
    assert json.loads(path.read_text(encoding="utf-8"))["tokens"][2] == "ça"
    assert Vocab.load(path).tokens == v.tokens
    path.write_text("{not json", encoding="utf-8")
    with pytest.raises(UserError, match="not an rnnkit vocabulary"):
        Vocab.load(path)
    with pytest.raises(UserError, match="does not exist"):
        Vocab.load(tmp_path / "missing.json")
