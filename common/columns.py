"""Table and column names of the source schema, defined once so polars code never spells them twice."""

from __future__ import annotations

from typing import Final


class Table:
    """Source tables in PostgreSQL, named exactly as in the course's dataset."""

    USERS: Final = "user_data"
    POSTS: Final = "post_text_df"
    FEED: Final = "feed_data"


class Col:
    """Column names of the source tables and of frames derived from them."""

    USER_ID: Final = "user_id"
    POST_ID: Final = "post_id"
    AGE: Final = "age"
    CITY: Final = "city"
    COUNTRY: Final = "country"
    EXP_GROUP: Final = "exp_group"
    GENDER: Final = "gender"
    OS: Final = "os"
    SOURCE: Final = "source"
    TEXT: Final = "text"
    TOPIC: Final = "topic"
    TIMESTAMP: Final = "timestamp"
    ACTION: Final = "action"
    TARGET: Final = "target"


class Action:
    """Values of ``feed_data.action``."""

    VIEW: Final = "view"
    LIKE: Final = "like"
    ALL: Final = (VIEW, LIKE)


TOPICS: Final = ("business", "covid", "entertainment", "movie", "politics", "sport", "tech")
