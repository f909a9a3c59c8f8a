"""``postrec ab-report``: hitrate of the control and test groups from what the API served and what users liked.

The API appends every answer to the capped stream ``<prefix>:served`` (fields time, user, group, version, posts).
A served response is a *hit* when its user liked any of its posts within one hour after it was served (serving
time <= like time < serving time + 1 h), counting likes from ``feed_data``. A user is a hit when any of the user's
responses in the window was; a group's hitrate is the share of its users who are hits, the course checker's
per-user definition. The report compares test with control (difference, 95% interval, two-proportion z-test) and
checks each version's group sizes against the split it was published with (sample-ratio mismatch).
"""

from __future__ import annotations

import logging
import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Final

import polars as pl
import redis
from sqlalchemy.engine import Engine

from batch.ab.stats import Difference, SampleRatioCheck, sample_ratio_check, two_proportion_test, wilson_interval
from batch.pipeline.extract import copy_query
from common.ab import CONTROL, TEST
from common.columns import Action, Col, Table
from common.errors import PostrecError
from common.keys import KeyLayout

log = logging.getLogger(__name__)

HIT_WINDOW: Final = timedelta(hours=1)
XRANGE_PAGE: Final = 1000
GROUPS: Final = (CONTROL, TEST)


class ServedField:
    """Field names of a served-stream entry, as the API writes them (common.serving.served_log_command)."""

    TIME: Final = "time"
    USER: Final = "user"
    GROUP: Final = "group"
    VERSION: Final = "version"
    POSTS: Final = "posts"


class Served:
    """Columns of the parsed served log."""

    ENTRY: Final = "entry"
    GROUP: Final = "group"
    VERSION: Final = "version"
    POSTS: Final = "posts"
    HIT: Final = "hit"
    LIKED_AT: Final = "liked_at"


SERVED_SCHEMA: Final = {
    Served.ENTRY: pl.String(),
    Col.TIMESTAMP: pl.Datetime("us"),
    Col.USER_ID: pl.Int32(),
    Served.GROUP: pl.String(),
    Served.VERSION: pl.String(),
    Served.POSTS: pl.List(pl.Int32()),
}
LIKE_SCHEMA: Final = {Col.TIMESTAMP: pl.Datetime("us"), Col.USER_ID: pl.Int32(), Col.POST_ID: pl.Int32()}


class NoServedResponsesError(PostrecError):
    """The served log has nothing in the requested window."""


@dataclass(frozen=True, slots=True)
class GroupResult:
    """One experiment group's figures.

    Attributes:
        group: ``control`` or ``test``.
        users: Users served at least once in the window.
        hit_users: Users with at least one hit response.
        hitrate: ``hit_users / users``.
        hitrate_low: Lower end of the 95% Wilson interval of the hitrate.
        hitrate_high: Upper end.
        responses: Responses served.
        hit_responses: Responses that were hits.
    """

    group: str
    users: int
    hit_users: int
    hitrate: float
    hitrate_low: float
    hitrate_high: float
    responses: int
    hit_responses: int


@dataclass(frozen=True, slots=True)
class AbReport:
    """The whole A/B comparison for one window of serving time."""

    since: str
    until: str
    hit_window_minutes: float
    groups: list[GroupResult]
    difference: Difference
    sample_ratio: list[SampleRatioCheck]
    notes: list[str] = field(default_factory=list)

    @property
    def sample_ratio_mismatch(self) -> bool:
        """True when any version's group sizes do not fit its split."""
        return any(check.mismatch for check in self.sample_ratio)


def parse_entry(entry_id: bytes | str, fields: Mapping[bytes, bytes]) -> tuple[object, ...]:
    """One stream entry as a row of :data:`SERVED_SCHEMA`.

    The entry's time is its ``time`` field (the request's own time, converted to naive UTC like ``feed_data``), or
    the stream id's millisecond clock when the request carried no time.
    """
    ident = entry_id.decode() if isinstance(entry_id, bytes) else entry_id
    text = {key.decode(): value.decode() for key, value in fields.items()}
    posts = [int(post) for post in text.get(ServedField.POSTS, "").split(",") if post]
    return (
        ident,
        _served_time(text.get(ServedField.TIME, ""), ident),
        int(text[ServedField.USER]),
        text[ServedField.GROUP],
        text.get(ServedField.VERSION, ""),
        posts,
    )


