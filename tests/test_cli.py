from rnnkit.cli import run


def test_help_exits_zero(capsys):
    assert run(["--help"]) == 0
    assert "diagnose" in capsys.readouterr().out


def test_unknown_command_is_a_user_mistake(capsys):
    assert run(["no-such-verb"]) == 2
    assert "no-such-verb" in capsys.readouterr().err
