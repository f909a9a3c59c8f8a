"""The sequence recommender on hand-made feeds: its inputs, what it learns, what it must not see, and its seed."""

from __future__ import annotations

from dataclasses import replace
from datetime import datetime, timedelta

import numpy as np
import polars as pl
import pytest

from batch.ranking.sequence.histories import FIRST_GAP, LIKED, PAD, VIEWED, build_histories, mark_liked
from batch.ranking.sequence.params import SequenceParams
from batch.ranking.sequence.targets import next_liked

pytest.importorskip("torch", reason="the sequence model needs the dl extra")

from batch.ranking.sequence.readout import read_vectors
from batch.ranking.sequence.training import train_model
from batch.ranking.sequence.vectors import SequenceVectors

START = datetime(2021, 10, 1)
CUTOFF = datetime(2022, 1, 1)
SCHEMA = {"user_id": pl.Int32, "post_id": pl.Int32, "timestamp": pl.Datetime("us")}
N_USERS, N_POSTS = 500, 60
USERS = np.arange(N_USERS, dtype=np.int32)
POSTS = np.arange(1, N_POSTS + 1, dtype=np.int32)
# Small enough to train in seconds, large enough to learn the planted rule.
PLANTED = SequenceParams(length=20, dim=32, epochs=20, batch=32, negatives=30, learning_rate=5e-3, dropout=0.1)


def frame(rows: list[tuple[int, int, datetime]]) -> pl.DataFrame:
    return pl.DataFrame(rows, schema=SCHEMA, orient="row")


def planted_feed(seed: int = 0, events: int = 30) -> tuple[pl.DataFrame, pl.DataFrame, np.ndarray]:
    """Every third view is liked, and a liked post is always the one after the previous liked post (mod 60);
    the views between are random and not liked. Returns views, likes, and each user's next liked post."""
    rng = np.random.default_rng(seed)
    views, likes, upcoming = [], [], np.zeros(N_USERS, dtype=np.int64)
    for user in range(N_USERS):
        post, moment = int(rng.integers(N_POSTS)), START
        for event in range(events):
            moment += timedelta(minutes=int(rng.integers(5, 120)))
            if event % 3 == 2:
                post = (post + 1) % N_POSTS
                views.append((user, post + 1, moment))
                likes.append((user, post + 1, moment + timedelta(seconds=90)))
            else:
                views.append((user, int(rng.integers(N_POSTS)) + 1, moment))
        upcoming[user] = (post + 1) % N_POSTS + 1
    return frame(views), frame(likes), upcoming


def hitrate_at_5(vectors: SequenceVectors, wanted: np.ndarray) -> float:
    top = vectors.post_ids[np.argsort(-vectors.scores(np.arange(vectors.user_ids.size)), axis=1)[:, :5]]
    return float((top == wanted[:, None]).any(axis=1).mean())


@pytest.fixture(scope="module")
def planted() -> tuple[SequenceVectors, np.ndarray]:
    views, likes, upcoming = planted_feed()
    histories = build_histories(mark_liked(views, likes, CUTOFF), USERS, POSTS, PLANTED.length)
    return read_vectors(train_model(histories, None, PLANTED), histories, 1), upcoming


def test_histories_keep_the_last_events_before_the_cutoff_most_recent_last() -> None:
    t = START
    views = frame([(7, 1, t), (7, 2, t + timedelta(minutes=1)), (7, 3, t + timedelta(minutes=16)), (9, 2, t)])
    likes = frame([(7, 2, t + timedelta(minutes=2))])
    history = build_histories(mark_liked(views, likes, CUTOFF), np.array([5, 7, 9]), np.array([1, 2, 3]), 4)

    assert history.posts.tolist() == [[PAD] * 4, [PAD, 1, 2, 3], [PAD, PAD, PAD, 2]]
    assert history.actions[1].tolist() == [PAD, VIEWED, LIKED, VIEWED]
    # 1 minute: 2 + floor(log2(2)) = 3; 15 minutes: 2 + floor(log2(16)) = 6.
    assert history.gaps[1].tolist() == [PAD, FIRST_GAP, 3, 6]
    two = build_histories(mark_liked(views, likes, CUTOFF), np.array([7]), np.array([1, 2, 3]), 2)
    assert two.posts.tolist() == [[2, 3]] and two.gaps[0, 0] == FIRST_GAP


