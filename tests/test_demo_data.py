"""The demo's offline data: gettext catalogues, the VADER lexicon, digits spoken by eSpeak NG.

Each reader is tested on a small file written here and, when the package that ships the real
data is installed, on that data.
"""

import csv
import struct
import sys

import numpy as np
import pytest

from rnnkit.data import iso_names, sentiment_lexicon
from rnnkit.errors import UserError


def write_mo(path, entries: dict[str, str]) -> None:
    """A little-endian GNU .mo file: header, the two string tables, then the strings."""
    keys = sorted(entries)
    ids = b"".join(k.encode() + b"\0" for k in keys)
    strs = b"".join(entries[k].encode() + b"\0" for k in keys)
    start = 28 + 16 * len(keys)
    table_ids, table_strs, at = [], [], start
    for k in keys:
        table_ids += [len(k.encode()), at]
        at += len(k.encode()) + 1
    for k in keys:
        table_strs += [len(entries[k].encode()), at]
        at += len(entries[k].encode()) + 1
    head = struct.pack("<7I", 0x950412DE, 0, len(keys), 28, 28 + 8 * len(keys), 0, 0)
    path.write_bytes(head + struct.pack(f"<{4 * len(keys)}I", *table_ids, *table_strs)
                     + ids + strs)


def test_read_mo_keeps_plain_entries_only(tmp_path):
    path = tmp_path / "x.mo"
    write_mo(path, {"": "Content-Type: text/plain; charset=UTF-8\n", "Austria": "Österreich",
                    "menu\x04File": "Datei", "one\x00many": "eins\x00viele", "Peru": "Peru"})
    assert iso_names.read_mo(path) == {"Austria": "Österreich", "Peru": "Peru"}
    (tmp_path / "bad.mo").write_bytes(b"not a catalogue at all")
    with pytest.raises(UserError, match="not a gettext .mo file"):
        iso_names.read_mo(tmp_path / "bad.mo")


def test_translated_names_and_split(tmp_path, monkeypatch):
    folder = tmp_path / "de" / "LC_MESSAGES"
    folder.mkdir(parents=True)
    write_mo(folder / "iso3166-1.mo", {"Austria": "Österreich", "Peru": "Peru",
                                       "Tamil\tNadu": "Tamil  Nadu"})
    write_mo(folder / "iso15924.mo", {"Austria": "Austria (script?)", "Latin": "Lateinisch"})
    monkeypatch.setattr(iso_names, "locales_dir", lambda: tmp_path)
    # whitespace is normalised; a name kept as it is is left out; the first domain wins
    assert iso_names.translated_names("de", ("iso3166-1", "iso15924")) == [
        ("Austria", "Österreich"), ("Latin", "Lateinisch")]
    assert ("Peru", "Peru") in iso_names.translated_names("de", only_changed=False)
    with pytest.raises(UserError, match="no translations into 'xx'"):
        iso_names.translated_names("xx")
    pairs = [(f"a{i}", f"b{i}") for i in range(20)]
    train, test = iso_names.split_names(pairs, 0.1, seed=3)
    assert len(test) == 2 and sorted(train + test) == sorted(pairs)
    assert iso_names.split_names(pairs, 0.1, seed=3) == (train, test)
    src, tgt = iso_names.write_pairs(tmp_path / "out", "train", train)
    assert src.name == "train.en" and tgt.name == "train.de"
    assert tgt.read_text(encoding="utf-8").splitlines() == [t for _, t in train]


def test_pycountry_catalogue_is_real_translation():
    pytest.importorskip("pycountry")
    pairs = dict(iso_names.translated_names("de"))
    assert pairs["Germany"] == "Deutschland" and pairs["Austria"] == "Österreich"
    assert len(pairs) > 2000 and all(en != de for en, de in pairs.items())


