"""Readers, stratified split, text encoders, word vectors, length bucketing and the
classification metrics."""

import gzip
import json

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from rnnkit.data.bucketing import BucketBatchSampler, padding_fraction
from rnnkit.data.padding import pad_batch
from rnnkit.data.table import label_order, read_labelled, stratified_split
from rnnkit.data.text_encoders import encode_texts, encoder_from_dict, word_encoder
from rnnkit.data.vectors import read_vectors
from rnnkit.data.vocab import DEFAULT_PATTERN, Vocab
from rnnkit.errors import UserError
from rnnkit.metrics.classification import (
    classification_metrics,
    confusion_matrix,
    plot_confusion_matrix,
)

ROWS = [("great film, \"really\"", "pos"), ("dull", "neg"), ("  ", "neg"), ("ok\nfine", "pos")]


def _write_all(tmp_path):
    csv_lines = ["review,stars"] + ['"great film, ""really""",pos', "dull,neg", "  ,neg",
                                    '"ok\nfine",pos']
    (tmp_path / "d.csv").write_text("\n".join(csv_lines) + "\n", encoding="utf-8")
    (tmp_path / "d.tsv").write_text("review\tstars\n" + "\n".join(
        f'"{t}"\t{y}' if "\n" in t else f"{t}\t{y}" for t, y in ROWS) + "\n", encoding="utf-8")
    (tmp_path / "d.jsonl").write_text("\n".join(
        json.dumps({"review": t, "stars": y}) for t, y in ROWS) + "\n", encoding="utf-8")
    with gzip.open(tmp_path / "d.jsonl.gz", "wt", encoding="utf-8") as f:
        f.write("\n".join(json.dumps({"review": t, "stars": y}) for t, y in ROWS))


@pytest.mark.parametrize("name", ["d.csv", "d.tsv", "d.jsonl", "d.jsonl.gz"])
def test_every_format_reads_the_same_rows(tmp_path, name):
    _write_all(tmp_path)
    d = read_labelled(tmp_path / name, "review", "stars")
    assert d.texts == ["great film, \"really\"", "dull", "ok\nfine"]
    assert d.labels == ["pos", "neg", "pos"]
    assert d.skipped_empty == 1


def test_label_sentence_lines_and_numeric_labels(tmp_path):
    p = tmp_path / "sst.txt"
    p.write_text("1 a gorgeous film\n0 a mess\n\n10 meh\n", encoding="utf-8")
    d = read_labelled(p)
    assert d.texts == ["a gorgeous film", "a mess", "meh"]
    assert d.labels == ["1", "0", "10"]
    assert d.line_numbers == [1, 2, 4]
    assert label_order(d.labels) == ["0", "1", "10"]  # numeric, not alphabetical
    # JSON numbers and CSV strings name the same class
    j = tmp_path / "n.jsonl"
    j.write_text('{"text": "x", "label": 1}\n{"text": "y", "label": 0.0}\n', encoding="utf-8")
    assert read_labelled(j).labels == ["1", "0"]


def test_reader_errors_name_the_problem(tmp_path):
    p = tmp_path / "a.csv"
    p.write_text("sentence,label\nhi,1\n", encoding="utf-8")
    with pytest.raises(UserError, match="no column 'text'.*found are 'sentence', 'label'"):
        read_labelled(p)
    p.write_text("text,label\nhi,1\nbad,row,here\n", encoding="utf-8")
    with pytest.raises(UserError, match="line 3: malformed row with 3 fields"):
        read_labelled(p)
    j = tmp_path / "a.jsonl"
    j.write_text('{"text": "x", "label": 1}\n{"text": \n', encoding="utf-8")
    with pytest.raises(UserError, match="line 2: malformed row"):
        read_labelled(j)
    p.write_text("text,label\n ,1\n\t,0\n", encoding="utf-8")
    with pytest.raises(UserError, match="holds no texts.*2 empty"):
        read_labelled(p)
    x = tmp_path / "a.xlsx"
    x.write_text("x", encoding="utf-8")
    with pytest.raises(UserError, match="cannot tell the format"):
        read_labelled(x)


def test_stratified_split_keeps_class_shares(tmp_path):
    p = tmp_path / "s.txt"
    p.write_text("".join(f"{'a' if i % 4 else 'b'} text {i}\n" for i in range(200)),
                 encoding="utf-8")
    d = read_labelled(p)
    rest, held = stratified_split(d, 0.1, seed=3)
    assert len(rest) + len(held) == 200
    assert sorted(rest.texts + held.texts) == sorted(d.texts)
    assert held.labels.count("b") == 5 and held.labels.count("a") == 15
    assert stratified_split(d, 0.1, seed=3)[1].texts == held.texts  # deterministic


