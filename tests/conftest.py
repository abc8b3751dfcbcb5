"""Fixtures shared by the test files."""

import pytest

from rnnkit.threads import one_thread as _one_thread


@pytest.fixture
def one_thread():
    """Torch on one thread for the test: small matrices on a shared 2-core machine gain nothing
    from a second thread, which only adds contention. A file opts in with
    ``pytestmark = pytest.mark.usefixtures("one_thread")``."""
    with _one_thread():
        yield


@pytest.fixture(scope="session")
def smoke_runs(tmp_path_factory):
    """A tiny trained run of every built-in task (on its smoke data), trained once per session
    for the serving and export tests; "speech_stream" is a unidirectional speech run."""
    from rnnkit.tasks import registry

    root = tmp_path_factory.mktemp("smoke_runs")
    runs = {}
    jobs = [(name, name, {}) for name in registry.BUILTIN]
    jobs.append(("speech_stream", "speech", {"bidirectional": False}))
    with _one_thread():
        for key, task, extra in jobs:
            spec = registry.get(task)
            smoke = spec.smoke(root / f"{key}-data")
            train_cfg, cfg = spec.configs({**smoke.settings, **extra, "quiet": True})
            spec.fit(train_cfg, cfg, root / key)
            runs[key] = root / key
    return runs
