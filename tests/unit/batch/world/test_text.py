"""Post texts: the kind of text per topic, and the sub-topic's vocabulary in it, one register per post."""

from __future__ import annotations

import random
import re

import numpy as np
import pytest

from batch.world.facts import FULL_POSTS, TOPIC_COUNTS
from batch.world.posts import SUBTOPICS, generate_posts
from batch.world.text import NEWS_TOPICS, REGISTERS, generate_text, register_words
from batch.world.vocab import SUBTOPIC_WORDS, TOPIC_WORDS


def _texts(topic: str, count: int = 40) -> list[str]:
    rand = random.Random(3)
    subtopics = list(SUBTOPIC_WORDS[topic])
    return [generate_text(rand, topic, subtopics[i % len(subtopics)]) for i in range(count)]


@pytest.mark.parametrize("topic", sorted(NEWS_TOPICS))
def test_news_articles_have_hundreds_of_words(topic):
    words = [len(text.split()) for text in _texts(topic)]
    assert min(words) >= 100
    assert np.mean(words) >= 200


def test_covid_texts_are_short_tweets_with_hashtags():
    for text in _texts("covid"):
        assert len(text.split()) <= 40
        assert re.search(r"#\w+", text)


def test_movie_texts_are_reviews():
    texts = _texts("movie")
    assert all(60 <= len(text.split()) <= 400 for text in texts)
    assert sum(("film" in text or "movie" in text) for text in texts) == len(texts)


def test_the_subtopic_is_recoverable_from_the_text():
    """Counting each sub-topic's words finds the right sub-topic: text carries signal beyond the topic label."""
    rand = random.Random(4)
    hits = 0
    for index in range(300):
        topic, subtopic = SUBTOPICS[index % len(SUBTOPICS)]
        text = generate_text(rand, topic, subtopic).lower()
        counts = {name: sum(text.count(word) for word in words) for name, words in SUBTOPIC_WORDS[topic].items()}
        hits += max(counts, key=counts.__getitem__) == subtopic
    assert hits / 300 >= 0.95


def _occurrences(text: str, words: tuple[str, ...]) -> int:
    return sum(len(re.findall(rf"\b{re.escape(word)}\b", text)) for word in words)


def test_each_text_is_written_in_one_register_of_its_subtopic():
    """A sub-topic's words are dealt into disjoint registers and a text draws from one: the same meaning in words
    another post of the sub-topic may not share. Words that are also topic words (or template prose) can appear
    in any text, so a text's own register holds nearly all, not all, of its sub-topic words."""
    rand = random.Random(5)
    shares = []
    for index in range(200):
        topic, subtopic = SUBTOPICS[index % len(SUBTOPICS)]
        registers = [register_words(topic, subtopic, r) for r in range(REGISTERS)]
        assert sorted(word for words in registers for word in words) == sorted(SUBTOPIC_WORDS[topic][subtopic])
        text = generate_text(rand, topic, subtopic).lower()
        counts = [_occurrences(text, tuple(w for w in words if w not in TOPIC_WORDS[topic])) for words in registers]
        shares.append(max(counts) / max(sum(counts), 1))
    assert np.mean(shares) >= 0.95


def test_full_scale_posts_have_the_real_topic_counts():
    posts = generate_posts(np.random.default_rng(6), FULL_POSTS)
    frame = posts.to_frame()
    counts = dict(frame["topic"].value_counts().iter_rows())
    assert counts == TOPIC_COUNTS
    assert frame["post_id"].min() == 1
    assert frame["post_id"].max() == 7_319
    assert frame["post_id"].is_unique().all()