def test_nothing_at_or_after_the_cutoff_enters_a_history() -> None:
    cutoff = START + timedelta(days=1)
    before = frame([(1, 1, START), (1, 2, START + timedelta(hours=1))])
    after = frame([(1, 3, cutoff), (1, 2, cutoff + timedelta(hours=1))])
    # The like of post 2 comes after the cutoff: the view must not read as liked (the feed's target would say so).
    late_like = frame([(1, 2, cutoff + timedelta(minutes=1))])

    alone = build_histories(mark_liked(before, late_like.clear(), cutoff), np.array([1]), POSTS, 5)
    more = build_histories(mark_liked(pl.concat([before, after]), late_like, cutoff), np.array([1]), POSTS, 5)

    for name in ("posts", "actions", "gaps"):
        np.testing.assert_array_equal(getattr(more, name), getattr(alone, name))
    assert LIKED not in more.actions


def test_each_position_predicts_the_next_liked_post_after_it() -> None:
    views = frame([(1, post, START + timedelta(minutes=post)) for post in (4, 5, 6, 7)])
    likes = frame([(1, 5, START + timedelta(minutes=9)), (1, 7, START + timedelta(minutes=9))])
    history = build_histories(mark_liked(views, likes, CUTOFF), np.array([1]), POSTS, 5)

    # Tokens are post positions + 1: post 5 -> 5, post 7 -> 7 (POSTS start at 1).
    assert next_liked(history).tolist() == [[5, 5, 7, 7, PAD]]


def test_the_model_learns_a_planted_next_item_rule(planted) -> None:
    vectors, upcoming = planted
    assert hitrate_at_5(vectors, upcoming) > 0.4  # random: 5 / 60 = 0.083


def test_a_shuffled_hold_out_falls_to_random(planted) -> None:
    vectors, upcoming = planted
    shuffled = np.random.default_rng(3).permutation(upcoming)
    assert hitrate_at_5(vectors, shuffled) < 0.2


def test_the_same_seed_gives_the_same_scores_and_another_seed_others() -> None:
    views, likes, _ = planted_feed(events=12)
    histories = build_histories(mark_liked(views, likes, CUTOFF), USERS[:100], POSTS, 12)
    quick = SequenceParams(length=12, dim=16, epochs=1, batch=32, negatives=20, seed=5)

    def scores(params: SequenceParams) -> np.ndarray:
        return read_vectors(train_model(histories, None, params), histories, 1).scores(np.arange(100))

    first = scores(quick)
    np.testing.assert_array_equal(first, scores(quick))
    assert not np.allclose(first, scores(replace(quick, seed=6)))


def test_post_vectors_start_from_the_text_embeddings() -> None:
    views, likes, _ = planted_feed(events=6)
    histories = build_histories(mark_liked(views, likes, CUTOFF), USERS[:50], POSTS, 6)
    # Two well-separated groups of posts by text; no training step: the start is what is compared.
    text = np.zeros((N_POSTS, 8), dtype=np.float32)
    text[: N_POSTS // 2, 0], text[N_POSTS // 2 :, 1] = 1.0, 1.0
    model = train_model(histories, text, SequenceParams(length=6, dim=4, epochs=0))
    vectors = read_vectors(model, histories, 1).post_vectors[:, :-1]
    unit = vectors / np.linalg.norm(vectors, axis=1, keepdims=True)
    same, other = unit[0] @ unit[1], unit[0] @ unit[-1]
    assert same > 0.99 and other < 0


def test_mark_liked_marks_only_pairs_liked_before_the_cutoff():
    day = timedelta(days=1)
    schema = {"timestamp": pl.Datetime("us"), "user_id": pl.Int32, "post_id": pl.Int32}
    views = pl.DataFrame(
        [(CUTOFF - 3 * day, 1, 10), (CUTOFF - 2 * day, 1, 11), (CUTOFF - day, 2, 10), (CUTOFF + day, 1, 12)],
        schema=schema,
        orient="row",
    )
    likes = pl.DataFrame(
        [(CUTOFF - 2 * day, 1, 10), (CUTOFF - day, 1, 10), (CUTOFF + day, 2, 10), (CUTOFF - day, 3, 11)],
        schema=schema,
        orient="row",
    )

    marked = mark_liked(views, likes, CUTOFF)

    # User 2 likes post 10 only after the cutoff; the view after the cutoff is dropped.
    assert marked.select("user_id", "post_id", "liked").rows() == [(1, 10, True), (1, 11, False), (2, 10, False)]