def as_naive_utc(moment: datetime) -> datetime:
    """A time as ``feed_data`` stores it: naive, in UTC (a naive input is taken as already so)."""
    return moment if moment.tzinfo is None else moment.astimezone(UTC).replace(tzinfo=None)


def _served_time(stamp: str, entry_id: str) -> datetime:
    if not stamp:
        return as_naive_utc(datetime.fromtimestamp(int(entry_id.split("-")[0]) / 1000, UTC))
    return as_naive_utc(datetime.fromisoformat(stamp))


def read_served(
    client: redis.Redis[bytes], keys: KeyLayout, since: datetime, until: datetime, page: int = XRANGE_PAGE
) -> pl.DataFrame:
    """The served responses with ``since <= time < until``, read with XRANGE in pages of ``page`` entries.

    The whole capped stream is paged through: entry times are the requests' own times, which need not follow
    the stream ids.
    """
    rows: list[tuple[object, ...]] = []
    for entries in _pages(client, keys.served, page):
        rows.extend(parse_entry(ident, fields) for ident, fields in entries)
    frame = pl.DataFrame(rows, schema=SERVED_SCHEMA, orient="row")
    log.info("served log read: entries=%d", frame.height)
    return frame.filter(pl.col(Col.TIMESTAMP).is_between(since, until, closed="left"))


def _pages(client: redis.Redis[bytes], stream: str, page: int) -> Iterable[list[tuple[bytes, dict[bytes, bytes]]]]:
    start = "-"
    while True:
        entries = client.xrange(stream, min=start, max="+", count=page)
        if entries:
            yield entries
        if len(entries) < page:
            return
        start = "(" + entries[-1][0].decode()  # exclusive start: the next page begins after the last id


def load_likes_after(engine: Engine, served: pl.DataFrame, window: timedelta = HIT_WINDOW) -> pl.DataFrame:
    """Likes by the served users from the first serving to one hit window after the last."""
    if served.is_empty():
        return pl.DataFrame(schema=LIKE_SCHEMA)
    sql = (
        f'SELECT "{Col.TIMESTAMP}", {Col.USER_ID}, {Col.POST_ID} FROM {Table.FEED} '
        f'WHERE {Col.ACTION} = %(like)s AND "{Col.TIMESTAMP}" >= %(start)s AND "{Col.TIMESTAMP}" < %(end)s '
        f"AND {Col.USER_ID} = ANY(%(users)s)"
    )
    params = {
        "like": Action.LIKE,
        "start": served[Col.TIMESTAMP].min(),
        "end": served[Col.TIMESTAMP].max() + window,  # type: ignore[operator]
        "users": served[Col.USER_ID].unique().sort().to_list(),
    }
    return copy_query(engine, sql, LIKE_SCHEMA, params)


def mark_hits(served: pl.DataFrame, likes: pl.DataFrame, window: timedelta = HIT_WINDOW) -> pl.DataFrame:
    """The served log with a boolean ``hit``: its user liked one of its posts within ``window`` after serving."""
    shown = served.select(Served.ENTRY, Col.USER_ID, Col.TIMESTAMP, pl.col(Served.POSTS).alias(Col.POST_ID))
    liked = likes.select(Col.USER_ID, Col.POST_ID, pl.col(Col.TIMESTAMP).alias(Served.LIKED_AT))
    matched = (
        shown.explode(Col.POST_ID)
        .join(liked, on=[Col.USER_ID, Col.POST_ID], how="inner")
        .filter(
            pl.col(Served.LIKED_AT) >= pl.col(Col.TIMESTAMP),
            pl.col(Served.LIKED_AT) < pl.col(Col.TIMESTAMP) + window,
        )
    )
    return served.with_columns(pl.col(Served.ENTRY).is_in(matched[Served.ENTRY].implode()).alias(Served.HIT))


