"""Text generation end to end through ``rnnkit.cli.run``: train one batch, generate, evaluate,
and every bad input the issue lists (one sentence, exit code 2, nothing saved is lost)."""

import json
import random
import re

import pytest

from rnnkit.cli import run
from rnnkit.errors import UserError
from rnnkit.tasks import load, textgen

pytestmark = pytest.mark.usefixtures("one_thread")

TINY = ["--hidden", "16", "--layers", "1", "--seq-len", "16", "--batch-size", "4", "--quiet"]


def _corpus(path, lines=60):
    rng = random.Random(0)
    words = "the cat sat on a mat and ate the rat while dogs ran".split()
    path.write_text("\n".join(" ".join(rng.choice(words) for _ in range(8))
                              for _ in range(lines)) + "\n")
    return path


def _snapshot(run_dir):
    return {p: p.read_bytes() for p in sorted(run_dir.rglob("*")) if p.is_file()}


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    root = tmp_path_factory.mktemp("textgen")
    corpus = _corpus(root / "corpus.txt")
    out = root / "run"
    assert run(["train", "textgen", "--data", str(corpus), "--out", str(out),
                "--max-steps", "1", *TINY]) == 0
    return corpus, out


def test_train_one_batch_then_generate_and_evaluate(trained, capsys):
    corpus, out = trained
    capsys.readouterr()
    config = json.loads((out / "config.json").read_text())
    assert config["task"] == "textgen" and config["model"]["hidden"] == 16
    assert config["tokenizer"]["kind"] == "char"
    assert run(["generate", str(out), "--prompt", "the ", "--length", "25", "--seed", "3"]) == 0
    text = capsys.readouterr().out
    assert text.startswith("the ") and len(text) == len("the ") + 25 + 1
    assert run(["generate", str(out), "--prompt", "the ", "--length", "25", "--seed", "3"]) == 0
    assert capsys.readouterr().out == text  # same seed, same text
    assert run(["generate", str(out), "--prompt", "a", "--length", "5", "--samples", "3",
                "--bf16"]) == 0
    assert capsys.readouterr().out.count("--- sample") == 3
    assert run(["evaluate", str(out), "--data", str(corpus)]) == 0
    lines = dict(line.split() for line in capsys.readouterr().out.splitlines())
    assert {"loss", "ppl", "bpc", "bpb"} <= set(lines) and 0 < float(lines["loss"]) < 4


def test_python_api_streams_the_text_it_returns(trained):
    _, out = trained
    gen = textgen.load(out)
    pieces = []
    text = gen.generate("the", 30, seed=1, on_text=lambda i, piece: pieces.append(piece))
    assert len(text) == 30 and "".join(pieces) == text
    many = gen.generate("the", 10, samples=2, seed=1, temperature=0)
    assert isinstance(many, list) and many[0] == many[1]  # greedy: the same for every sample


def test_python_train_returns_a_generator(tmp_path):
    corpus = _corpus(tmp_path / "c.txt")
    gen = textgen.train(corpus, tmp_path / "run", max_steps=1, hidden=16, layers=1, seq_len=16,
                        batch_size=4, quiet=True, arch="gru")
    assert gen.model.cfg.arch == "gru"
    assert set(gen.metrics["train"]) >= {"val_loss", "val_bpc", "val_ppl"}
    assert (tmp_path / "run" / "loss.png").is_file()
    assert len(gen.generate("the", 7, seed=0)) == 7
    with pytest.raises(UserError, match="unknown"):
        textgen.train(corpus, tmp_path / "run2", hiden=16)


