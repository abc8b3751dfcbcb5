"""Subword-aware word vectors: the fast bag lookup against a plain per-word sum, and the
hashing of character n-grams."""

import pytest
import torch

from rnnkit.data.vocab import char_ngrams
from rnnkit.nn import SubwordEmbedding


def reference(emb: SubwordEmbedding, grams: list[list[int]], ids: torch.Tensor) -> torch.Tensor:
    """One word at a time: its row (or <unk>'s; padding's is a constant zero) plus the sum of
    its buckets' vectors."""
    out = []
    for i in ids.flatten().tolist():
        row = emb.word.weight[i if i < emb.num_words else emb.unk_id] if i != 0 else \
            torch.zeros(emb.embedding_dim)
        out.append(row + sum((emb.grams.weight[b] for b in grams[i]), torch.zeros_like(row)))
    return torch.stack(out).reshape(*ids.shape, -1)


def test_matches_a_per_word_sum_in_outputs_and_gradients():
    torch.manual_seed(0)
    emb = SubwordEmbedding(num_words=5, dim=4, buckets=11)
    grams = [[], [], [1, 2], [2, 2, 7], [0], [3, 10], [4, 5, 6, 1]]  # ids 5, 6: no own row
    emb.add_words(grams[:3])
    emb.add_words(grams[3:])  # in two parts, as new words arrive
    assert emb.indexed == 7
    ids = torch.tensor([[2, 5, 6, 0], [3, 3, 4, 1]])
    fast = emb(ids)
    slow = reference(emb, grams, ids)
    torch.testing.assert_close(fast, slow)
    assert fast[0, 3].abs().sum() == 0  # padding: zero row, no buckets
    w = torch.randn_like(fast)
    g_fast = torch.autograd.grad((fast * w).sum(), [emb.word.weight, emb.grams.weight])
    g_slow = torch.autograd.grad((slow * w).sum(), [emb.word.weight, emb.grams.weight])
    for a, b in zip(g_fast, g_slow, strict=True):
        torch.testing.assert_close(a, b)
    # a word without a row of its own trains <unk>'s row and its buckets
    assert g_fast[0][1].abs().sum() > 0 and g_fast[1][10].abs().sum() > 0


def test_unindexed_ids_and_bad_buckets_are_refused():
    emb = SubwordEmbedding(num_words=3, dim=2, buckets=4)
    emb.add_words([[], [], [1]])
    with pytest.raises(ValueError, match="no n-gram buckets"):
        emb(torch.tensor([3]))
    with pytest.raises(ValueError, match="bucket ids"):
        emb.add_words([[4]])


def test_char_ngrams_mark_word_edges_and_are_stable():
    # "<ab>" has 3-grams "<ab", "ab>" and the 4-gram "<ab>"; no 5-gram
    assert len(char_ngrams("ab", 1000)) == 3
    assert char_ngrams("unfunny", 1 << 20) == char_ngrams("unfunny", 1 << 20)
    assert all(0 <= b < 7 for b in char_ngrams("masterfully", 7))
    # shared inner parts share buckets; the prefix "<fun" differs from the inner "fun"
    fun, unfunny = set(char_ngrams("fun", 1 << 20)), set(char_ngrams("unfunny", 1 << 20))
    assert len(fun & unfunny) == 1  # "fun" itself
    # CRC-32 buckets: fixed across processes and machines (a saved model must find its n-grams)
    assert char_ngrams("abc", 1 << 20)[:2] == [0xA9F74, 0x441C2]  # "<ab", "abc"
