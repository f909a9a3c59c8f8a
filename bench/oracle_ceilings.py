"""How far a model can get when it knows users' tastes only topic by topic, not sub-topic by sub-topic.

The `control` model sees a user's views and likes per topic (7 of them) but not the post's sub-topic (40 in the
synthetic world, visible only in the text). This script ranks posts by the ground truth with the users' sub-topic
tastes and/or exposure interests blurred to their topic means (everything about posts and exposure stays exact),
and prints the hitrate@5 each ranking reaches on the hold-out of `postrec evaluate` (users with a new like in
[T, T + window), posts seen before T left out), with the gap closure against evaluate's popular baseline. Each is
a ceiling: a model without that knowledge cannot pass it in expectation.

    .venv/bin/python bench/oracle_ceilings.py                      # the database of POSTREC_DATABASE_URL
    .venv/bin/python bench/oracle_ceilings.py --as-of 2021-12-23 --window-days 7

The database must hold a world seeded by `postrec seed` (its truth is stored there).
"""

from __future__ import annotations

import argparse
from dataclasses import replace
from datetime import datetime, timedelta

import numpy as np
import numpy.typing as npt
import polars as pl

from batch.evaluation.evaluate import oracle_ranking, seen_before_mask
from batch.evaluation.holdout import Holdout, build_holdout
from batch.pipeline.extract import load_feed, load_posts
from batch.ranking.baselines import popular_ranking
from batch.ranking.metrics import gap_closure, hit_matrix, hitrate_per_user
from batch.world.store import load_truth
from batch.world.truth import WorldTruth, topic_level_truth
from common.columns import Action, Col
from common.db import make_engine
from common.settings import load_settings

LIMIT = 5


def knowledge_levels(truth: WorldTruth) -> dict[str, WorldTruth]:
    """The truth as rankings with less and less knowledge of the users see it."""
    return {
        "oracle (everything)": truth,
        "group (sub-topic) tastes blurred": topic_level_truth(truth, tastes=True, interests=False),
        "group (sub-topic) interests blurred": topic_level_truth(truth, tastes=False, interests=True),
        "both blurred (topic level)": topic_level_truth(truth),
        "no user knowledge at all": replace(
            truth,
            user_group_taste=np.zeros_like(truth.user_group_taste),
            user_interest=np.zeros_like(truth.user_interest),
            user_topic_taste=np.zeros_like(truth.user_topic_taste),
        ),
    }


def unliked_first(
    lists: npt.NDArray[np.int64], user_ids: npt.NDArray[np.int64], liked: pl.DataFrame
) -> npt.NDArray[np.int64]:
    """The first LIMIT posts of each list that the user has not liked: what the API serves."""
    by_user = dict(liked.group_by(Col.USER_ID).agg(pl.col(Col.POST_ID)).iter_rows())
    return np.array(
        [
            [p for p in row if p not in set(by_user.get(int(u), ()))][:LIMIT]
            for u, row in zip(user_ids, lists.tolist(), strict=True)
        ]
    )


def hitrate(served: npt.NDArray[np.int64], holdout: Holdout) -> float:
    return float(hitrate_per_user(hit_matrix(served, holdout.relevant)).mean())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--as-of", type=datetime.fromisoformat, default=datetime(2021, 12, 23))
    parser.add_argument("--window-days", type=int, default=7)
    args = parser.parse_args()
    engine = make_engine(load_settings().database_url)
    window = (args.as_of, args.as_of + timedelta(days=args.window_days))
    history = load_feed(engine, end=window[0], action=Action.LIKE)
    holdout = build_holdout(history, load_feed(engine, start=window[0], end=window[1], action=Action.LIKE))
    if holdout.user_ids.size == 0:
        raise SystemExit(f"no user has a new like in [{window[0]}, {window[1]}): seed a world or pick --as-of")
    post_ids = np.sort(load_posts(engine)[Col.POST_ID].to_numpy().astype(np.int64))
    seen = seen_before_mask(engine, holdout.user_ids, post_ids, window[0])
    liked = history.select(Col.USER_ID, Col.POST_ID)
    long_lists = popular_ranking(liked, holdout.user_ids, post_ids, LIMIT * 40)
    popular = hitrate(unliked_first(long_lists, holdout.user_ids, liked), holdout)
    results = {
        name: hitrate(oracle_ranking(known, seen, holdout.user_ids, post_ids, LIMIT, window), holdout)
        for name, known in knowledge_levels(load_truth(engine)).items()
    }
    ceiling = results["oracle (everything)"]
    print(f"as of {window[0]:%Y-%m-%d}, {args.window_days} days: {holdout.user_ids.size} users, {post_ids.size} posts")
    print(f"{'popular (evaluate baseline)':<30} hitrate@5 {popular:.4f}")
    for name, value in results.items():
        print(f"{name:<30} hitrate@5 {value:.4f}  gap closure {gap_closure(value, popular, ceiling):.3f}")


if __name__ == "__main__":
    main()
