"""The models' EASE λ comes from the label window's tuning and travels with the saved models."""

from __future__ import annotations

from dataclasses import asdict

import numpy as np

from batch.pipeline.collab_features import CollabParams
from batch.pipeline.label_tuning import models_collab_params
from batch.ranking.recommenders.registry import EASE_NAME, RECOMMENDERS
from batch.ranking.recommenders.tuning import GridHits


def ease_grid(best: float) -> GridHits:
    """EASE's registry grid on a window of 4 users where only ``best`` finds a hit for everyone."""
    points = RECOMMENDERS[EASE_NAME].grid
    hits = tuple(np.full(4, 1.0 if point["regularization"] == best else 0.0) for point in points)
    return GridHits(EASE_NAME, points, hits)


def test_the_models_take_the_label_windows_best_lambda_and_keep_the_seed() -> None:
    chosen = models_collab_params({EASE_NAME: ease_grid(1000.0)}, seed=9)
    assert chosen == CollabParams(seed=9, ease_regularization=1000.0)
    assert models_collab_params({EASE_NAME: ease_grid(50.0)}, seed=9).ease_regularization == 50.0


def test_the_models_lambda_is_the_best_likes_only_points_when_a_point_with_views_wins() -> None:
    points = RECOMMENDERS[EASE_NAME].grid
    assert any(point["view_weight"] for point in points), "the grid must hold a point with views"
    # Every point with views finds a hit for all 4 users; of the likes-only points, only λ 3,000 finds any (2).
    hits = tuple(
        np.full(4, 1.0 if point["view_weight"] or point["regularization"] == 3000.0 else 0.0)
        * (1.0 if point["view_weight"] else np.array([1.0, 1.0, 0.0, 0.0]))
        for point in points
    )

    chosen = models_collab_params({EASE_NAME: GridHits(EASE_NAME, points, hits)}, seed=9)

    assert chosen.ease_regularization == 3000.0


def test_without_an_ease_grid_the_models_keep_the_default() -> None:
    assert models_collab_params({}, seed=9) == CollabParams(seed=9)


def test_saved_settings_come_back_and_older_versions_get_the_defaults() -> None:
    saved = CollabParams(seed=4, ease_regularization=3000.0)
    assert CollabParams.from_saved(asdict(saved), seed=1) == saved
    assert CollabParams.from_saved({}, seed=4) == CollabParams(seed=4)
