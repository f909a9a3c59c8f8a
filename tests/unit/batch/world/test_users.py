"""Synthetic users and their cities."""

from __future__ import annotations

import numpy as np
import pytest

from batch.world.cities import expected_distinct_cities
from batch.world.facts import COUNTRY_COUNTS, FULL_DISTINCT_CITIES, FULL_USER_ID_RANGE
from batch.world.users import COUNTRIES, city_tables, country_quota, generate_users


@pytest.fixture(scope="module")
def users():
    return generate_users(np.random.default_rng(5), 4000)


def test_full_scale_expects_about_the_real_number_of_cities():
    expected = expected_distinct_cities(city_tables(), dict(COUNTRY_COUNTS))
    assert expected == pytest.approx(FULL_DISTINCT_CITIES, rel=0.02)


def test_cities_belong_to_the_users_country(users):
    tables = city_tables()
    for country, city in zip(users.country, users.city, strict=True):
        assert city in tables[COUNTRIES[country]].names
    frame = users.to_frame()
    assert set(frame.filter(frame["city"] == "Moscow")["country"]) == {"Russia"}
    assert set(frame.filter(frame["city"] == "Minsk")["country"]) == {"Belarus"}


def test_city_names_are_unique_across_countries():
    names = [name for table in city_tables().values() for name in table.names]
    assert len(names) == len(set(names))


def test_country_counts_are_exact_quotas(users):
    counts = np.bincount(users.country, minlength=len(COUNTRIES))
    assert dict(zip(COUNTRIES, counts.tolist(), strict=True)) == country_quota(4000)


def test_user_frame_has_the_schema_values(users):
    frame = users.to_frame()
    assert frame.columns == ["user_id", "age", "city", "country", "exp_group", "gender", "os", "source"]
    assert set(frame["os"]) == {"Android", "iOS"}
    assert set(frame["source"]) == {"ads", "organic"}
    assert set(frame["exp_group"]) == {0, 1, 2, 3, 4}
    assert set(frame["gender"]) == {0, 1}
    assert frame["user_id"].min() == FULL_USER_ID_RANGE[0]
    assert frame["user_id"].is_unique().all()