def group_results(marked: pl.DataFrame) -> list[GroupResult]:
    """Figures of the control and test groups (zeros for a group nobody was served in)."""
    users = marked.group_by(Served.GROUP, Col.USER_ID).agg(pl.col(Served.HIT).any())
    return [_group_result(group, marked, users) for group in GROUPS]


def _group_result(group: str, marked: pl.DataFrame, users: pl.DataFrame) -> GroupResult:
    responses = marked.filter(pl.col(Served.GROUP) == group)
    members = users.filter(pl.col(Served.GROUP) == group)
    hit_users = int(members[Served.HIT].sum())
    low, high = wilson_interval(hit_users, members.height)
    return GroupResult(
        group=group,
        users=members.height,
        hit_users=hit_users,
        hitrate=hit_users / members.height if members.height else math.nan,
        hitrate_low=low,
        hitrate_high=high,
        responses=responses.height,
        hit_responses=int(responses[Served.HIT].sum()),
    )


def sample_ratio_checks(marked: pl.DataFrame, control_percents: Mapping[str, int]) -> list[SampleRatioCheck]:
    """One check per version served in the window, on its distinct users per group."""
    counts = marked.group_by(Served.VERSION, Served.GROUP).agg(pl.col(Col.USER_ID).n_unique().alias("users"))
    checks = []
    for version in sorted(control_percents):
        per_group = dict(counts.filter(pl.col(Served.VERSION) == version).select(Served.GROUP, "users").iter_rows())
        checks.append(
            sample_ratio_check(version, per_group.get(CONTROL, 0), per_group.get(TEST, 0), control_percents[version])
        )
    return checks


def version_control_percents(
    client: redis.Redis[bytes], keys: KeyLayout, versions: Iterable[str], default: int
) -> tuple[dict[str, int], list[str]]:
    """Each version's published ``control_percent``; ``default`` (with a note) where its metadata is gone."""
    percents: dict[str, int] = {}
    notes: list[str] = []
    for version in sorted(set(versions)):
        raw = client.hget(keys.meta(version), "control_percent")
        if raw is None:
            notes.append(f"version {version} has no metadata left in Redis: its split is taken as {default}%")
        percents[version] = default if raw is None else int(raw)
    return percents, notes


def build_ab_report(
    client: redis.Redis[bytes],
    engine: Engine,
    keys: KeyLayout,
    since: datetime,
    until: datetime,
    default_control_percent: int,
) -> AbReport:
    """Read the served log and the likes, and compute every figure of the report.

    Args:
        client: Redis holding the served stream and the versions' metadata.
        engine: PostgreSQL with ``feed_data``.
        keys: The deployment's key layout.
        since: First serving time included.
        until: First serving time excluded.
        default_control_percent: Split assumed for a version whose metadata was already deleted.

    Raises:
        NoServedResponsesError: Nothing was served in the window.
    """
    served = read_served(client, keys, since, until)
    if served.is_empty():
        raise NoServedResponsesError(
            f"no served responses between {since} and {until} in {keys.served}: widen --since/--until, "
            "or check that the API is serving this prefix"
        )
    marked = mark_hits(served, load_likes_after(engine, served))
    percents, notes = version_control_percents(client, keys, marked[Served.VERSION].to_list(), default_control_percent)
    groups = group_results(marked)
    control, test = groups
    return AbReport(
        since=since.isoformat(),
        until=until.isoformat(),
        hit_window_minutes=HIT_WINDOW.total_seconds() / 60,
        groups=groups,
        difference=two_proportion_test(control.hit_users, control.users, test.hit_users, test.users),
        sample_ratio=sample_ratio_checks(marked, percents),
        notes=notes,
    )