def test_lexicon_reader_and_labels(tmp_path):
    path = tmp_path / "lexicon.txt"
    path.write_text("\n".join([
        ":)\t2.0\t0.5\t[2, 2, 2, 2, 2, 2, 2, 2, 2, 2]",
        "good\t1.9\t0.9\t[2, 3, 1, 2, 3, 1, 2, 2, 1, 2]",
        "meh\t-0.3\t0.6\t[0, -1, 0, 0, -1, 0, 0, 0, 0, 0]",
        "heart-broken\t-2.4\t0.8\t[-3, -2, -2, -3, -2, -2, -3, -2, -3, -2]",
        "",
    ]), encoding="utf-8")
    entries = sentiment_lexicon.read_lexicon(path)
    assert [e.token for e in entries] == [":)", "good", "meh", "heart-broken"]
    assert entries[1].mean == 1.9 and len(entries[1].ratings) == 10
    # no emoticons, no near-neutral words
    assert sentiment_lexicon.labelled_words(1.0, path) == [("good", "positive"),
                                                          ("heart-broken", "negative")]
    path.write_text("good 1.9\n", encoding="utf-8")
    with pytest.raises(UserError, match="line 1 of .* is not"):
        sentiment_lexicon.read_lexicon(path)


def test_vader_lexicon_has_human_ratings():
    pytest.importorskip("vaderSentiment")
    words = dict(sentiment_lexicon.labelled_words(1.0))
    assert words["good"] == "positive" and words["horrible"] == "negative"
    assert len(words) > 5000


def test_spoken_digits_are_synthesised_offline(tmp_path):
    pytest.importorskip("espeakng_loader")
    from rnnkit.data.spoken_digits import (
        TEST_VARIANTS,
        TRAIN_VARIANTS,
        Espeak,
        Voice,
        write_digit_set,
    )

    assert not set(TRAIN_VARIANTS) & set(TEST_VARIANTS)
    engine = Espeak.get()
    slow = engine.say("one two three", Voice("en", "m1"), words_per_minute=130)
    fast = engine.say("one two three", Voice("en", "m1"), words_per_minute=220)
    other = engine.say("one two three", Voice("en-us", "f4"), words_per_minute=130)
    assert 0.5 * engine.sample_rate < len(fast) < len(slow) < 4 * engine.sample_rate
    assert 0.01 < np.abs(slow).max() <= 1.0
    assert len(other) != len(slow) or not np.allclose(other, slow)
    with pytest.raises(UserError, match="no voice"):
        engine.say("one", Voice("en", "nobody-at-all"))
    with pytest.raises(UserError, match="no voice"):
        engine.say("one", Voice("xx-nowhere", "m1"))

    import soundfile as sf

    manifest = write_digit_set(tmp_path, 3, TEST_VARIANTS, seed=5, name="test")
    with open(manifest, encoding="utf-8", newline="") as f:
        rows = list(csv.DictReader(f))
    assert len(rows) == 3
    for row in rows:
        assert row["transcript"].isdigit() and 2 <= len(row["transcript"]) <= 5
        assert row["voice"].split("+")[1] in TEST_VARIANTS
        audio, rate = sf.read(tmp_path / row["path"])
        assert rate == 8000 and 0.3 * len(row["transcript"]) * rate / 2 < len(audio)
    # seeded: the same strings and voices (eSpeak carries some state from one utterance to
    # the next, so the samples and lengths differ a little)
    again = write_digit_set(tmp_path / "again", 3, TEST_VARIANTS, seed=5, name="test")
    assert again.read_text(encoding="utf-8") == manifest.read_text(encoding="utf-8")
    frames = [sf.info(folder / rows[0]["path"]).frames for folder in (tmp_path, again.parent)]
    assert abs(frames[0] - frames[1]) < 0.05 * frames[0]


@pytest.mark.parametrize("module, call, package", [
    ("vaderSentiment", lambda: sentiment_lexicon.labelled_words(), "vaderSentiment"),
    ("pycountry", lambda: iso_names.translated_names("de"), "pycountry"),
    ("espeakng_loader", lambda: _fresh_espeak(), "espeakng-loader"),
])
def test_a_missing_data_package_is_one_sentence(monkeypatch, module, call, package):
    monkeypatch.setitem(sys.modules, module, None)  # import now fails
    with pytest.raises(UserError, match=f"pip install {package}"):
        call()


def _fresh_espeak():
    from rnnkit.data.spoken_digits import Espeak

    return Espeak()
