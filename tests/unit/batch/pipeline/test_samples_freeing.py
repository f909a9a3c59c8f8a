"""Freeing the training rows keeps the validation rows."""

from __future__ import annotations

from typing import Any, cast

import polars as pl

from batch.pipeline.samples import Samples


def test_without_training_keeps_the_validation_rows_and_their_columns() -> None:
    train = pl.DataFrame({"user_id": [1, 2], "target": [1, 0]})
    valid = pl.DataFrame({"user_id": [3], "target": [1]})
    kept = Samples(train, valid, cast(Any, object())).without_training()
    assert kept.valid.equals(valid)
    assert kept.train.height == 0 and kept.train.columns == train.columns
    assert kept.train_histories is None