def test_the_registry_loads_a_predictor_of_prompts(trained):
    _, out = trained
    gen = load(out)
    assert isinstance(gen, textgen.TextGenerator) and gen.task == "textgen"
    assert gen.module is gen.model and gen.config["task"] == "textgen" and gen.metrics == {}
    one = gen.predict("the ", 12, seed=4)
    assert isinstance(one, str) and len(one) == 12
    assert one == gen.generate("the ", 12, seed=4)
    many = gen.predict(["the ", "a rat"], 9, temperature=0, top_k=3)
    assert many == [gen.generate(p, 9, temperature=0) for p in ("the ", "a rat")]
    assert gen.predict([]) == []
    unknown = gen.predict(["the", "Q"], 5, seed=0)  # "Q" is read as the unknown symbol
    assert [len(t) for t in unknown] == [5, 5] and gen.unknown_chars("the Q") == {"Q": 1}
    with pytest.raises(UserError, match="a list of prompts, found int"):
        gen.predict(["the", 3], 5)
    with pytest.raises(UserError, match="temperature"):
        gen.predict("the", 5, temperature=-1)


def test_demo_trains_on_python_source_and_starts_over(tmp_path, monkeypatch):
    from rnnkit.data import examples

    real = examples.stdlib_sources
    monkeypatch.setattr(examples, "stdlib_sources", lambda: real(100_000))
    for _ in range(2):  # a rerun replaces the demo's own run rather than failing on it
        lines = textgen.demo(tmp_path, quiet=True, max_time="1s")
    assert re.fullmatch(r"validation: \d+\.\d\d bits per character \(loss \d+\.\d{3} nats\); "
                        r"loss curve in .*textgen_loss\.png", lines[0]), lines[0]
    assert lines[1].startswith("sample:\ndef ") and len(lines) == 2
    assert (tmp_path / "textgen_loss.png").is_file() and (tmp_path / "textgen" / "best").exists()


@pytest.mark.parametrize("kind", ["byte", "bpe"])
def test_byte_and_bpe_models(tmp_path, kind, capsys):
    corpus = _corpus(tmp_path / "c.txt")
    out = tmp_path / "run"
    assert run(["train", "textgen", "--data", str(corpus), "--out", str(out), "--tokenizer", kind,
                "--bpe-vocab", "280", "--max-steps", "1", *TINY]) == 0
    capsys.readouterr()
    assert run(["generate", str(out), "--prompt", "Grüße ", "--length", "8", "--seed", "0"]) == 0
    assert capsys.readouterr().out.startswith("Grüße ")


def test_config_file_with_overrides_and_resume(tmp_path):
    corpus = _corpus(tmp_path / "c.txt")
    cfg = tmp_path / "lm.toml"
    cfg.write_text('arch = "gru"\nhidden = 12\nlayers = 1\nseq_len = 16\nbatch_size = 4\n'
                   'max_steps = 1\nquiet = true\n')
    out = tmp_path / "run"
    assert run(["train", "textgen", "--data", str(corpus), "--out", str(out),
                "--config", str(cfg), "--hidden", "8"]) == 0
    model = json.loads((out / "config.json").read_text())["model"]
    assert (model["arch"], model["hidden"]) == ("gru", 8)  # the flag overrides the file
    # --resume needs neither the data nor the settings again, only a larger budget
    assert run(["train", "textgen", "--out", str(out), "--resume", "--max-steps", "2"]) == 0
    assert textgen.load(out).config["train"]["max_steps"] == 2
    # an older config file names one data path as a string, not a list
    single = tmp_path / "single.toml"
    single.write_text(f'data = "{corpus}"\nhidden = 8\nseq_len = 16\nmax_steps = 1\n'
                      'quiet = true\n')
    assert run(["train", "textgen", "--out", str(tmp_path / "r1"), "--config", str(single)]) == 0
    assert json.loads((tmp_path / "r1" / "config.json").read_text())["textgen"]["data"] == [
        str(corpus)]
    cfg.write_text("hiden = 12\n")
    assert run(["train", "textgen", "--data", str(corpus), "--out", str(tmp_path / "r2"),
                "--config", str(cfg)]) == 2


