"""Synthetic posts: ids with gaps, topics in the real proportions, a sub-topic each, and a text of its kind."""

from __future__ import annotations

import random
from dataclasses import dataclass

import numpy as np
import polars as pl

from batch.world.dist import IntArray, apportion, spread_ids
from batch.world.facts import FULL_POST_ID_RANGE, FULL_POSTS, TOPIC_COUNTS
from batch.world.text import generate_text
from batch.world.vocab import SUBTOPIC_SHARES, SUBTOPIC_WORDS
from common.columns import TOPICS, Col

SUBTOPICS: tuple[tuple[str, str], ...] = tuple((t, s) for t in TOPICS for s in SUBTOPIC_WORDS[t])
"""Every (topic, sub-topic), topics in :data:`common.columns.TOPICS` order; a post's sub-topic indexes this."""
SUBTOPIC_TOPICS: IntArray = np.array([TOPICS.index(topic) for topic, _ in SUBTOPICS], dtype=np.int64)


@dataclass(frozen=True, slots=True)
class Posts:
    """Columns of ``post_text_df`` plus the sub-topic (an index into :data:`SUBTOPICS`)."""

    post_id: IntArray
    topic: IntArray
    subtopic: IntArray
    text: list[str]

    def __len__(self) -> int:
        return len(self.post_id)

    def to_frame(self) -> pl.DataFrame:
        """The ``post_text_df`` table."""
        return pl.DataFrame(
            {
                Col.POST_ID: self.post_id.astype(np.int32),
                Col.TEXT: self.text,
                Col.TOPIC: np.array(TOPICS)[self.topic],
            }
        )


def generate_posts(rng: np.random.Generator, count: int) -> Posts:
    """``count`` posts; at 7,023 the topic counts are exactly the real ones."""
    last_id = FULL_POST_ID_RANGE[0] + round((FULL_POST_ID_RANGE[1] - FULL_POST_ID_RANGE[0]) * count / FULL_POSTS)
    subtopic = rng.permutation(_subtopic_quota(count))
    text_rand = random.Random(int(rng.integers(2**63)))  # noqa: S311 - reproducible texts, not secrets
    texts = [generate_text(text_rand, *SUBTOPICS[s]) for s in subtopic]
    return Posts(
        post_id=spread_ids(rng, count, FULL_POST_ID_RANGE[0], last_id),
        topic=SUBTOPIC_TOPICS[subtopic],
        subtopic=subtopic,
        text=texts,
    )


def _subtopic_quota(count: int) -> IntArray:
    topic_counts = apportion([TOPIC_COUNTS[t] for t in TOPICS], count)
    per_subtopic = [apportion(SUBTOPIC_SHARES[t], int(n)) for t, n in zip(TOPICS, topic_counts, strict=True)]
    return np.repeat(np.arange(len(SUBTOPICS), dtype=np.int64), np.concatenate(per_subtopic))
