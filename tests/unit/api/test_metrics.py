"""Hand-rolled Prometheus metrics: counts, cumulative histogram buckets and the exposition format."""

from __future__ import annotations

import re

import pytest

from api.metrics import LATENCY_BUCKETS_S, Metrics


def samples(text: str) -> dict[str, float]:
    out = {}
    for line in text.splitlines():
        if not line.startswith("#"):
            name, value = line.rsplit(" ", 1)
            out[re.sub(r'pid="\d+",?', "", name).replace("{}", "")] = float(value)
    return out


@pytest.mark.parametrize(
    ("seconds", "first_bucket"),
    [(0.0001, "0.00025"), (0.00025, "0.00025"), (0.0003, "0.0005"), (0.0015, "0.002"), (0.3, "1.0"), (5.0, "+Inf")],
)
def test_latency_lands_in_the_first_bucket_at_or_above_it(seconds: float, first_bucket: str) -> None:
    metrics = Metrics()
    metrics.observe(200, seconds)
    got = samples(metrics.render(None, None))
    bounds = [*map(str, LATENCY_BUCKETS_S), "+Inf"]
    counts = [got[f'postrec_http_request_duration_seconds_bucket{{le="{b}"}}'] for b in bounds]
    assert counts == [0.0] * bounds.index(first_bucket) + [1.0] * (len(bounds) - bounds.index(first_bucket))


def test_counts_by_status_and_error_kind_with_sum_and_count() -> None:
    metrics = Metrics()
    for status, seconds in [(200, 0.001), (200, 0.002), (404, 0.003)]:
        metrics.observe(status, seconds)
    metrics.count_error("UnknownUserError")
    got = samples(metrics.render("v7", 12.5))
    assert got['postrec_http_responses_total{status="200"}'] == 2
    assert got['postrec_http_responses_total{status="404"}'] == 1
    assert got['postrec_errors_total{kind="UnknownUserError"}'] == 1
    assert got["postrec_http_request_duration_seconds_count"] == 3
    assert got["postrec_http_request_duration_seconds_sum"] == pytest.approx(0.006)
    assert got['postrec_live_version{version="v7"}'] == 1
    assert got["postrec_live_version_age_seconds"] == 12.5


def test_every_sample_has_help_and_type_and_no_version_before_publishing() -> None:
    metrics = Metrics()
    metrics.observe(503, 0.01)
    text = metrics.render(None, None)
    assert "postrec_live_version{" not in text
    declared = set(re.findall(r"^# TYPE (\S+) ", text, flags=re.MULTILINE))
    for line in text.splitlines():
        if not line.startswith("#"):
            name = re.split(r"[{ ]", line)[0]
            assert re.sub(r"_(bucket|sum|count)$", "", name) in declared
