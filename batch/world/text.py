"""Post texts that read like their kind: news articles, film reviews, covid tweets, built from templates.

Each slot ``{w}`` takes a word of the post's sub-topic and ``{t}`` a word of its topic, around shared prose. A
sub-topic's words come in :data:`REGISTERS` disjoint synonym sets (its word list dealt out like cards: ``words[r::5]``)
and each post is written in one of them, so two posts of the same sub-topic often share no sub-topic word at all: the
sub-topic shows through meaning (football is football whether the text says striker or penalty), which a sentence
model reads and a bag of words fitted on the catalog sees as five unrelated vocabularies. Python's
``random.Random`` is used for the many tiny choices: it is faster than numpy there.
"""

from __future__ import annotations

import functools
import random
import re
from collections.abc import Sequence

from batch.world.vocab import DAYS, PEOPLE, PLACES, SUBTOPIC_WORDS, TOPIC_WORDS

NEWS_TOPICS = frozenset({"business", "entertainment", "politics", "sport", "tech"})
_SLOT = re.compile(r"\{(\w+)\}")
REGISTERS = 5
"""Disjoint synonym sets per sub-topic; a post uses one."""

_HEADLINES = (
    "{W} {t} under pressure",
    "{P} warns over {w}",
    "{W} hits new high as {w} grows",
    "New row over {w} and {w}",
    "{W} plans unveiled in {place}",
    "{P} backs {w} shake-up",
)
_NEWS_SENTENCES = (
    "The {t} said on {day} that the {w} would be reviewed after {n} months of talks about {w}.",
    "{P}, who has followed the {w} for years, told the BBC that {w} was now the main concern.",
    "Figures published in {place} showed that {w} rose by {n}% while {w} fell.",
    "Analysts said the {w} could change how the {t} deals with {w} next year.",
    '"We have seen nothing like this {w} before," said {P}.',
    "The {t} has been criticised over its handling of the {w}.",
    "Critics argue that the {w} is only part of the story and that {w} matters more.",
    "It is the {n}th time this year that the {w} has made headlines in {place}.",
    "Earlier this week {P} said the {t} would focus on {w} and {w}.",
    "Supporters of the {w} say it will help the {t} in the long run.",
    "The news comes after a difficult year for the {w}, with {w} also under scrutiny.",
    "Officials in {place} expect the {w} to be settled by {day}.",
    "Some {n} people are thought to be affected by the {w}.",
    "The {t} is expected to publish a full report on the {w} later this month.",
    "{P} added that the {w} and the {w} were closely linked.",
)
_REVIEW_OPENINGS = (
    "I watched this {w} movie last night and I have mixed feelings.",
    "This is one of the best {w} films I have seen in years.",
    "What a waste of time. I expected a real {w} film and got nothing.",
    "I rented this because I love {w} and {w}, and I was not disappointed.",
    "Where do I start with this {w} film?",
)
_REVIEW_SENTENCES = (
    "The {w} works well and the {w} keeps you watching.",
    "The {t} is slow at first but the {w} in the second half makes up for it.",
    "The acting is {q}, especially the lead, and the {w} is {q}.",
    "I laughed, I cried, and I did not expect the {w} at the end.",
    "The {t} feels like every other {w} movie you have already seen.",
    "If you like {w} you will probably enjoy the {w} here.",
    "The director clearly loves {w} and it shows in every {t}.",
    "My wife fell asleep halfway through, but I thought the {w} was {q}.",
    "The {w} scenes are {q} and the music fits the {w} perfectly.",
    "Some of the dialogue is {q}, but the {w} carries the {t}.",
    "It is not a perfect film, but the {w} and the {w} make it worth a look.",
)
_REVIEW_CLOSINGS = (
    "{n} out of 10.",
    "Recommended for fans of {w}.",
    "Skip it unless you really love {w}.",
    "I would watch it again.",
    "Overall a {q} {w} film.",
)
_QUALITIES = ("great", "terrible", "brilliant", "awful", "decent", "wonderful", "poor", "superb", "average", "weak")
_TWEETS = (
    "Just got my {w} today, feeling {q}!",
    "Why is nobody talking about {w}? {T} is not over.",
    "{W} numbers in {place} are going up again, please be careful.",
    "Day {n} of {w}. Missing normal life so much.",
    "Can't believe the new {w} rules, {t} fatigue is real.",
    "Reminder: {w} and {w} still matter. Stay safe everyone.",
    "Our {w} is finally over, {t} life goes on.",
    "{n} new {w} reports today. When will this end?",
)


