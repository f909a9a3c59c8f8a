"""Every calibrated fact of a synthetic world next to its real value, at any scale, without PostgreSQL.

    .venv/bin/python bench/world_calibration.py --scale full
    .venv/bin/python bench/world_calibration.py --world bursty     # any world of the family (default: text)

Generates the world and streams its feed chunk by chunk (bounded memory), accumulating the statistics that
DESIGN.md's "Facts of the real dataset" lists. Prints one line per fact: the world's value, then the real one.
"""

from __future__ import annotations

import argparse
import time
from dataclasses import dataclass, field

import numpy as np
import polars as pl

from batch.world import facts
from batch.world.designs import DEFAULT_WORLD, WORLDS
from batch.world.generator import generate_feed, generate_world
from common.logs import rss_mb

VIEW = pl.col("action") == "view"
LIKE = pl.col("action") == "like"


@dataclass
class Tally:
    """Running sums over the feed's chunks."""

    views_per_user: list[np.ndarray] = field(default_factory=list)
    post_views: dict[int, int] = field(default_factory=dict)
    post_likes: dict[int, int] = field(default_factory=dict)
    month_views: dict[str, int] = field(default_factory=dict)
    month_likes: dict[str, int] = field(default_factory=dict)
    user_days: list[np.ndarray] = field(default_factory=list)
    hour_views: np.ndarray = field(default_factory=lambda: np.zeros(24))
    hour_likes: np.ndarray = field(default_factory=lambda: np.zeros(24))
    repeats: int = 0
    rows: int = 0
    delays: list[np.ndarray] = field(default_factory=list)
    first: object = None
    last: object = None


def add_chunk(tally: Tally, frame: pl.DataFrame) -> None:
    views = frame.filter(VIEW)
    tally.rows += frame.height
    tally.views_per_user.append(views.group_by("user_id").len()["len"].to_numpy())
    tally.repeats += views.height - views.select(pl.struct("user_id", "post_id").n_unique()).item()
    per_post = frame.group_by("post_id").agg(views=VIEW.sum(), likes=LIKE.sum())
    for post, post_views, post_likes in per_post.iter_rows():
        tally.post_views[post] = tally.post_views.get(post, 0) + post_views
        tally.post_likes[post] = tally.post_likes.get(post, 0) + post_likes
    hour = views["timestamp"].dt.hour().to_numpy()
    np.add.at(tally.hour_views, hour, 1)
    np.add.at(tally.hour_likes, hour, views["target"].to_numpy())
    months = views.group_by(pl.col("timestamp").dt.strftime("%Y-%m")).agg(pl.len(), pl.col("target").sum())
    for month, month_views, month_likes in months.iter_rows():
        tally.month_views[month] = tally.month_views.get(month, 0) + month_views
        tally.month_likes[month] = tally.month_likes.get(month, 0) + month_likes
    days = views.group_by("user_id").agg(pl.col("timestamp").dt.date().n_unique())
    tally.user_days.append(days["timestamp"].to_numpy())
    if len(tally.delays) < 5:
        pairs = frame.filter(LIKE).join(views.filter(pl.col("target") == 1), on=["user_id", "post_id"])
        tally.delays.append((pairs["timestamp"] - pairs["timestamp_right"]).dt.total_seconds().to_numpy())
    tally.first = min(filter(None, [tally.first, frame["timestamp"].min()]))
    tally.last = max(filter(None, [tally.last, frame["timestamp"].max()]))


