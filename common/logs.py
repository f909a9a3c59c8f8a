"""Logging set-up for entry points, and the periodic progress reporter used by long batch work."""

from __future__ import annotations

import ctypes
import logging
import math
import resource
import sys
import time
from collections.abc import Iterable, Iterator, Mapping
from typing import TypeVar

import psutil

T = TypeVar("T")


def configure_logging(level: str = "INFO") -> None:
    """Configure stdlib logging once, at an entry point."""
    logging.basicConfig(
        level=level.upper(),
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
        stream=sys.stderr,
        force=True,
    )


def rss_mb() -> float:
    """Resident memory of this process in MiB."""
    return float(psutil.Process().memory_info().rss) / 2**20


def peak_rss_mb() -> float:
    """The highest resident memory of this process so far, in MiB (Linux reports it in KiB)."""
    return float(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss) / 2**10


def release_free_heap() -> None:
    """Hand memory freed on the C heap back to the operating system (glibc only; elsewhere a no-op).

    glibc keeps freed blocks for reuse, so after a step that allocated and freed a lot (torch's activations when
    embedding, numpy temporaries) the process would carry that high-water mark into every later step.
    """
    try:
        libc = ctypes.CDLL("libc.so.6")
    except OSError:
        return
    trim = getattr(libc, "malloc_trim", None)
    if trim is not None:
        trim(0)


def progress(items: Iterable[T], total: int, label: str, logger: logging.Logger, every_s: float = 5.0) -> Iterator[T]:
    """Yield items, reporting progress: a bar on a terminal, a log line every ``every_s`` seconds otherwise."""
    on_tty = sys.stderr.isatty()
    started = last = time.perf_counter()
    for done, item in enumerate(items, start=1):
        yield item
        now = time.perf_counter()
        if on_tty:
            _draw_bar(label, done, total)
        elif now - last >= every_s or done == total:
            logger.info("%s: %d/%d (%.0f%%) in %.1f s", label, done, total, 100 * done / max(total, 1), now - started)
            last = now
    if on_tty:
        sys.stderr.write("\n")


def _draw_bar(label: str, done: int, total: int, width: int = 30) -> None:
    filled = width * done // max(total, 1)
    sys.stderr.write(f"\r{label} [{'#' * filled}{'.' * (width - filled)}] {done}/{total}")
    sys.stderr.flush()


def format_figures(figures: Mapping[str, float], separator: str = ", ") -> str:
    """``name=value`` pairs for a log line or a report: counts as integers, other figures to 4 decimals."""
    return separator.join(f"{name}={_figure(value)}" for name, value in figures.items())


def _figure(value: float) -> str:
    whole = math.isfinite(value) and value.is_integer() and abs(value) >= 1
    return f"{int(value)}" if whole else f"{value:.4f}"