def test_word_vectors_glove_and_word2vec(tmp_path):
    vocab = Vocab.build([["good", "bad", "Film", "rare"]])
    glove = tmp_path / "g.txt"
    glove.write_text("good 1 2\nfilm 3 4\nother 5 6\n", encoding="utf-8")
    m, found, cov = read_vectors(glove, vocab, {"good": 3, "bad": 1, "Film": 4, "rare": 2})
    assert m.shape == (len(vocab), 2)
    assert m[vocab.index["good"]].tolist() == [1.0, 2.0]
    assert m[vocab.index["Film"]].tolist() == [3.0, 4.0]  # case-insensitive fallback
    assert not found[0] and not found[1] and not found[vocab.index["bad"]]
    assert (cov.found, cov.total) == (2, 4)
    assert cov.token_share == pytest.approx(7 / 10)
    assert "2 of 4 vocabulary words (50.0%)" in str(cov)
    w2v = tmp_path / "w.txt"
    w2v.write_text("3 2\ngood 1 2\nbad 0 1\n", encoding="utf-8")
    assert read_vectors(w2v, vocab)[2].found == 2
    w2v.write_text("good 1 2\nbad 0 1 5\n", encoding="utf-8")
    with pytest.raises(UserError, match="line 2: a vector of 3 numbers"):
        read_vectors(w2v, vocab)


@settings(max_examples=30, deadline=None)
@given(lengths=st.lists(st.integers(1, 60), min_size=1, max_size=300),
       batch_size=st.integers(1, 17), epoch=st.integers(0, 5), pool=st.integers(1, 8))
def test_bucketing_covers_every_example_once_per_epoch(lengths, batch_size, epoch, pool):
    s = BucketBatchSampler(lengths, batch_size, seed=7, pool=pool)
    batches = s.batches(epoch)
    flat = [i for b in batches for i in b]
    assert sorted(flat) == list(range(len(lengths)))
    assert all(1 <= len(b) <= batch_size for b in batches)
    assert len(batches) <= len(s) + pool  # a short pool may end in a short batch
    assert s.batches(epoch) == batches  # same (seed, epoch), same batches


def test_bucketing_reduces_padding_and_reshuffles():
    g = torch.Generator().manual_seed(0)
    lengths = torch.randint(1, 60, (2000,), generator=g).tolist()
    bucketed = BucketBatchSampler(lengths, 32, seed=1)
    plain = BucketBatchSampler(lengths, 32, seed=1, bucket=False)
    pb, pp = padding_fraction(lengths, bucketed.batches(0)), padding_fraction(
        lengths, plain.batches(0))
    assert pb < 0.05 < 0.3 < pp
    assert bucketed.batches(0) != bucketed.batches(1)
    assert BucketBatchSampler(lengths, 32, seed=2).batches(0) != bucketed.batches(0)


def test_metrics_against_hand_computed_values(tmp_path):
    y_true = [0, 0, 0, 1, 1, 2]
    y_pred = [0, 1, 0, 1, 1, 1]
    cm = confusion_matrix(y_true, y_pred, 3)
    assert cm.tolist() == [[2, 1, 0], [0, 2, 0], [0, 1, 0]]
    m = classification_metrics(y_true, y_pred, ["a", "b", "c"])
    assert m["accuracy"] == pytest.approx(4 / 6)
    a, b, c = (m["per_class"][k] for k in "abc")
    assert (a["precision"], a["recall"]) == pytest.approx((1.0, 2 / 3))
    assert (b["precision"], b["recall"]) == pytest.approx((0.5, 1.0))
    assert (c["precision"], c["recall"], c["f1"]) == (0.0, 0.0, 0.0)
    f1_a, f1_b = 2 * (2 / 3) / (1 + 2 / 3), 2 * 0.5 / 1.5
    assert m["macro_f1"] == pytest.approx((f1_a + f1_b + 0.0) / 3)
    assert [a["support"], b["support"], c["support"]] == [3, 2, 1]
    png = plot_confusion_matrix(m["confusion_matrix"], ["a", "b", "c"], tmp_path / "cm.png")
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_text_encoders_round_trip_and_pad(capsys):
    texts = ["a good film", "a good plot", "dull"]
    plain = word_encoder(texts, lowercase=True, pattern=DEFAULT_PATTERN, min_freq=2,
                         max_vocab=None, subwords=False)
    assert plain.encode("A good zebra") == [2, 3, 1]  # rare and unseen words are <unk>
    open_ = word_encoder(texts, lowercase=True, pattern=DEFAULT_PATTERN, min_freq=2,
                         max_vocab=None, subwords=True)
    assert open_.rows == len(plain.vocab) and open_.encode("zebra") == [len(open_.vocab) - 1]
    again = encoder_from_dict(open_.to_dict())  # only the training words are saved
    assert again.vocab.tokens == open_.vocab.tokens[:-1] and again.open
    seqs = encode_texts(plain, ["a good film", "", "good " * 5], max_len=3, source="x.csv")
    assert [s.tolist() for s in seqs] == [[2, 3, 1], [1], [3, 3, 3]]  # no word: one <unk>
    assert "1 of 3 texts in x.csv are longer than max_len 3" in capsys.readouterr().err
    tokens, lengths = pad_batch(seqs, plain.pad_id)
    assert tokens.tolist() == [[2, 3, 1], [1, 0, 0], [3, 3, 3]] and lengths.tolist() == [3, 1, 3]
