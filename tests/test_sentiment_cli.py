"""``rnnkit train sentiment``, ``classify`` and ``evaluate`` end to end, and bad input."""

import csv
import json
import random
from pathlib import Path

import pytest
import torch

from rnnkit.cli import run
from rnnkit.models.classifier import ClassifierConfig
from rnnkit.tasks import sentiment, textgen

POS = ["good", "great", "fine", "superb", "lovely"]
NEG = ["bad", "awful", "dull", "poor", "boring"]
FILLER = ["the", "film", "was", "a", "plot", "and", "very", "story"]


def make_rows(n, seed=0, long_every=0):
    rng = random.Random(seed)
    rows = []
    for i in range(n):
        label = "pos" if i % 2 else "neg"
        words = [rng.choice(FILLER) for _ in range(rng.randint(2, 8))]
        words.insert(rng.randrange(len(words) + 1), rng.choice(POS if label == "pos" else NEG))
        if long_every and i % long_every == 0:
            words += FILLER * 3
        rows.append((" ".join(words), label))
    return rows


def write_csv(path, rows, header=("text", "label")):
    with open(path, "w", encoding="utf-8", newline="") as f:
        w = csv.writer(f)
        w.writerow(header)
        w.writerows(rows)
    return path


TINY = ["--hidden", "8", "--embed", "8", "--batch-size", "8", "--quiet", "--device", "cpu"]


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    d = tmp_path_factory.mktemp("sent")
    train = write_csv(d / "train.csv", make_rows(48))
    val = write_csv(d / "val.csv", make_rows(12, seed=1))
    test = write_csv(d / "test.csv", make_rows(12, seed=2))
    out = d / "run"
    code = run(["train", "sentiment", "--data", str(train), "--val", str(val), "--test",
                str(test), "--out", str(out), "--max-steps", "1", "--pooling", "attention",
                *TINY])
    assert code == 0
    return d, out


def test_train_one_batch_writes_a_run(trained):
    d, out = trained
    config = json.loads((out / "config.json").read_text())
    assert config["task"] == "sentiment" and config["labels"] == ["neg", "pos"]
    assert (out / "confusion_val.png").is_file() and (out / "confusion_test.png").is_file()
    m = json.loads((out / "metrics_test.json").read_text())
    assert m["examples"] == 12 and set(m["per_class"]) == {"neg", "pos"}
    assert 0.0 <= m["accuracy"] <= 1.0