def _bad_train(tmp_path, case):
    f = tmp_path / "x.txt"
    if case == "missing":
        return [str(tmp_path / "nope.txt")], "does not exist"
    if case == "empty":
        f.write_text("")
        return [str(f)], "is empty"
    if case == "no text files":
        (tmp_path / "d").mkdir()
        (tmp_path / "d" / "a.bin").write_bytes(b"\x00\x01")
        return [str(tmp_path / "d")], "holds no text files"
    if case == "not utf-8":
        f.write_bytes(b"abc\xffdef\n" * 50)
        return [str(f)], r"x\.txt is not UTF-8: byte offset 3"
    if case == "shorter than a window":
        f.write_text("short\n" * 2)
        return [str(f)], "shorter than one window"
    raise AssertionError(case)


@pytest.mark.parametrize("case", ["missing", "empty", "no text files", "not utf-8",
                                  "shorter than a window"])
def test_bad_training_data(tmp_path, capsys, case):
    data, match = _bad_train(tmp_path, case)
    code = run(["train", "textgen", "--data", *data, "--out", str(tmp_path / "run"),
                "--max-steps", "1", *TINY])
    err = capsys.readouterr().err
    assert code == 2, err
    assert err.startswith("error: ") and err.count("\n") == 1 and "Traceback" not in err
    assert re.search(match, err), err
    assert not (tmp_path / "run" / "checkpoints").exists()


def test_non_utf8_with_errors_replace_trains(tmp_path):
    f = tmp_path / "x.txt"
    f.write_bytes(b"abc\xffdef ghi\n" * 50)
    assert run(["train", "textgen", "--data", str(f), "--out", str(tmp_path / "run"),
                "--errors", "replace", "--max-steps", "1", *TINY]) == 0
    assert "\ufffd" in textgen.load(tmp_path / "run").tokenizer.vocab


def test_existing_run_is_not_overwritten(trained, capsys):
    corpus, out = trained
    before = _snapshot(out)
    assert run(["train", "textgen", "--data", str(corpus), "--out", str(out),
                "--max-steps", "1", *TINY]) == 2
    assert "already holds a training run" in capsys.readouterr().err
    assert _snapshot(out) == before


def test_prompt_outside_the_vocabulary(trained, capsys):
    _, out = trained
    before = _snapshot(out)
    assert run(["generate", str(out), "--prompt", "the QUICK", "--length", "5"]) == 0
    captured = capsys.readouterr()
    assert captured.out.startswith("the QUICK") and len(captured.out) == len("the QUICK") + 6
    assert captured.err == ("note: the prompt has 5 characters that the model's vocabulary "
                            "lacks ('Q', 'U', 'I', 'C', 'K'), read as the unknown symbol "
                            "U+FFFD\n")
    assert _snapshot(out) == before


@pytest.mark.parametrize("case", ["missing", "other task", "truncated weights",
                                  "truncated config"])
def test_bad_checkpoint_directory(trained, tmp_path, capsys, case):
    import shutil

    _, out = trained
    run_dir = tmp_path / "copy"
    if case != "missing":
        shutil.copytree(out, run_dir, symlinks=True)
    ckpt = run_dir / "best"
    if case == "other task":
        for f in (ckpt / "config.json", run_dir / "config.json"):
            f.write_text(f.read_text().replace('"task": "textgen"', '"task": "sentiment"'))
    elif case == "truncated weights":
        weights = ckpt / "model.safetensors"
        weights.write_bytes(weights.read_bytes()[:100])
    elif case == "truncated config":
        cfg = ckpt / "config.json"
        cfg.write_text(cfg.read_text()[:50])
    expected = {"missing": "does not exist", "other task": "'sentiment'",
                "truncated weights": "truncated", "truncated config": "truncated"}[case]
    before = _snapshot(run_dir) if run_dir.exists() else {}
    assert run(["generate", str(run_dir), "--prompt", "the", "--length", "5"]) == 2
    err = capsys.readouterr().err
    assert expected in err and err.count("\n") == 1, err
    if case != "other task":  # evaluate dispatches on the task, so another task is not an error
        assert run(["evaluate", str(run_dir), "--data", str(out.parent / "corpus.txt")]) == 2
        assert expected in capsys.readouterr().err
    assert (_snapshot(run_dir) if run_dir.exists() else {}) == before
