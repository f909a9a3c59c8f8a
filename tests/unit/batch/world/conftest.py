"""Worlds generated once per test session: each `small` world takes seconds, and several modules read them."""

from __future__ import annotations

from collections.abc import Callable

import polars as pl
import pytest

from batch.world.generator import generate_tables
from batch.world.truth import WorldTruth

Tables = tuple[pl.DataFrame, pl.DataFrame, pl.DataFrame, WorldTruth]


@pytest.fixture(scope="session")
def small_world() -> Callable[[str], Tables]:
    """``small_world(name)``: the `small` world ``name`` at seed 42 (users, posts, feed, truth), cached."""
    cache: dict[str, Tables] = {}

    def get(name: str) -> Tables:
        if name not in cache:
            cache[name] = generate_tables("small", 42, name)
        return cache[name]

    return get
