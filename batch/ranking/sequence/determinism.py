"""A seeded, deterministic torch run on CPU that leaves the process's torch settings as it found them."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import torch


@contextmanager
def deterministic(seed: int, threads: int) -> Iterator[None]:
    """Within the block: torch's global generator seeded, deterministic algorithms only, ``threads`` threads.

    The global generator is forked, so dropout draws the same numbers for the same seed whatever ran before, and the
    caller's random state is back afterwards.
    """
    previous_threads = torch.get_num_threads()
    previous_mode = torch.are_deterministic_algorithms_enabled()
    torch.set_num_threads(threads)
    torch.use_deterministic_algorithms(True)
    try:
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(seed)
            yield
    finally:
        torch.use_deterministic_algorithms(previous_mode)
        torch.set_num_threads(previous_threads)