def report(users: pl.DataFrame, posts: pl.DataFrame, tally: Tally) -> None:
    def line(name: str, value: object, real: object) -> None:
        print(f"{name:<34} {value!s:<32} real: {real}")

    ages = users["age"]
    line("users", users.height, facts.FULL_USERS)
    line("user ids", f"{users['user_id'].min()}..{users['user_id'].max()}", "200..168552")
    line("gender 1 share", round(users["gender"].mean(), 4), round(facts.GENDER_ONE_SHARE, 4))
    line("age mean/median/mode", (round(ages.mean(), 2), ages.median(), ages.mode()[0]), (27.2, 24, 20))
    line(
        "age quartiles, range",
        (ages.quantile(0.25, "lower"), ages.quantile(0.75, "lower"), ages.min(), ages.max()),
        (19, 33, 14, 95),
    )
    countries = dict(users["country"].value_counts().iter_rows())
    line(
        "countries (top 3)",
        {c: countries[c] for c in list(facts.COUNTRY_COUNTS)[:3]},
        {c: facts.COUNTRY_COUNTS[c] for c in list(facts.COUNTRY_COUNTS)[:3]},
    )
    russians = users.filter(pl.col("country") == "Russia")["city"]
    line("Moscow share of Russians", round((russians == "Moscow").mean(), 4), 0.1529)
    line("distinct cities", users["city"].n_unique(), facts.FULL_DISTINCT_CITIES)
    line(
        "Android / ads share",
        (round((users["os"] == "Android").mean(), 4), round((users["source"] == "ads").mean(), 4)),
        (round(facts.ANDROID_SHARE, 4), round(facts.ADS_SHARE, 4)),
    )
    line("posts / topics", (posts.height, dict(posts["topic"].value_counts().iter_rows())), facts.TOPIC_COUNTS)
    line(
        "posts in the feed (share)",
        (len(tally.post_views), round(len(tally.post_views) / posts.height, 4)),
        (6_831, round(facts.SHOWN_POST_SHARE, 4)),
    )
    per_user = np.concatenate(tally.views_per_user)
    views = per_user.sum()
    line("feed rows (per user)", (tally.rows, round(tally.rows / users.height, 1)), ("~76M", 470))
    line(
        "views/user min/mean/median",
        (int(per_user.min()), round(float(per_user.mean()), 1), float(np.median(per_user))),
        (35, 420, 375),
    )
    line("repeat views share", round(tally.repeats / views, 4), facts.REPEAT_VIEW_SHARE)
    rates = [round(tally.month_likes[m] / tally.month_views[m], 4) for m in sorted(tally.month_views)]
    line("like rate by month", rates if len(rates) <= 3 else f"{rates[:2]}..{rates[-2:]}", facts.MONTH_LIKE_RATES)
    line("like rate overall", round(sum(tally.month_likes.values()) / views, 4), 0.12)
    user_days = np.concatenate(tally.user_days)
    line(
        "active days/user median, <=5 share",
        (float(np.median(user_days)), round(float((user_days <= 5).mean()), 3)),
        "not published",
    )
    hourly = tally.hour_likes[6:] / np.maximum(tally.hour_views[6:], 1)
    line(
        "like rate 06-11 vs 18-23",
        (round(float(hourly[:6].mean()), 4), round(float(hourly[12:].mean()), 4)),
        "higher in the evening",
    )
    delays = np.concatenate(tally.delays)
    line("like delay quartiles (s)", np.percentile(delays, [25, 50, 75]).tolist(), facts.LIKE_DELAY_QUARTILES)
    post_views = np.array(list(tally.post_views.values()))
    post_likes = np.array([tally.post_likes[p] for p in tally.post_views])
    enough = post_views >= 1_000
    share = post_likes[enough] / (post_views[enough] + post_likes[enough])
    line(
        "per-post like share (>=1000 views)",
        (round(float(share.mean()), 4), round(float(share.min()), 4), round(float(share.max()), 4)),
        (0.10, 0.063, 0.143),
    )
    line(
        "per-post share p1..p99",
        (round(float(np.percentile(share, 1)), 4), round(float(np.percentile(share, 99)), 4)),
        "",
    )
    line("time range", (str(tally.first), str(tally.last)), "2021-10-01 06:01 .. 2021-12-29 23:51")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--scale", default="small", choices=tuple(facts.SCALES))
    parser.add_argument("--seed", type=int, default=42)
    parser.add_argument("--world", default=DEFAULT_WORLD, choices=tuple(WORLDS))
    args = parser.parse_args()
    started = time.perf_counter()
    world = generate_world(args.scale, args.seed, args.world)
    tally = Tally()
    for frame in generate_feed(world):
        add_chunk(tally, frame)
    print(
        f"world={args.world} scale={args.scale} seed={args.seed}: "
        f"generated and tallied in {time.perf_counter() - started:.0f} s, rss_mb={rss_mb():.0f}"
    )
    report(world.users.to_frame(), world.posts.to_frame(), tally)


if __name__ == "__main__":
    main()
