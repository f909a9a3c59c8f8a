"""Freeing one cutoff's sets keeps every other cutoff's, of every kind."""

from __future__ import annotations

from typing import Any, cast

import polars as pl

from batch.pipeline.cutoffs import Cutoff
from batch.pipeline.feature_sets import FeatureSets
from batch.pipeline.samples import Samples


def test_without_drops_the_cutoff_from_base_embeddings_and_collab() -> None:
    held: Any = {cutoff: object() for cutoff in Cutoff}
    sets = FeatureSets(cast(Any, object()), dict(held), dict(held), collab=dict(held))
    rest = sets.without(Cutoff.TRAIN)
    for kind in (rest.base, rest.embeddings, rest.collab):
        assert dict(kind) == {Cutoff.VALID: held[Cutoff.VALID], Cutoff.SCORE: held[Cutoff.SCORE]}
    assert Cutoff.TRAIN in sets.base  # the original is left as it was


def test_without_training_keeps_the_validation_rows_and_their_columns() -> None:
    train = pl.DataFrame({"user_id": [1, 2], "target": [1, 0]})
    valid = pl.DataFrame({"user_id": [3], "target": [1]})
    kept = Samples(train, valid, cast(Any, object())).without_training()
    assert kept.valid.equals(valid)
    assert kept.train.height == 0 and kept.train.columns == train.columns
    assert kept.train_histories is None