_SLOT_WORDS = {"place": PLACES, "day": DAYS, "q": _QUALITIES}


def generate_text(rand: random.Random, topic: str, subtopic: str) -> str:
    """One post text of the given topic and sub-topic, in one of the sub-topic's registers."""
    words = register_words(topic, subtopic, rand.randrange(REGISTERS))
    if topic in NEWS_TOPICS:
        return _news_article(rand, topic, words)
    if topic == "movie":
        return _movie_review(rand, words)
    return _covid_tweet(rand, words)


@functools.cache
def register_words(topic: str, subtopic: str, register: int) -> tuple[str, ...]:
    """The sub-topic's words of one register: every :data:`REGISTERS`-th word, from the ``register``-th on."""
    return SUBTOPIC_WORDS[topic][subtopic][register::REGISTERS]


def _slot_value(rand: random.Random, slot: str, topic: str, words: Sequence[str]) -> str:
    choice = rand.choice
    if slot == "w":
        return choice(words)
    if slot == "W":
        return choice(words).capitalize()
    if slot in ("t", "T"):
        word = choice(TOPIC_WORDS[topic])
        return word.capitalize() if slot == "T" else word
    if slot == "P":
        return f"{choice('ABCDEJKMPRST')}. {choice(PEOPLE)}"
    if slot == "n":
        return str(rand.randint(2, 90))
    return choice(_SLOT_WORDS[slot])


@functools.cache
def _parsed(template: str) -> tuple[str, ...]:
    """The template split into literal text (even positions) and slot names (odd positions)."""
    return tuple(_SLOT.split(template))


def _render(rand: random.Random, template: str, topic: str, words: Sequence[str]) -> str:
    """Fill each slot of the template; only the slots it uses cost a random draw."""
    parts = _parsed(template)
    return "".join(part if i % 2 == 0 else _slot_value(rand, part, topic, words) for i, part in enumerate(parts))


def _news_article(rand: random.Random, topic: str, words: Sequence[str]) -> str:
    headline = _render(rand, rand.choice(_HEADLINES), topic, words)
    paragraphs = []
    for _ in range(rand.randint(5, 12)):
        count = rand.randint(2, 4)
        paragraphs.append(" ".join(_render(rand, s, topic, words) for s in rand.sample(_NEWS_SENTENCES, count)))
    return headline + "\n\n" + "\n\n".join(paragraphs)


def _movie_review(rand: random.Random, words: Sequence[str]) -> str:
    body = [_render(rand, s, "movie", words) for s in rand.sample(_REVIEW_SENTENCES, rand.randint(4, 9))]
    opening = _render(rand, rand.choice(_REVIEW_OPENINGS), "movie", words)
    closing = _render(rand, rand.choice(_REVIEW_CLOSINGS), "movie", words)
    return " ".join([opening, *body, closing])


def _covid_tweet(rand: random.Random, words: Sequence[str]) -> str:
    tags = {"#" + w.replace(" ", "").replace("-", "") for w in rand.sample(words, rand.randint(1, 3))}
    tags.add(rand.choice(("#covid19", "#coronavirus", "#COVID19", "#pandemic")))
    return _render(rand, rand.choice(_TWEETS), "covid", words) + " " + " ".join(sorted(tags))
