"""Prometheus metrics, counted by hand: a dict increment and a bisect per request, rendered only on a scrape.

Each server process counts its own requests; with several workers a scrape sees the worker that answered it,
so the process id is a label and the counts are per process.
"""

from __future__ import annotations

import os
from bisect import bisect_left
from collections.abc import Callable
from time import perf_counter
from typing import Final

from litestar.types import ASGIApp, Message, Receive, Scope, Send

LATENCY_BUCKETS_S: Final = (0.00025, 0.0005, 0.001, 0.002, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1.0)
# Litestar appends "; charset=utf-8" to a text/ media type itself.
CONTENT_TYPE: Final = "text/plain; version=0.0.4"


class Metrics:
    """Counters of one server process."""

    def __init__(self) -> None:
        """Start every count at zero."""
        self.responses: dict[int, int] = {}
        self.errors: dict[str, int] = {}
        self.served_log_failures: dict[str, int] = {}
        self.bucket_counts = [0] * (len(LATENCY_BUCKETS_S) + 1)
        self.latency_sum_s = 0.0

    def observe(self, status: int, seconds: float) -> None:
        """Count one response and its latency."""
        self.responses[status] = self.responses.get(status, 0) + 1
        self.bucket_counts[bisect_left(LATENCY_BUCKETS_S, seconds)] += 1
        self.latency_sum_s += seconds

    def count_error(self, kind: str) -> None:
        """Count one error answered by the exception handler, by its kind (the exception's class)."""
        self.errors[kind] = self.errors.get(kind, 0) + 1

    def count_served_log_failure(self, reason: str, entries: int = 1) -> None:
        """Count answers whose served-log entry Redis did not take, by reason (OOM, READONLY, unreachable, ...)."""
        self.served_log_failures[reason] = self.served_log_failures.get(reason, 0) + entries

    def render(self, live_version: str | None, version_age_s: float | None) -> str:
        """The Prometheus text exposition of every metric."""
        pid = f'pid="{os.getpid()}"'
        lines = [
            "# HELP postrec_http_responses_total HTTP responses by status code.",
            "# TYPE postrec_http_responses_total counter",
            *(f'postrec_http_responses_total{{{pid},status="{s}"}} {n}' for s, n in sorted(self.responses.items())),
            "# HELP postrec_errors_total Errors answered by the API's exception handler, by kind.",
            "# TYPE postrec_errors_total counter",
            *(f'postrec_errors_total{{{pid},kind="{kind}"}} {n}' for kind, n in sorted(self.errors.items())),
            "# HELP postrec_served_log_failures_total Answers served but not logged in the served stream, by reason.",
            "# TYPE postrec_served_log_failures_total counter",
            *(
                f'postrec_served_log_failures_total{{{pid},reason="{reason}"}} {n}'
                for reason, n in sorted(self.served_log_failures.items())
            ),
            *self._latency_lines(pid),
            "# HELP postrec_live_version The version being served (value 1, id in the label).",
            "# TYPE postrec_live_version gauge",
        ]
        if live_version is not None:
            lines.append(f'postrec_live_version{{{pid},version="{live_version}"}} 1')
        if version_age_s is not None:
            lines += [
                "# HELP postrec_live_version_age_seconds Seconds since the live version was created.",
                "# TYPE postrec_live_version_age_seconds gauge",
                f"postrec_live_version_age_seconds{{{pid}}} {version_age_s:.3f}",
            ]
        return "\n".join(lines) + "\n"

    def _latency_lines(self, pid: str) -> list[str]:
        name = "postrec_http_request_duration_seconds"
        lines = [f"# HELP {name} Time from request to the end of the response.", f"# TYPE {name} histogram"]
        cumulative = 0
        for bound, count in zip((*map(str, LATENCY_BUCKETS_S), "+Inf"), self.bucket_counts, strict=True):
            cumulative += count
            lines.append(f'{name}_bucket{{{pid},le="{bound}"}} {cumulative}')
        lines += [f"{name}_sum{{{pid}}} {self.latency_sum_s:.6f}", f"{name}_count{{{pid}}} {cumulative}"]
        return lines


def metrics_middleware(metrics: Metrics) -> Callable[..., ASGIApp]:
    """A route middleware factory that counts every response's status and latency into ``metrics``."""

    def wrap(app: ASGIApp) -> ASGIApp:
        async def measured(scope: Scope, receive: Receive, send: Send) -> None:
            started = perf_counter()
            status = 500

            async def send_recording(message: Message) -> None:
                nonlocal status
                if message["type"] == "http.response.start":
                    status = message["status"]
                await send(message)

            try:
                await app(scope, receive, send_recording)
            finally:
                metrics.observe(status, perf_counter() - started)

        return measured

    return wrap
