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
