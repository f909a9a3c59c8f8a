"""Fit time and memory of one EASE baseline at a scale's shape, likes only or with views in its Gram matrix.

    .venv/bin/python bench/ease_fit.py --scale full --view-weight 0.2
    .venv/bin/python bench/ease_fit.py --scale full --view-weight 0

Each run fits one point in a fresh process, so its peak is its own. The interactions are random of the scale's shape
(users x posts, 50 liked and 375 viewed posts per user, the real medians, as bench/score.py draws them);
the Gram matrix's cost depends on those counts, not on what the rows mean. The build fits each EASE point of the
grid twice (step tune on the label window, the benchmark on the validation window) and drops it before the next.
"""

from __future__ import annotations

import argparse
import os
import threading
import time
from datetime import datetime

import numpy as np

from batch.ranking.positions import Csr
from batch.ranking.recommenders.ease import EASE
from batch.ranking.recommenders.interactions import Interactions
from batch.world.facts import SCALES


def random_rows(rng: np.random.Generator, users: int, posts: int, per_user: int) -> Csr:
    """A CSR of ``per_user`` distinct random posts per user, sorted within each row."""
    indptr = np.arange(users + 1, dtype=np.int64) * min(per_user, posts)
    rows = [np.sort(rng.choice(posts, size=min(per_user, posts), replace=False)) for _ in range(users)]
    return indptr, np.concatenate(rows).astype(np.int32)


def random_interactions(users: int, posts: int, seed: int) -> Interactions:
    """Users with ~50 likes among ~375 views each, over ``posts`` posts."""
    rng = np.random.default_rng(seed)
    viewed = random_rows(rng, users, posts, 375)
    liked = random_rows(rng, users, posts, 50)
    return Interactions(
        user_ids=np.arange(users, dtype=np.int32),
        post_ids=np.arange(posts, dtype=np.int32),
        cutoff=datetime(2021, 12, 1),
        viewed=viewed,
        liked=liked,
        like_posts=liked[1].astype(np.int64),
        like_age_days=np.zeros(liked[1].size),
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--scale", default="full", choices=sorted(SCALES))
    parser.add_argument("--view-weight", type=float, default=0.2)
    parser.add_argument("--regularization", type=float, default=1000.0)
    args = parser.parse_args()
    scale = SCALES[args.scale]
    interactions = random_interactions(scale.users, scale.posts, seed=1)
    sampler = RssSampler()
    sampler.start()
    started = time.perf_counter()
    EASE(args.regularization, args.view_weight).fit(interactions)
    seconds = time.perf_counter() - started
    sampler.stop()
    print(
        f"EASE λ={args.regularization:g} view_weight={args.view_weight:g} at {args.scale} "
        f"({scale.users:,} users x {scale.posts:,} posts, {interactions.viewed[1].size:,} views): fit {seconds:.1f} s, "
        f"RSS {sampler.first_mb:,.0f} MB before it, peak {sampler.peak_mb:,.0f} MB during it "
        f"({sampler.peak_mb - sampler.first_mb:+,.0f} MB)"
    )


class RssSampler(threading.Thread):
    """The process's resident memory every 20 ms: the first reading and the largest (the C heap grown while the
    interactions were drawn hides a fit's own peak from ``ru_maxrss``)."""

    def __init__(self) -> None:
        super().__init__(daemon=True)
        self.first_mb = self.peak_mb = _rss_mb()
        self._done = threading.Event()

    def run(self) -> None:
        while not self._done.wait(0.02):
            self.peak_mb = max(self.peak_mb, _rss_mb())

    def stop(self) -> None:
        self._done.set()
        self.join()
        self.peak_mb = max(self.peak_mb, _rss_mb())


def _rss_mb() -> float:
    with open("/proc/self/statm") as statm:
        return int(statm.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**20


if __name__ == "__main__":
    main()
