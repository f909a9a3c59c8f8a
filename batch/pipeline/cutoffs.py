"""The cutoffs of a build: features of each set are computed from rows before its cutoff, labels from rows after.

... history ...  | label window          | validation window |
features < label_start   labels in [label_start, valid_start)
                         features < valid_start   labels in [valid_start, as_of)
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from datetime import datetime, timedelta
from enum import StrEnum


class Cutoff(StrEnum):
    """The feature sets of a build: training rows, validation rows, and scoring at as_of."""

    TRAIN = "train"
    VALID = "valid"
    SCORE = "score"


@dataclass(frozen=True, slots=True)
class Windows:
    """The temporal split's boundaries (label window, validation window) ending at ``as_of``."""

    label_start: datetime
    valid_start: datetime
    as_of: datetime

    def cutoff(self, which: Cutoff) -> datetime:
        """The time a feature set is cut at."""
        return {Cutoff.TRAIN: self.label_start, Cutoff.VALID: self.valid_start, Cutoff.SCORE: self.as_of}[which]

    def to_dict(self) -> dict[str, str]:
        """ISO strings, for metadata."""
        return {name: value.isoformat() for name, value in asdict(self).items()}


def plan_windows(as_of: datetime, label_days: float, valid_days: float) -> Windows:
    """Validation window = the last ``valid_days`` before as_of, label window = the ``label_days`` before it."""
    valid_start = as_of - timedelta(days=valid_days)
    return Windows(label_start=valid_start - timedelta(days=label_days), valid_start=valid_start, as_of=as_of)