def test_classify_text_and_explain(trained, capsys):
    _, out = trained
    assert run(["classify", str(out), "--text", "a great film", "--text", "dull",
                "--explain"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert len(lines) == 4
    assert lines[0].split("\t")[0] in ("neg", "pos") and "a great film" in lines[0]
    words = [w.rsplit(":", 1) for w in lines[1].split()]
    assert [w for w, _ in words] == ["a", "great", "film"]
    assert sum(float(a) for _, a in words) == pytest.approx(1.0, abs=0.02)


def test_classify_file_writes_labels_and_probabilities(trained):
    d, out = trained
    src = write_csv(d / "unlabelled.csv", [("a great plot",), ("  ",), ("boring",)],
                    header=("text",))
    preds = d / "preds.csv"
    assert run(["classify", str(out), "--input", str(src), "--output", str(preds)]) == 0
    rows = list(csv.DictReader(open(preds, encoding="utf-8")))
    assert [r["line"] for r in rows] == ["2", "4"]
    assert set(rows[0]) == {"line", "text", "label", "prob_neg", "prob_pos"}
    for r in rows:
        p = float(r["prob_neg"]), float(r["prob_pos"])
        assert sum(p) == pytest.approx(1.0, abs=1e-5)
        assert r["label"] == ("pos" if p[1] > p[0] else "neg")


def test_predict_gives_plain_python_and_evaluate_top_level_numbers(trained):
    d, out = trained
    clf = sentiment.load(out)
    assert clf.task == "sentiment" and clf.module is clf.model
    [one] = clf.predict("a great film")  # a single text is a list of one
    assert one["label"] in ("neg", "pos") and isinstance(one["label"], str)
    assert set(one["probabilities"]) == {"neg", "pos"}
    assert all(isinstance(p, float) for p in one["probabilities"].values())
    assert one["label"] == max(one["probabilities"], key=one["probabilities"].get)
    m = clf.evaluate(str(d / "test.csv"))
    assert m["examples"] == 12 and {"accuracy", "macro_f1", "loss"} <= set(m)
    assert m["per_class"]["pos"]["recall"] == m["recall_pos"]
    assert clf.evaluate([d / "test.csv"])["accuracy"] == m["accuracy"]


def test_old_run_directory_classifies(capsys):
    old = Path(__file__).parent / "fixtures" / "old_runs" / "sentiment"
    assert run(["classify", str(old), "--text", "good film"]) == 0
    assert capsys.readouterr().out.split("\t")[0] in sentiment.load(old).labels


def test_model_defaults_are_the_tasks():
    cfg, model = sentiment.SentimentConfig(), ClassifierConfig(vocab_size=5, num_classes=2)
    assert (cfg.hidden, cfg.embed, cfg.word_dropout) == (model.hidden, model.embed,
                                                         model.word_dropout) == (128, 200, 0.25)


def test_evaluate_dispatches_to_sentiment(trained, capsys):
    d, out = trained
    assert run(["evaluate", str(out), "--data", str(d / "test.csv")]) == 0
    printed = dict(line.split() for line in capsys.readouterr().out.splitlines())
    assert {"accuracy", "macro_f1", "recall_pos", "precision_neg"} <= set(printed)
    assert run(["evaluate", str(out), "--data", str(d / "test.csv"), "--precision", "bf16"]) == 0
    captured = capsys.readouterr()
    assert "precision: bf16 autocast" in captured.err
    assert set(dict(line.split() for line in captured.out.splitlines())) == set(printed)
    assert run(["evaluate", str(out), "--data", str(d / "test.csv"), "--precision", "half"]) == 2
    assert "precision must be one of auto, fp32, bf16" in capsys.readouterr().err


def test_label_sentence_format_and_stratified_split(tmp_path, capsys):
    data = tmp_path / "train.txt"
    data.write_text("".join(f"{1 if y == 'pos' else 0} {t}\n" for t, y in make_rows(40)),
                    encoding="utf-8")
    out = tmp_path / "run"
    assert run(["train", "sentiment", "--data", str(data), "--out", str(out), "--max-steps",
                "1", "--pooling", "mean", "--arch", "gru", "--tokenizer", "bpe", *TINY]) == 0
    config = json.loads((out / "config.json").read_text())
    assert config["labels"] == ["0", "1"] and config["tokenizer"]["kind"] == "subword"
    assert config["model"]["vocab_size"] > 256 and config["model"]["pad_id"] is None
    assert json.loads((out / "metrics_val.json").read_text())["examples"] == 4
    capsys.readouterr()
    assert "attention pooling" in _bad(["classify", str(out), "--text", "good", "--explain"],
                                       capsys)


def _bad(args, capsys):
    code = run(args)
    err = capsys.readouterr().err
    assert code == 2, err
    assert err.startswith("error: ") and "Traceback" not in err
    return err


def test_bad_inputs_are_one_sentence_and_exit_2(tmp_path, capsys):
    out = ["--out", str(tmp_path / "run"), "--max-steps", "1", *TINY]
    p = write_csv(tmp_path / "cols.csv", make_rows(10), header=("sentence", "y"))
    err = _bad(["train", "sentiment", "--data", str(p), *out], capsys)
    assert "'text'" in err and "'sentence', 'y'" in err
    p = write_csv(tmp_path / "one.csv", [(t, "pos") for t, _ in make_rows(10)])
    assert "single class ('pos')" in _bad(["train", "sentiment", "--data", str(p), *out], capsys)
    p = write_csv(tmp_path / "empty.csv", [(" ", "pos"), ("", "neg")])
    assert "2 empty" in _bad(["train", "sentiment", "--data", str(p), *out], capsys)
    p = tmp_path / "mal.csv"
    p.write_text("text,label\ngood,pos\nbad,neg,extra\n", encoding="utf-8")
    assert "line 3" in _bad(["train", "sentiment", "--data", str(p), *out], capsys)
    p = tmp_path / "mal.jsonl"
    p.write_text('{"text": "good", "label": "pos"}\n{"text": "bad" "label"}\n', encoding="utf-8")
    assert "line 2" in _bad(["train", "sentiment", "--data", str(p), *out], capsys)
    train = write_csv(tmp_path / "train.csv", make_rows(20))
    val = write_csv(tmp_path / "val.csv", make_rows(6) + [("so so", "meh")])
    err = _bad(["train", "sentiment", "--data", str(train), "--val", str(val), *out], capsys)
    assert "never saw" in err and "'meh'" in err and "line 8" in err
    # an ensemble: the same sentence from a worker process, and a bad test file before training
    ens = ["--ensemble", "2", "--workers", "2", "--max-steps", "1", *TINY]
    p = tmp_path / "cols.csv"
    err = _bad(["train", "sentiment", "--data", str(p), "--out", str(tmp_path / "e1"), *ens],
               capsys)
    assert "'text'" in err and "'sentence', 'y'" in err
    err = _bad(["train", "sentiment", "--data", str(train), "--test", str(tmp_path / "no.csv"),
                "--out", str(tmp_path / "e2"), *ens], capsys)
    assert "no.csv" in err and not (tmp_path / "e2" / "members").exists()


def test_unseen_labels_at_evaluation(trained, tmp_path, capsys):
    _, out = trained
    p = write_csv(tmp_path / "other.csv", [("good", "pos"), ("odd", "neutral")])
    err = _bad(["evaluate", str(out), "--data", str(p)], capsys)
    assert "'neutral'" in err and "'neg', 'pos'" in err


def test_long_texts_are_truncated_with_one_warning(tmp_path, capsys):
    train = write_csv(tmp_path / "train.csv", make_rows(30, long_every=3))
    val = write_csv(tmp_path / "val.csv", make_rows(6, seed=1))
    assert run(["train", "sentiment", "--data", str(train), "--val", str(val), "--out",
                str(tmp_path / "run"), "--max-steps", "1", "--max-len", "10", *TINY]) == 0
    warnings = [w for w in capsys.readouterr().err.splitlines() if w.startswith("warning")]
    assert len(warnings) == 1 and "10 of 30 texts" in warnings[0] and "max_len 10" in warnings[0]


def test_encoder_starts_from_a_language_model(tmp_path, capsys):
    rows = make_rows(40)
    corpus = tmp_path / "corpus.txt"
    corpus.write_text("\n".join(t for t, _ in rows) * 3 + "\n", encoding="utf-8")
    lm_dir = tmp_path / "lm"
    assert run(["train", "textgen", "--data", str(corpus), "--out", str(lm_dir), "--max-steps",
                "1", "--hidden", "8", "--layers", "2", "--seq-len", "16", "--batch-size", "4",
                "--quiet", "--device", "cpu"]) == 0
    train = write_csv(tmp_path / "train.csv", rows)
    train_cfg, cfg = sentiment.configs({"data": str(train), "init_from": str(lm_dir),
                                        "hidden": 99, "quiet": True})
    task, model = sentiment.build(cfg, train_cfg.batch_size)
    assert "the embedding and 7 recurrent tensors start from" in capsys.readouterr().err
    lm = textgen.load(lm_dir).model
    # the LM's shapes win over the settings; its tokenizer reads the texts
    assert (model.cfg.hidden, model.cfg.layers, model.cfg.pad_id) == (8, 2, None)
    assert task.encoder.encode("good") == lm_tokens(lm_dir, "good")
    torch.testing.assert_close(model.embedding.weight, lm.embedding.weight)
    for name in ("weight_ih_l0", "weight_hh_l0", "bias_ih_l0", "bias_hh_l0", "weight_hh_l1"):
        torch.testing.assert_close(getattr(model.rnn, name), getattr(lm.rnn, name))
    # layer 1 reads both directions of layer 0: twice as wide, so it keeps its own weights
    assert model.rnn.weight_ih_l1.shape[1] == 2 * lm.rnn.weight_ih_l1.shape[1]

    out = tmp_path / "clf"
    assert run(["train", "sentiment", "--data", str(train), "--out", str(out), "--init-from",
                str(lm_dir), "--max-steps", "1", "--batch-size", "8", "--quiet"]) == 0
    capsys.readouterr()
    assert run(["classify", str(out), "--text", "a great film"]) == 0
    assert capsys.readouterr().out.split("\t")[0] in ("neg", "pos")


def lm_tokens(lm_dir, text):
    return textgen.load(lm_dir).tokenizer.encode(text)


def test_pretrained_vectors_fill_the_embedding(tmp_path, capsys):
    train = write_csv(tmp_path / "train.csv", make_rows(30))
    vectors = tmp_path / "vec.txt"
    vectors.write_text("2 3\ngood 1 2 3\nbad -1 -2 -3\n", encoding="utf-8")  # word2vec header
    out = tmp_path / "run"
    assert run(["train", "sentiment", "--data", str(train), "--out", str(out), "--max-steps", "1",
                "--vectors", str(vectors), "--freeze-vectors", "--min-freq", "1", "--hidden",
                "4", "--batch-size", "8", "--quiet"]) == 0
    assert "word vectors: 2 of" in capsys.readouterr().err
    clf = sentiment.load(out)
    vocab = clf.encoder.vocab
    assert clf.model.cfg.embed == 3  # the width comes from the file
    weight = clf.model.embedding.weight
    assert weight[vocab.index["good"]].tolist() == [1.0, 2.0, 3.0]
    assert weight[vocab.index["bad"]].tolist() == [-1.0, -2.0, -3.0]


def test_ensemble_trains_saves_and_classifies(tmp_path, capsys):
    train = write_csv(tmp_path / "train.csv", make_rows(48))
    val = write_csv(tmp_path / "val.csv", make_rows(12, seed=1))
    out = tmp_path / "run"
    args = ["train", "sentiment", "--data", str(train), "--val", str(val), "--max-steps", "2",
            "--pooling", "attention", *TINY]
    # two members in two worker processes
    assert run([*args, "--out", str(out), "--ensemble", "2", "--workers", "2"]) == 0
    clf = sentiment.load(out)
    assert clf.model.cfg.ensemble == 2 and len(clf.model.members) == 2
    texts = ["a great film", "boring", "a greatish filmlet"]
    probs = clf.predict_proba(texts)
    torch.testing.assert_close(probs.sum(1), torch.ones(3))
    predicted = clf.predict(texts)
    assert [p["label"] for p in predicted] == [clf.labels[i] for i in probs.argmax(1).tolist()]
    for p, row in zip(predicted, probs.tolist(), strict=True):
        assert list(p["probabilities"]) == clf.labels
        assert list(p["probabilities"].values()) == pytest.approx(row)
    # new words are indexed once, for all members
    first, second = (m.embedding for m in clf.model.members)
    assert first.indexed == second.indexed == len(clf.encoder.vocab)
    assert second.flat is first.flat
    # member k is the classifier a run with seed k would train on its own
    assert run([*args, "--out", str(tmp_path / "alone"), "--seed", "1"]) == 0
    alone = sentiment.load(tmp_path / "alone").model.state_dict()
    member = clf.model.members[1].state_dict()
    assert alone.keys() == member.keys()
    for name in alone:
        torch.testing.assert_close(member[name], alone[name], atol=1e-5, rtol=1e-4)
    assert not torch.equal(clf.model.members[0].output.weight, clf.model.members[1].output.weight)
    # the ensemble predicts the mean of its members' probabilities
    x, lengths = torch.tensor([[2, 3, 4]]), torch.tensor([3])
    with torch.no_grad():
        mean = torch.stack([torch.softmax(m(x, lengths)[0], 1) for m in clf.model.members]).mean(0)
        torch.testing.assert_close(torch.softmax(clf.model(x, lengths)[0], 1), mean)
    capsys.readouterr()
    assert run(["classify", str(out), "--text", "a great film", "--explain"]) == 0
    words = [w.rsplit(":", 1) for w in capsys.readouterr().out.splitlines()[1].split()]
    assert sum(float(a) for _, a in words) == pytest.approx(1.0, abs=0.02)


def test_ensemble_in_one_process_resumes_and_shares_the_split(tmp_path, capsys):
    train = write_csv(tmp_path / "train.csv", make_rows(60))
    out = tmp_path / "run"
    args = ["train", "sentiment", "--data", str(train), "--out", str(out), "--max-steps", "1",
            "--ensemble", "3", "--workers", "1", "--seed", "5", *TINY]
    assert run(args) == 0
    members = [json.loads((out / "members" / f"member-{k}" / "config.json").read_text())
               for k in range(3)]
    assert [m["train"]["seed"] for m in members] == [5, 6, 7]
    assert {m["sentiment"]["split_seed"] for m in members} == {5}  # one validation split
    assert json.loads((out / "metrics_val.json").read_text())["examples"] == 6
    # a second run into the same directory needs --resume; resuming keeps finished members
    capsys.readouterr()
    assert run(args) == 2
    assert "--resume" in capsys.readouterr().err
    before = (out / "members" / "member-2" / "best").resolve()
    assert run([*args, "--resume"]) == 0
    assert (out / "members" / "member-2" / "best").resolve() == before
    assert sentiment.load(out).model.cfg.ensemble == 3
    assert len(list((out / "checkpoints").iterdir())) == 1  # merged again, the old merge gone


def test_subword_vectors_give_unseen_words_their_spelling(tmp_path):
    train = write_csv(tmp_path / "train.csv", make_rows(48) + [("a one-off gem", "pos")])
    # validation and test words the training data never had
    val = write_csv(tmp_path / "val.csv", [("a superbly made film", "pos"), ("dullest", "neg")])
    test = write_csv(tmp_path / "test.csv", [("boringly told", "neg"), ("a gem", "pos")])
    out = tmp_path / "run"
    assert run(["train", "sentiment", "--data", str(train), "--val", str(val), "--test", str(test),
                "--out", str(out), "--max-steps", "1", *TINY]) == 0
    assert json.loads((out / "metrics_val.json").read_text())["examples"] == 2
    clf = sentiment.load(out)
    emb, vocab = clf.model.embedding, clf.encoder.vocab
    # every training word has an id; only the ones seen twice (min_freq 2) a row of their own
    assert "gem" in vocab and vocab.index["gem"] >= emb.num_words > vocab.index["film"]
    known = len(vocab)
    x = torch.tensor(clf._encode(["gems", "zzzq"], "test")[0].tolist() +
                     clf._encode(["zzzq"], "test")[0].tolist())
    assert x.tolist() == [known, known + 1]  # new words get new ids, the same one each time
    with torch.no_grad():
        vec = emb(x)
        unk = emb.word.weight[1]
    assert not torch.allclose(vec[0], unk) and not torch.allclose(vec[0], vec[1])
    # what is saved is the training words only, so a reloaded model starts from them again
    saved = json.loads((out / "config.json").read_text())["tokenizer"]
    assert len(saved["tokens"]) == known and saved["open"] is True
    assert len(sentiment.load(out).encoder.vocab) == known
    # --no-subwords: one plain embedding row per frequent word, the rest <unk>
    assert run(["train", "sentiment", "--data", str(train), "--out", str(tmp_path / "plain"),
                "--max-steps", "1", "--no-subwords", *TINY]) == 0
    plain = sentiment.load(tmp_path / "plain")
    assert isinstance(plain.model.embedding, torch.nn.Embedding)
    assert plain.encoder.encode("gem zzzq") == [1, 1]
