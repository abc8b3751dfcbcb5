import pytest
import torch

from rnnkit.data.text import StreamBatches, read_corpus, split_validation, training_texts
from rnnkit.errors import UserError


@pytest.mark.parametrize("epoch", [0, 1, 2])
def test_batch_rows_are_contiguous_streams(epoch):
    ids = torch.arange(1000)
    batches = StreamBatches(ids, batch_size=4, seq_len=7, seed=3)
    windows = list(batches.epoch(epoch))
    assert all(x.shape == (4, 7) and y.shape == (4, 7) for x, y in windows)
    x = torch.cat([w[0] for w in windows], 1)
    y = torch.cat([w[1] for w in windows], 1)
    assert torch.equal(y, x + 1)  # targets are the next tokens
    for row in x:  # each row, read across windows, is one unbroken stretch of the stream
        assert torch.equal(row, torch.arange(row[0], row[0] + len(row)))
    # rows follow each other through the stream, so together they cover most of it once
    assert torch.equal(x[1:, 0] - x[:-1, 0], torch.full((3,), (1000 - 1 - x[0, 0].item()) // 4))
    assert x.shape[1] >= (999 // 4) - 2 * 7


def test_epochs_are_deterministic_and_shifted():
    ids = torch.arange(500)
    a = [x for x, _ in StreamBatches(ids, 3, 10, seed=1).epoch(2)]
    b = [x for x, _ in StreamBatches(ids, 3, 10, seed=1).epoch(2)]
    assert all(torch.equal(p, q) for p, q in zip(a, b, strict=True))
    starts = {next(StreamBatches(ids, 3, 10, seed=1).epoch(e))[0][0, 0].item() for e in range(8)}
    assert len(starts) > 1  # windows do not always break at the same places


def test_small_corpus_gets_fewer_rows_and_too_small_is_an_error():
    assert StreamBatches(torch.arange(50), batch_size=32, seq_len=10).batch_size == 4
    with pytest.raises(UserError, match="shorter than one window"):
        StreamBatches(torch.arange(10), batch_size=2, seq_len=10)


def test_read_directory_in_sorted_order_skipping_other_files(tmp_path):
    (tmp_path / "b.txt").write_text("second")
    (tmp_path / "a.md").write_text("first\n")
    (tmp_path / "sub").mkdir()
    (tmp_path / "sub" / "c.py").write_text("third\n")
    (tmp_path / "image.png").write_bytes(b"\x89PNG\xff")
    (tmp_path / ".hidden").mkdir()
    (tmp_path / ".hidden" / "x.txt").write_text("hidden\n")
    assert read_corpus(tmp_path) == "first\nsecond\nthird\n"


def test_non_utf8_names_file_and_offset_or_is_replaced(tmp_path):
    f = tmp_path / "latin1.txt"
    f.write_bytes("café au lait".encode("latin-1"))
    with pytest.raises(UserError, match=r"latin1\.txt is not UTF-8: byte offset 3 holds 0xe9"):
        read_corpus(f)
    assert read_corpus(f, errors="replace") == "caf\ufffd au lait\n"


def test_missing_empty_and_textless_inputs(tmp_path):
    with pytest.raises(UserError, match="does not exist"):
        read_corpus(tmp_path / "nope.txt")
    (tmp_path / "empty.txt").write_text("")
    with pytest.raises(UserError, match="empty.txt is empty"):
        read_corpus(tmp_path / "empty.txt")
    (tmp_path / "bin").mkdir()
    (tmp_path / "bin" / "x.dat").write_bytes(b"\x00")
    with pytest.raises(UserError, match="holds no text files"):
        read_corpus(tmp_path / "bin")


def test_split_validation_is_the_last_tenth():
    train, val = split_validation("x" * 90 + "y" * 10)
    assert train == "x" * 90 and val == "y" * 10


def test_training_texts_take_a_validation_file_or_the_tail(tmp_path):
    (tmp_path / "a.txt").write_text("a" * 89 + "\n")
    (tmp_path / "v.txt").write_text("held out\n")
    assert training_texts([tmp_path / "a.txt"], tmp_path / "v.txt") == ("a" * 89 + "\n",
                                                                         "held out\n")
    assert training_texts([str(tmp_path / "a.txt")], val_fraction=0.5) == ("a" * 45, "a" * 44 + "\n")
    with pytest.raises(UserError, match="no training text was given"):
        training_texts([])
    with pytest.raises(UserError, match="val_fraction must be between 0 and 1, got 1.5"):
        training_texts([tmp_path / "a.txt"], val_fraction=1.5)
