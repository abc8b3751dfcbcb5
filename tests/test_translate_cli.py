"""``rnnkit train translate``, ``rnnkit translate`` and ``rnnkit evaluate`` end to end: a tiny
model learns a word-mapping language, and bad input gets one sentence and exit code 2."""

import dataclasses
import json
import random

import pytest
import torch
import typer

from rnnkit.cli import run
from rnnkit.cli.train import train_command
from rnnkit.errors import UserError
from rnnkit.models.seq2seq import Seq2Seq, Seq2SeqConfig
from rnnkit.tasks import Predictor, registry, translate
from rnnkit.threads import one_thread

pytestmark = pytest.mark.usefixtures("one_thread")

SRC = ["ein", "hund", "katze", "rot", "blau", "lauft", "springt", "im", "park", "haus"]
TGT = ["a", "dog", "cat", "red", "blue", "runs", "jumps", "in", "park", "house"]


def pairs(n, seed):
    rng = random.Random(seed)
    out = []
    for _ in range(n):
        idx = [rng.randrange(len(SRC)) for _ in range(rng.randint(2, 6))]
        out.append((" ".join(SRC[i] for i in idx), " ".join(TGT[i] for i in idx)))
    return out


def write_pairs(d, name, ps):
    (d / f"{name}.de").write_text("".join(p[0] + "\n" for p in ps), encoding="utf-8")
    (d / f"{name}.en").write_text("".join(p[1] + "\n" for p in ps), encoding="utf-8")
    return d / f"{name}.de", d / f"{name}.en"


TINY = ["--hidden", "32", "--embed", "32", "--vocab-size", "60", "--batch-size", "32",
        "--dropout", "0", "--label-smoothing", "0", "--lr", "0.01", "--quiet", "--device", "cpu"]


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    d = tmp_path_factory.mktemp("tr")
    src, tgt = write_pairs(d, "train", pairs(600, 0))
    val_src, val_tgt = write_pairs(d, "val", pairs(40, 1))
    test_src, test_tgt = write_pairs(d, "test", pairs(40, 2))
    out = d / "run"
    with one_thread():  # the module-scoped fixture runs outside the per-test one
        code = run(["train", "translate", "--src", str(src), "--tgt", str(tgt), "--val-src",
                    str(val_src), "--val-tgt", str(val_tgt), "--test-src", str(test_src),
                    "--test-tgt", str(test_tgt), "--out", str(out), "--max-steps", "150",
                    "--beam", "3", *TINY])
    assert code == 0
    return d, out


def test_a_tiny_model_learns_a_word_mapping(trained):
    d, out = trained
    test = json.loads((out / "metrics_test.json").read_text())
    assert test["bleu"] > 60 and test["chrf"] > 70 and test["ppl"] < 1.5
    config = json.loads((out / "config.json").read_text())
    assert config["task"] == "translate" and "joint" in config["tokenizer"]
    tr = translate.load(out)
    assert tr.translate(["hund katze rot"], beam=1) == ["dog cat red"]


def test_translate_text_file_and_attention_plot(trained, tmp_path, capsys):
    d, out = trained
    png = tmp_path / "att.png"
    assert run(["translate", str(out), "--text", "ein hund lauft im park", "--plot-attention",
                str(png)]) == 0
    assert "a dog runs in park" in capsys.readouterr().out
    assert png.stat().st_size > 1000
    src, weights = translate.load(out).attention("katze im haus")[0::2]
    assert len(src) == weights.shape[1]
    torch.testing.assert_close(weights.sum(1), torch.ones(weights.shape[0]))
    (tmp_path / "in.de").write_text("katze springt\n\nrot blau\n", encoding="utf-8")
    assert run(["translate", str(out), "--input", str(tmp_path / "in.de"), "--output",
                str(tmp_path / "out.en"), "--beam", "1"]) == 0
    assert (tmp_path / "out.en").read_text() == "cat jumps\n\nred blue\n"


def test_evaluate_dispatches_to_translation(trained, capsys):
    d, out = trained
    assert run(["evaluate", str(out), "--data", str(d / "test.de"), "--data",
                str(d / "test.en")]) == 0
    shown = dict(line.split() for line in capsys.readouterr().out.splitlines())
    assert float(shown["bleu"]) > 60


def test_the_predictor_protocol(trained):
    d, out = trained
    tr = registry.load(out)
    assert isinstance(tr, Predictor) and isinstance(tr, translate.Translator)
    assert tr.task == "translate" and tr.config["task"] == "translate" and tr.metrics == {}
    assert tr.module is tr.model and isinstance(tr.module, Seq2Seq)
    assert tr.predict(["hund katze rot", ""], beam=1) == ["dog cat red", ""]
    files = [str(d / "test.de"), str(d / "test.en")]
    metrics = tr.evaluate(files, beam=1)
    assert metrics["bleu"] > 60 and metrics["beam"] == 1 and metrics["sentences"] == 40
    old_spelling = tr.evaluate(*files, beam=1)  # evaluate(src, tgt) as before
    assert {k: v for k, v in old_spelling.items() if k != "sentences_per_s"} == \
        {k: v for k, v in metrics.items() if k != "sentences_per_s"}
    with pytest.raises(UserError, match="found 3 files"):
        tr.evaluate([*files, files[0]])


