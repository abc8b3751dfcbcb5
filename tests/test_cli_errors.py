"""One sentence per mistake: bad flags, files where folders belong (and folders where files
belong), outputs that cannot be written and out-of-range settings end in one line on standard
error and exit code 2, before any work is done."""

import pytest

from rnnkit.cli import run
from rnnkit.cli.files import writable
from rnnkit.data.audio import read_audio
from rnnkit.data.series import read_table
from rnnkit.data.table import read_labelled
from rnnkit.errors import UserError
from rnnkit.tasks.textgen import TextGenConfig
from rnnkit.train import TrainConfig
from rnnkit.train.config import load_config_file

pytestmark = pytest.mark.usefixtures("one_thread")


def _one_line(argv, capsys) -> str:
    assert run(argv) == 2
    captured = capsys.readouterr()
    assert captured.err.count("\n") == 1 and captured.err.startswith("error: "), captured.err
    return captured.err


@pytest.mark.parametrize(("argv", "says"), [
    (["train", "textgen", "--epochs", "abc"], "Invalid value for '--epochs'"),
    (["train", "textgen", "--hiden", "3"], "No such option: --hiden"),
    (["generate"], "Missing argument"),
])
def test_a_bad_flag_is_one_line_that_points_to_the_help(argv, says, capsys):
    err = _one_line(argv, capsys)
    assert says in err and "--help')" in err


def test_a_command_without_arguments_still_shows_its_help(capsys):
    assert run(["train"]) == 2
    assert "textgen" in capsys.readouterr().out


def test_out_that_is_a_file(tmp_path, capsys):
    corpus = tmp_path / "corpus.txt"
    corpus.write_text("the cat sat\n" * 50)
    err = _one_line(["train", "textgen", "--data", str(corpus), "--out", str(corpus)], capsys)
    assert f"--out {corpus} is a file; expected a directory" in err
    assert corpus.read_text() == "the cat sat\n" * 50


@pytest.mark.parametrize("argv", [
    ["translate", "RUN", "--input", "IN", "--output", "DIR"],
    ["translate", "RUN", "--text", "hallo", "--plot-attention", "DIR"],
    ["classify", "RUN", "--input", "IN", "--output", "DIR"],
    ["transcribe", "RUN", "IN", "--output", "DIR"],
])
def test_an_output_that_is_a_directory_is_refused_before_loading(argv, tmp_path, capsys):
    # the run directory does not even exist: the output is checked first
    names = {"RUN": str(tmp_path / "no-run"), "IN": str(tmp_path / "in.txt"),
             "DIR": str(tmp_path)}
    err = _one_line([names.get(a, a) for a in argv], capsys)
    assert f"{tmp_path} is a directory, expected a file name to write" in err


def test_writable_makes_missing_folders_and_names_a_file_in_the_way(tmp_path):
    writable(tmp_path / "new" / "deeper" / "out.csv")
    assert (tmp_path / "new" / "deeper").is_dir()
    (tmp_path / "plain").write_text("x")
    with pytest.raises(UserError, match="part of .*plain is a file, not a folder"):
        writable(tmp_path / "plain" / "out.csv")


def test_a_directory_where_a_file_belongs_is_named_as_such(tmp_path):
    for read in (load_config_file, read_table, read_labelled,
                 lambda p: read_audio(p, 16000)):
        with pytest.raises(UserError, match="is a directory, expected a file"):
            read(tmp_path)
        with pytest.raises(UserError, match="does not exist"):
            read(tmp_path / "missing")


@pytest.mark.parametrize(("setting", "value", "says"), [
    ("weight_decay", -1.0, "weight_decay must be zero or more"),
    ("beta1", 2.0, r"beta1 must be in \[0, 1\)"),
    ("beta2", -0.5, r"beta2 must be in \[0, 1\)"),
    ("momentum", -1.0, "momentum must be zero or more"),
    ("plateau_factor", 1.5, r"plateau_factor must be in \(0, 1\)"),
    ("gamma", 0.0, "gamma must be a positive number"),
])
def test_optimizer_settings_torch_would_reject(setting, value, says):
    with pytest.raises(UserError, match=says):
        TrainConfig(**{setting: value})


def test_evaluating_on_no_validation_tokens_is_refused():
    with pytest.raises(UserError, match="eval_tokens must be at least 1"):
        TextGenConfig(eval_tokens=0)
    assert TextGenConfig(eval_tokens=None).eval_tokens is None  # none: all of them
