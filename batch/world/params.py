"""The global parameters of one generated world, saved as JSON with its truth."""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, fields
from datetime import datetime
from typing import Any

import numpy as np

from batch.world.dist import IntArray
from common.errors import DataValidationError


@dataclass(frozen=True, slots=True)
class WorldParams:
    """Global parameters of one generated world.

    A *group* is the unit of taste and exposure below the topic: the post's sub-topic in the ``text``,
    ``popular`` and ``bursty`` worlds (plus one group of trending hits per topic in ``popular``), a hidden
    cluster of posts drawn apart from the text in ``collab``.

    Attributes:
        world: The world's design (:data:`batch.world.designs.WORLDS`).
        scale: The scale name it was generated at.
        seed: Its random seed.
        period_start: ISO date of the period's first day (midnight).
        period_days: Number of days in the period.
        month_day_starts: Day index where each calendar month of the period starts (the first is 0).
        month_offsets: Like logit offset of each calendar month (solved by calibration).
        exposure_taste_mix: Share of a user's free exposure that follows their interests (the rest follows the
            catalogue).
        exposure_taste_power: How sharply the interest-driven exposure concentrates on the user's groups.
        trend_amplitude: Extra exposure multiplier of a post at the peak of its trend, on top of its popularity.
        trend_rise_days: Days a trend takes to rise linearly to its peak (0: it jumps on the release day).
        day_weights: Share of all views on each day of the period (sums to 1), for users without active days.
        hour_view_shape: Share of a day's views in each hour 06..23 (sums to 1).
        hour_like_effect: Like logit added in each hour 06..23.
        group_topics: Topic index (into ``common.columns.TOPICS``) of each group.
        group_names: Name of each group.
        group_offsets: Like logit offset of each group (solved by calibration so that every group has its target
            like rate: the feed shows groups to the users who like them, which alone would make niche groups'
            posts look far better liked than the real per-post like rates allow).
        group_fixed_shares: Share of every user's views that goes to each group whatever their interests (the
            trending hits of ``popular``); 0 for the groups that share the rest by interest.
    """

    world: str
    scale: str
    seed: int
    period_start: str
    period_days: int
    month_day_starts: tuple[int, ...]
    month_offsets: tuple[float, ...]
    exposure_taste_mix: float
    exposure_taste_power: float
    trend_amplitude: float
    trend_rise_days: float
    day_weights: tuple[float, ...]
    hour_view_shape: tuple[float, ...]
    hour_like_effect: tuple[float, ...]
    group_topics: tuple[int, ...]
    group_names: tuple[str, ...]
    group_offsets: tuple[float, ...]
    group_fixed_shares: tuple[float, ...]

    @property
    def start(self) -> datetime:
        """Midnight of the period's first day."""
        return datetime.fromisoformat(self.period_start)

    def day_month(self, day: IntArray) -> IntArray:
        """Month index (0 = the period's first calendar month) of day indices."""
        return np.searchsorted(np.array(self.month_day_starts), day, side="right") - 1

    def to_json(self) -> str:
        """The parameters as a JSON object."""
        return json.dumps(asdict(self))

    @classmethod
    def from_json(cls, text: str) -> WorldParams:
        """Parse :meth:`to_json`'s output.

        Raises:
            DataValidationError: A field is missing (a world saved by another version of postrec).
        """
        raw = json.loads(text)
        missing = [f.name for f in fields(cls) if f.name not in raw]
        if missing:
            raise DataValidationError(
                f"the saved world lacks {', '.join(missing)}: it was seeded by another postrec version;"
                " run `postrec seed` again"
            )
        # JSON lists back to the tuples the dataclass holds.
        values: dict[str, Any] = {f.name: tuple(v) if isinstance(v := raw[f.name], list) else v for f in fields(cls)}
        return cls(**values)
