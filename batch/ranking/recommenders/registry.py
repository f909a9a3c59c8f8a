"""Every recommender by name, with the small grid it is tuned over: add one by adding an entry."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from itertools import product
from typing import Final

from batch.ranking.recommenders.als import ALS
from batch.ranking.recommenders.ease import EASE
from batch.ranking.recommenders.item_knn import ItemKNN
from batch.ranking.recommenders.popularity import Popularity, RecentPopularity
from batch.ranking.recommenders.recommender import Recommender

Params = Mapping[str, float]


@dataclass(frozen=True, slots=True)
class RecommenderSpec:
    """How to make a recommender from its parameters and a seed, and the grid it is tuned over (first = the
    default; a tie in tuning keeps the earlier point)."""

    make: Callable[[Params, int], Recommender]
    grid: tuple[Params, ...]


def grid(**axes: tuple[float, ...]) -> tuple[Params, ...]:
    """Every combination of the axes' values, the first value of each axis first."""
    names = list(axes)
    return tuple(dict(zip(names, values, strict=True)) for values in product(*axes.values()))


POPULARITY: Final = "popularity"
RECENT_POPULARITY: Final = "recent_popularity"
ITEM_KNN: Final = "item_knn"
ALS_NAME: Final = "als"
EASE_NAME: Final = "ease"

RECOMMENDERS: dict[str, RecommenderSpec] = {
    POPULARITY: RecommenderSpec(lambda _params, _seed: Popularity(), ({},)),
    RECENT_POPULARITY: RecommenderSpec(
        lambda params, _seed: RecentPopularity(params["half_life_days"]), grid(half_life_days=(3.0, 1.0, 7.0, 30.0))
    ),
    ITEM_KNN: RecommenderSpec(
        lambda params, _seed: ItemKNN(int(params["neighbours"]), params["view_weight"]),
        grid(neighbours=(100.0, 20.0, 400.0), view_weight=(0.0, 0.2)),
    ),
    ALS_NAME: RecommenderSpec(
        lambda params, seed: ALS(int(params["factors"]), params["regularization"], params["alpha"], seed),
        grid(factors=(32.0, 64.0), regularization=(0.05,), alpha=(5.0, 20.0)),
    ),
    EASE_NAME: RecommenderSpec(
        lambda params, _seed: EASE(params["regularization"], params["view_weight"]),
        grid(regularization=(300.0, 50.0, 1000.0, 3000.0), view_weight=(0.0,))
        + grid(regularization=(300.0, 1000.0), view_weight=(0.2,)),
    ),
}
"""Seen-aware baselines, each tuned on the build's label and validation windows
(``batch.ranking.recommenders.tuning``)."""
