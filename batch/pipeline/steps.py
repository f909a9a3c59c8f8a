"""The log line of each step of the batch: rows, seconds, RSS and the process's peak RSS so far."""

from __future__ import annotations

import gc
import logging
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Final

from common.logs import peak_rss_mb, release_free_heap, rss_mb

log = logging.getLogger("batch.pipeline.build")
COLLECT_AFTER_S: Final = 1.0


@dataclass
class StepRows:
    """What a step reports in its log line."""

    rows: int = 0


@contextmanager
def step(name: str) -> Iterator[StepRows]:
    """Log a step's rows, seconds, RSS and the process's peak RSS so far once its block ends."""
    started, done = time.perf_counter(), StepRows()
    yield done
    seconds = time.perf_counter() - started
    # Arrays held by cyclic garbage are freed only when the collector runs, and a batch allocates too few Python
    # objects to run it often. At full scale, with the tune step's 19 fits, the build peaked at 3,997 MiB without
    # this pass and at 3,895 MiB with it, as it did without the tune step (bench/RESULTS.md, stop 41). A pass costs
    # about 0.2 s once torch is loaded, so a step shorter than a second (every step of the tests' tiny builds, the
    # save step at full scale) skips it: it cannot have allocated much.
    if seconds >= COLLECT_AFTER_S:
        gc.collect()
    release_free_heap()
    log.info(
        "step %s: rows=%d seconds=%.2f rss_mb=%.0f peak_mb=%.0f", name, done.rows, seconds, rss_mb(), peak_rss_mb()
    )