def error_of(capsys, argv):
    code = run(argv)
    err = capsys.readouterr().err
    assert code == 2, err
    assert err.startswith("error: ") and len(err.strip().splitlines()) == 1
    return err


def test_bad_inputs_exit_2_with_one_sentence(trained, tmp_path, capsys):
    d, out = trained
    (tmp_path / "a.de").write_text("ein\nhund\nkatze\n")
    (tmp_path / "a.en").write_text("a\ndog\n")
    err = error_of(capsys, ["train", "translate", "--src", str(tmp_path / "a.de"), "--tgt",
                            str(tmp_path / "a.en"), "--out", str(tmp_path / "r"), *TINY])
    assert "3 lines" in err and "has 2" in err
    err = error_of(capsys, ["translate", str(out), "--text", "ein hund Öl"])
    assert "'Ö'" in err and "never saw" in err
    (tmp_path / "in.de").write_text("ein hund\nkatze ∑\n", encoding="utf-8")
    err = error_of(capsys, ["translate", str(out), "--input", str(tmp_path / "in.de")])
    assert "line 2 of" in err
    other = tmp_path / "other"
    other.mkdir()
    (other / "config.json").write_text(json.dumps({"task": "sentiment"}))
    (other / "model.safetensors").write_bytes(b"")
    err = error_of(capsys, ["translate", str(other), "--text", "ein hund"])
    assert "'sentiment'" in err and "'translate'" in err
    err = error_of(capsys, ["train", "translate", "--src", str(d / "train.de"), "--out",
                            str(tmp_path / "r2"), *TINY])
    assert "target-side file" in err


def test_empty_and_long_pairs_are_skipped_and_counted(tmp_path, capsys):
    ps = pairs(60, 3)
    src = [p[0] for p in ps] + ["", "hund " * 80]
    tgt = [p[1] for p in ps] + ["dog", "dog " * 80]
    (tmp_path / "t.de").write_text("\n".join(src) + "\n")
    (tmp_path / "t.en").write_text("\n".join(tgt) + "\n")
    code = run(["train", "translate", "--src", str(tmp_path / "t.de"), "--tgt",
                str(tmp_path / "t.en"), "--out", str(tmp_path / "r"), "--max-len", "50",
                "--max-steps", "1", "--beam", "2", *TINY])
    assert code == 0
    shown = capsys.readouterr()
    assert "skipped 1 with an empty side and 1 longer than max_len 50" in shown.err
    assert "val: BLEU" in shown.out and "(beam 2, 3 sentences)" in shown.out  # 5% of 60 kept
    assert f"rnnkit translate {tmp_path / 'r'} --text" in shown.out


def test_python_api_tsv_unigram_separate_vocabularies_lstm(tmp_path):
    ps = pairs(80, 4)
    (tmp_path / "p.tsv").write_text("".join(f"{a}\t{b}\n" for a, b in ps), encoding="utf-8")
    tr = translate.train(tmp_path / "p.tsv", tmp_path / "run", tokenizer="unigram",
                         joint_vocab=False, vocab_size=40, arch="lstm", attention="additive",
                         hidden=8, embed=8, max_steps=2, batch_size=16, beam=2, quiet=True,
                         device="cpu", teacher_forcing=0.5, eval_bleu_sentences=0)
    assert tr.vocab.src is not tr.vocab.tgt and tr.vocab.src.kind == "unigram"
    assert set(tr.metrics["val"]) >= {"bleu", "chrf", "ppl", "sentences_per_s"}
    assert tr.metrics["val"]["sentences"] == 4  # 5% of the 80 pairs held out
    assert len(tr.translate(["hund", "", "katze rot"])) == 3


OLD_FLAGS = (
    "--src --tgt --out --val-src --val-tgt --test-src --test-tgt --config --epochs --max-steps "
    "--max-time --batch-size --lr --seed --device --resume --quiet --arch --layers --dec-layers "
    "--hidden --embed --attention --input-feeding --no-input-feeding --dropout --tie-embeddings "
    "--no-tie-embeddings --tokenizer --vocab-size --joint-vocab --separate-vocab --max-len "
    "--label-smoothing --teacher-forcing --teacher-forcing-decay --beam --val-fraction").split()


def test_every_flag_of_the_old_command_is_still_there():
    app = typer.Typer()
    app.command()(train_command(registry.get("translate")))
    command = typer.main.get_command(app)
    flags = {o for p in command.params for o in [*p.opts, *p.secondary_opts]}
    assert set(OLD_FLAGS) <= flags, set(OLD_FLAGS) - flags


def test_model_settings_are_declared_once():
    model = {f.name for f in dataclasses.fields(Seq2SeqConfig)}
    task = {f.name: f.default for f in dataclasses.fields(translate.TranslateConfig)}
    shared = model & set(task)
    assert shared == {"arch", "layers", "dec_layers", "hidden", "embed", "attention",
                      "input_feeding", "dropout", "tie_embeddings"}
    defaults = Seq2SeqConfig(1, 1)
    assert all(task[k] == getattr(defaults, k) for k in shared)


def test_teacher_forcing_schedule():
    cfg = translate.TranslateConfig(teacher_forcing=1.0, teacher_forcing_decay=0.25,
                                    teacher_forcing_min=0.4)
    assert [cfg.teacher_forcing_at(e) for e in range(4)] == [1.0, 0.75, 0.5, 0.4]
