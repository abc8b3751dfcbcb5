import pytest

from rnnkit.cli import run


def test_help_exits_zero(capsys):
    assert run(["--help"]) == 0
    assert "diagnose" in capsys.readouterr().out


def test_unknown_command_is_a_user_mistake(capsys):
    assert run(["no-such-verb"]) == 2
    assert "no-such-verb" in capsys.readouterr().err


def test_a_torchrun_worker_ends_through_end_process(monkeypatch):
    """A rank whose training is over (WorkerDone) and rank 0 alike leave through
    distributed.end_process, which skips the interpreter's finalization, when in a group."""
    import rnnkit.cli as cli
    from rnnkit.train import distributed

    ended = []

    def end_process(code):
        ended.append(code)
        raise SystemExit(code)

    monkeypatch.setattr(distributed, "end_process", end_process)
    for joined, outcome, code in ((True, distributed.WorkerDone(), 0), (True, 2, 2),
                                  (False, 2, 2)):
        def fake_run(outcome=outcome):
            if isinstance(outcome, BaseException):
                raise outcome
            return outcome

        monkeypatch.setattr(cli, "run", fake_run)
        monkeypatch.setattr(distributed, "joined", lambda joined=joined: joined)
        with pytest.raises(SystemExit) as exit_:
            cli.main()
        assert exit_.value.code == code
    assert ended == [0, 2]


@pytest.mark.parametrize("given, expected", [("none", None), ("NONE", None), ("30", 30.0)])
def test_a_number_setting_that_can_be_off_takes_none(monkeypatch, tmp_path, given, expected):
    import rnnkit.cli.train as train_cli

    seen = {}
    monkeypatch.setattr(train_cli, "_fit", lambda spec, train_cfg, cfg, out, resume:
                        seen.update(cfg=cfg, train=train_cfg))
    assert run(["train", "speech", "--data", "m.csv", "--out", str(tmp_path / "run"),
                "--range-db", given, "--epochs", "none"]) == 0
    assert seen["cfg"].range_db == expected
    assert seen["train"].epochs is None
