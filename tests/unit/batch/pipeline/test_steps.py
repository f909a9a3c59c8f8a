"""A step's end frees what only the cycle collector can: arrays held by garbage that refers to itself."""

from __future__ import annotations

import gc
import time
import weakref
from collections.abc import Iterator

import numpy as np
import pytest

from batch.pipeline.steps import COLLECT_AFTER_S, step


class Fitted:
    """A fitted model that refers to itself, as a bound callback kept on the instance does."""

    def __init__(self) -> None:
        self.weights = np.ones(1_000_000, dtype=np.float32)
        self.callback = self.score

    def score(self) -> float:
        return float(self.weights.sum())


@pytest.fixture
def no_automatic_collection() -> Iterator[None]:
    """The automatic collector off, so that only the step can free the garbage."""
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was_enabled:
            gc.enable()


def fit_and_drop(seconds: float) -> weakref.ref[Fitted]:
    """Run a step of about ``seconds`` that leaves a fitted model as cyclic garbage; a weak reference to it."""
    with step("fit"):
        fitted = Fitted()
        alive = weakref.ref(fitted)
        del fitted
        time.sleep(seconds)
    return alive


@pytest.mark.usefixtures("no_automatic_collection")
def test_a_long_step_collects_cyclic_garbage_before_trimming_the_heap() -> None:
    assert fit_and_drop(COLLECT_AFTER_S)() is None


@pytest.mark.usefixtures("no_automatic_collection")
def test_a_short_step_leaves_the_collection_to_python() -> None:
    alive = fit_and_drop(0.0)
    assert alive() is not None
    gc.collect()
    assert alive() is None
