"""Text the vocabulary was not built from: a character met only in the validation split, prompts
and evaluation files with characters the model lacks, in new runs (an unknown symbol) and in runs
saved before it (the characters are left out), for char, byte and BPE models."""

import json
import math
import random
from pathlib import Path

import pytest

from rnnkit.cli import run
from rnnkit.data.tokenizers import UNKNOWN
from rnnkit.tasks import textgen

pytestmark = pytest.mark.usefixtures("one_thread")

TINY = ["--hidden", "16", "--layers", "1", "--seq-len", "16", "--batch-size", "4", "--quiet",
        "--max-steps", "1"]
OLD_RUN = Path(__file__).parent / "fixtures" / "old_runs" / "textgen"
WORDS = "the cat sat on a mat and ate the rat while dogs ran".split()


def _corpus(path: Path, tail: str = "") -> Path:
    """Sentences of WORDS; ``tail`` goes in the last tenth only (the validation split)."""
    rng = random.Random(0)
    lines = [" ".join(rng.choice(WORDS) for _ in range(8)) for _ in range(60)]
    lines[-2] += tail
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    root = tmp_path_factory.mktemp("unknown")
    corpus = _corpus(root / "corpus.txt", tail=" snake_case")
    out = root / "run"
    assert run(["train", "textgen", "--data", str(corpus), "--out", str(out), *TINY]) == 0
    return corpus, out


def test_a_character_only_in_the_validation_split_is_in_the_vocabulary(trained, capsys):
    corpus, out = trained
    text = corpus.read_text()
    assert "_" in text[int(len(text) * 0.9):] and "_" not in text[:int(len(text) * 0.9)]
    tokenizer = json.loads((out / "config.json").read_text())["tokenizer"]
    assert tokenizer["vocab"] == sorted(set(text) | {UNKNOWN}) and tokenizer["unk"] == UNKNOWN
    assert textgen.load(out).evaluate(corpus)["unknown_chars"] == 0


def test_a_validation_file_with_its_own_characters(tmp_path):
    corpus, val = _corpus(tmp_path / "c.txt"), tmp_path / "val.txt"
    val.write_text("the zebra ran to the café!\n" * 5, encoding="utf-8")
    gen = textgen.train(corpus, tmp_path / "run", val=val, hidden=16, layers=1, seq_len=16,
                        batch_size=4, max_steps=1, quiet=True)
    assert set("zébf!") <= set(gen.tokenizer.vocab)
    assert math.isfinite(gen.metrics["train"]["val_bpc"])


def test_evaluating_a_file_with_unknown_characters_counts_them(trained, tmp_path, capsys):
    _, out = trained
    other = tmp_path / "other.txt"
    other.write_text("the QUICK cat ate 3 rats!\n" * 4, encoding="utf-8")  # 7 unknown a line
    metrics = textgen.load(out).evaluate(other)
    assert metrics["unknown_chars"] == 4 * 7 and math.isfinite(metrics["bpc"])
    assert metrics["tokens"] == len(other.read_text())  # each is scored, as the unknown symbol
    capsys.readouterr()
    assert run(["evaluate", str(out), "--data", str(other)]) == 0
    assert "unknown_chars 28\n" in capsys.readouterr().out


def test_a_prompt_of_unknown_characters_generates(trained):
    _, out = trained
    gen = textgen.load(out)
    assert len(gen.generate("QQQ", 6, seed=0)) == 6
    assert gen.unknown_note("héllo Q!") == ("the prompt has 3 characters that the model's "
                                           "vocabulary lacks ('é', 'Q', '!'), read as the "
                                           "unknown symbol U+FFFD")
    assert gen.unknown_note("the cat") is None


def test_an_old_run_leaves_unknown_characters_out(tmp_path, capsys):
    gen = textgen.load(OLD_RUN)
    assert gen.tokenizer.unk is None
    assert gen.generate("the QUICK cat", 5, temperature=0) == gen.generate("the  cat", 5,
                                                                           temperature=0)
    other, known = tmp_path / "other.txt", tmp_path / "known.txt"
    other.write_text("the dog ate the ham. Quick!\n" * 3, encoding="utf-8")
    known.write_text("the dog ate the ham. c\n" * 3, encoding="utf-8")
    left_out, scored = gen.evaluate(other), gen.evaluate(known)
    # the scores are those of the text without them, per character and byte of that text
    assert left_out.pop("unknown_chars") == 3 * 5 and scored.pop("unknown_chars") == 0
    assert left_out == pytest.approx(scored)
    assert run(["generate", str(OLD_RUN), "--prompt", "the Quick", "--length", "3"]) == 0
    captured = capsys.readouterr()
    assert captured.out.startswith("the Quick") and captured.err == (
        "note: the prompt has 4 characters that the model's vocabulary lacks ('Q', 'u', 'i', "
        "'k'), left out (this run's vocabulary has no unknown symbol)\n")


def test_an_old_run_with_a_prompt_of_unknown_characters_only(capsys):
    assert run(["generate", str(OLD_RUN), "--prompt", "XYZ", "--length", "3"]) == 2
    captured = capsys.readouterr()
    assert captured.out == ""
    assert captured.err == ("error: the prompt has none of the 15 characters of the model's "
                            "vocabulary\n")


@pytest.mark.parametrize("kind", ["byte", "bpe"])
def test_byte_and_bpe_models_know_every_character(kind, tmp_path, capsys):
    corpus, out = _corpus(tmp_path / "c.txt"), tmp_path / kind
    assert run(["train", "textgen", "--data", str(corpus), "--out", str(out), *TINY,
                "--tokenizer", kind, "--bpe-vocab", "300"]) == 0
    gen = textgen.load(out)
    assert gen.unknown_note("Grüße, 東京 😀") is None
    other = tmp_path / "other.txt"
    other.write_text("Grüße aus 東京 😀\n" * 3, encoding="utf-8")
    assert gen.evaluate(other)["unknown_chars"] == 0
    text = gen.generate("東京 😀", 4, seed=0)
    assert isinstance(text, str)
