"""Synthetic users: ids and demographics with the real marginals (exact quotas where the real data gives counts)."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import polars as pl

from batch.world.cities import CityTable, city_table, sample_cities
from batch.world.dist import IntArray, apportion, quota_labels, sample_ages, spread_ids
from batch.world.facts import (
    ADS_SHARE,
    ANDROID_SHARE,
    COUNTRY_COUNTS,
    EXP_GROUPS,
    FULL_USER_ID_RANGE,
    FULL_USERS,
    GENDER_ONE_SHARE,
)
from common.columns import Col

COUNTRIES = tuple(COUNTRY_COUNTS)
OS_NAMES = ("Android", "iOS")
SOURCES = ("ads", "organic")


@dataclass(frozen=True, slots=True)
class Users:
    """Columns of ``user_data`` as arrays; categories as indices into the tuples above."""

    user_id: IntArray
    age: IntArray
    gender: IntArray
    country: IntArray
    city: list[str]
    os: IntArray
    source: IntArray
    exp_group: IntArray

    def __len__(self) -> int:
        return len(self.user_id)

    def to_frame(self) -> pl.DataFrame:
        """The ``user_data`` table."""
        return pl.DataFrame(
            {
                Col.USER_ID: self.user_id.astype(np.int32),
                Col.AGE: self.age.astype(np.int32),
                Col.CITY: self.city,
                Col.COUNTRY: np.array(COUNTRIES)[self.country],
                Col.EXP_GROUP: self.exp_group.astype(np.int32),
                Col.GENDER: self.gender.astype(np.int32),
                Col.OS: np.array(OS_NAMES)[self.os],
                Col.SOURCE: np.array(SOURCES)[self.source],
            }
        )


def generate_users(rng: np.random.Generator, count: int) -> Users:
    """``count`` users with ids spread like the real range (scaled), and the real demographic marginals."""
    last_id = FULL_USER_ID_RANGE[0] + round((FULL_USER_ID_RANGE[1] - FULL_USER_ID_RANGE[0]) * count / FULL_USERS)
    country = quota_labels(rng, list(COUNTRY_COUNTS.values()), count)
    return Users(
        user_id=spread_ids(rng, count, FULL_USER_ID_RANGE[0], last_id),
        age=sample_ages(rng, count),
        gender=1 - quota_labels(rng, [GENDER_ONE_SHARE, 1 - GENDER_ONE_SHARE], count),
        country=country,
        city=_assign_cities(rng, country),
        os=quota_labels(rng, [ANDROID_SHARE, 1 - ANDROID_SHARE], count),
        source=quota_labels(rng, [ADS_SHARE, 1 - ADS_SHARE], count),
        exp_group=quota_labels(rng, np.ones(EXP_GROUPS), count),
    )


def city_tables() -> dict[str, CityTable]:
    """Each country's city table, sized for the full-scale user count."""
    return {country: city_table(country, full) for country, full in COUNTRY_COUNTS.items()}


def _assign_cities(rng: np.random.Generator, country: IntArray) -> list[str]:
    cities = np.empty(len(country), dtype=object)
    for index, table in enumerate(city_tables().values()):
        members = np.flatnonzero(country == index)
        cities[members] = np.array(table.names, dtype=object)[sample_cities(rng, table, len(members))]
    return [str(city) for city in cities]


def country_quota(count: int) -> dict[str, int]:
    """How many of ``count`` users each country gets."""
    return dict(zip(COUNTRIES, apportion(list(COUNTRY_COUNTS.values()), count).tolist(), strict=True))
