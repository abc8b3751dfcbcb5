"""Torch's CPU thread count, set for a block and put back after it."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import torch


@contextmanager
def one_thread() -> Iterator[None]:
    """Run torch on one thread inside the block, then restore the count.

    For small models and short signals the work per call is too small to share out, and on a
    machine whose cores are busy with other work the waiting threads made it up to 10x slower.
    """
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(threads)
