"""Groups: the unit of taste and exposure below the topic (see :class:`batch.world.params.WorldParams`).

In the ``text``, ``popular`` and ``bursty`` worlds a post's group is the sub-topic its text was written from;
``popular`` adds one group for the trending hits of every topic, so that hits compete with each other for the
trending share of the feed (its topic is :data:`NO_TOPIC`). In ``collab`` the groups are hidden clusters of each topic's
posts, drawn apart from the texts, so a text says nothing about its group beyond the topic.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final

import numpy as np

from batch.world.designs import Communities
from batch.world.dist import IntArray, quota_labels
from batch.world.posts import SUBTOPIC_TOPICS, SUBTOPICS, Posts
from common.columns import TOPICS

TRENDING: Final = "trending"
"""Name of the trending group."""
NO_TOPIC: Final = -1
"""Topic index of a group whose posts span topics: a topic-level view keeps its tastes as they are."""


@dataclass(frozen=True, slots=True)
class Grouping:
    """Every post's group, and each group's topic and name."""

    post_group: IntArray
    group_topics: IntArray
    group_names: tuple[str, ...]

    def __len__(self) -> int:
        return len(self.group_topics)


def subtopic_grouping(posts: Posts) -> Grouping:
    """One group per sub-topic: the post's group is its text's sub-topic."""
    return Grouping(posts.subtopic.copy(), SUBTOPIC_TOPICS, tuple(f"{t}/{s}" for t, s in SUBTOPICS))


def hidden_grouping(rng: np.random.Generator, posts: Posts, communities: Communities) -> Grouping:
    """Each topic's posts split evenly at random into its hidden groups, whatever their texts say."""
    per_topic = np.array(communities.groups_per_topic, dtype=np.int64)
    first = np.concatenate([[0], np.cumsum(per_topic)[:-1]])
    post_group = np.empty(len(posts), dtype=np.int64)
    for topic, count in enumerate(per_topic.tolist()):
        members = np.flatnonzero(posts.topic == topic)
        post_group[members] = first[topic] + quota_labels(rng, np.ones(count), len(members))
    topics = np.repeat(np.arange(len(TOPICS), dtype=np.int64), per_topic)
    names = tuple(f"{TOPICS[t]}/group-{g - first[t] + 1}" for g, t in enumerate(topics.tolist()))
    return Grouping(post_group, topics, names)


def with_trending_group(grouping: Grouping) -> Grouping:
    """The grouping plus an empty trending group, numbered last (hits move in later)."""
    return Grouping(
        grouping.post_group,
        np.append(grouping.group_topics, NO_TOPIC),
        (*grouping.group_names, TRENDING),
    )
