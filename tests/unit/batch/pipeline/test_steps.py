"""A step's end frees what only the cycle collector can: arrays held by garbage that refers to itself."""

from __future__ import annotations

import gc
import weakref

import numpy as np

from batch.pipeline.steps import step


class Fitted:
    """A fitted model that refers to itself, as a bound callback kept on the instance does."""

    def __init__(self) -> None:
        self.weights = np.ones(1_000_000, dtype=np.float32)
        self.callback = self.score

    def score(self) -> float:
        return float(self.weights.sum())


def test_a_step_collects_cyclic_garbage_before_trimming_the_heap() -> None:
    was_enabled = gc.isenabled()
    gc.disable()  # the automatic collector must not be what frees it
    try:
        with step("fit"):
            fitted = Fitted()
            alive = weakref.ref(fitted)
            del fitted
        assert alive() is None
    finally:
        if was_enabled:
            gc.enable()
