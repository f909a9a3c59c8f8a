"""The publication guard: a build whose own validation ranks a model below the best baseline does not publish.

"Below" means beyond noise: the whole 95% paired bootstrap interval of (model - baseline) per user is under 0.
A model merely level with the baseline publishes; ``--allow-worse`` publishes a worse one too, and says so.
"""

from __future__ import annotations

import logging

from batch.pipeline.comparison import Benchmark
from common.errors import WorseThanBaselineError

log = logging.getLogger(__name__)


def check_publishable(benchmark: Benchmark | None, allow_worse: bool) -> None:
    """Refuse (or, with ``allow_worse``, log) a model worse than the best baseline on the validation window.

    Raises:
        WorseThanBaselineError: A model is worse beyond noise and ``allow_worse`` is off; the message names both
            figures.
    """
    worse = [item for item in (benchmark.comparisons if benchmark else []) if item.worse]
    if not worse:
        return
    figures = "; ".join(item.describe() for item in worse)
    if allow_worse:
        log.warning("publishing despite validation: %s (--allow-worse)", figures)
        return
    raise WorseThanBaselineError(
        f"not published, the live version is untouched: validation ranks the model below the best baseline: {figures}."
        " Run `postrec build --allow-worse` to publish it anyway."
    )
