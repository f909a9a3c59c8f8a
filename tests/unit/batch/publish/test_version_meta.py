"""The one constructor of a version's meta, and its hash form with models and metrics as JSON text."""

from __future__ import annotations

import json
from datetime import datetime

import msgspec
import pytest

from batch.publish.release import version_meta
from common.payloads import VersionMeta
from common.settings import load_settings


def make_meta() -> VersionMeta:
    settings = load_settings({"POSTREC_AB_SALT": "pepper", "POSTREC_CONTROL_PERCENT": "30"})
    return version_meta(
        version="20211230T000000Z-abcdef",
        as_of=datetime(2021, 12, 30),
        settings=settings,
        models={"control": "v1", "embedding": "tfidf-svd-64"},
        k=50,
        users=7,
        posts=9,
        metrics={"control.hitrate_at_5": 0.25, "auc": float("nan")},
    )


def test_meta_records_the_split_and_leaves_out_unmeasured_metrics():
    meta = make_meta()

    assert (meta.salt, meta.control_percent, meta.as_of) == ("pepper", 30, "2021-12-30T00:00:00")
    assert meta.metrics == {"control.hitrate_at_5": 0.25}


def test_hash_holds_models_and_metrics_as_readable_json_and_reads_back():
    meta = make_meta()

    stored = meta.to_hash()

    assert json.loads(stored["models"]) == {"control": "v1", "embedding": "tfidf-svd-64"}
    assert json.loads(stored["metrics"]) == {"control.hitrate_at_5": 0.25}
    assert stored["k"] == "50"
    raw = {key.encode(): value.encode() for key, value in stored.items()}
    assert VersionMeta.from_hash(raw) == meta


def test_malformed_models_field_is_a_validation_error():
    stored = make_meta().to_hash() | {"models": "{not json"}

    with pytest.raises(msgspec.ValidationError, match="models is not JSON"):
        VersionMeta.from_hash(stored)
