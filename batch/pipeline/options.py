"""What one run of the batch does: :class:`BuildOptions` (built from the settings by every entry point) and the
:class:`TrainParams` inside them."""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from pathlib import Path
from typing import Final

from batch.pipeline.collab_features import CollabFeature
from batch.pipeline.cutoffs import WindowPolicy
from batch.pipeline.embed import AUTO
from common.ab import CONTROL, TEST
from common.settings import Settings

# A longer lag reads, for most rows of a user active on a few days, the empty state before their burst: drawn up to
# the time cut's whole window (about 90 days) it cost the bursty world's time cuts 0.01-0.03 hitrate@5, drawn up to a
# week at most 0.007, while the fleeting world's rose by 0.013-0.022 (bench/RESULTS.md, stop 46).
MAX_HISTORY_LAG: Final = timedelta(days=7)


@dataclass(frozen=True, slots=True)
class TrainParams:
    """Knobs of training. Tree count and depth bound exhaustive scoring's speed (see bench/score.py).

    Attributes:
        iterations: Trees at most.
        likes_per_tree: Fewer trees where the training rows hold few likes: one per this many liked rows (0: always
            ``iterations``). 200 trees fitted the label window's noise on small data: on the tiny worlds (300
            users, about 800 liked training rows, so 62 trees) the models rose by about 0.03 hitrate@5 on average
            over 16 cells; from 2,600 liked rows on (every small, medium and full world) nothing changes
            (bench/RESULTS.md, stop 32).
        min_iterations: ... but never fewer trees than this.
        depth: Depth of each (oblivious) tree.
        learning_rate: Boosting step.
        pairwise: Fit on pairs within a moment (CatBoost's PairLogit, rows grouped by user and time): a liked post
            against the never-shown posts that take its time, which is scoring's own comparison of one user's
            candidates at one moment. Over the world family's 20 cells (stop 48, bench/RESULTS.md) both models
            passed the best baseline in 19 against 17 with the pointwise log loss, and rose on the short-burst
            per-user cells (fleeting +0.026, bursty +0.027 on one seed each); they lost on collab's per-user cell
            of seed 7 (-0.069) and popular's time cut of seed 42 (-0.030), and fitting took about 2.8 times as long.
            Off by default: at full scale the build peaked at 4,259 MiB in `test`'s correction fit, over the 4 GB
            budget (stop 49). Off, each row's like is fitted on its own (log loss), whose scores are probabilities
            (validation's log loss and calibration are reported only then).
        unseen_per_positive: Never-shown negatives per liked post in the training rows.
        skipped_negatives: Also train on the posts shown in the label window and not liked, as negatives (off: the
            lists rank never-shown posts, and these taught the feed's own choices; see ``batch.pipeline.samples``).
        windows: How the label and validation windows are sized from the likes.
        max_train_rows: Expected training rows; users are sampled to fit (memory budget).
        history_at_row: Training rows' collaborative columns read the user's history at the row's own time, likes
            inside the label window included (see ``batch.pipeline.row_history``); off, the label window's start.
        history_lag: ... as it stood a while before the row, drawn uniformly up to this long once per user and
            moment (a liked row and the negatives at its time read one state): the lists are used
            that long after the cutoff, so the trees learn likes that come up to that long after the history.
            Set from the lists' horizon (:meth:`BuildOptions.from_settings`), at most ``MAX_HISTORY_LAG``.
        on_control: Fit every model but control as control's trees plus trees on what control leaves unexplained,
            reading only the columns the model adds (``batch.pipeline.train.fit_correction``); off, each from
            scratch on all its columns.
        correction_iterations: Trees of such a correction. Over the world family 50 did better than 200 (``test``
            >= ``control`` in 13 of 16 cells against 12, mean hitrate@5 0.5872 against 0.5860) and a ``test``
            user is scored with 250 trees instead of 400 (bench/RESULTS.md).
        correction_depth: Depth of the correction's trees. It reads the text columns: deeper trees there carve the
            label window's noise where the text says little (bench/RESULTS.md, "text kNN").
        correction_context: Base columns the correction may split on beside the ones it adds: how popular a post is
            now and when the user was last active. Without them the text moved every post alike, the hits of the
            moment included, and `test` fell below `control` on the popular world's time cut (-0.009, -0.014..-0.003);
            with them 49 of the correction's 50 trees still split on a text column (bench/RESULTS.md, stop 38).
        correction_weights: Weights a correction may be added at, the one chosen whose lists hit most on the
            validation window (``batch.pipeline.weigh``); a single weight is used as it is (the default: the
            correction as fitted). 0 leaves the model control's ranking where the added columns did not help. With
            pairs, (0, 0.5, 1) kept `test` >= `control` in 17 of 20 cells of the world family against 14; with
            the pointwise default it is not measured yet (bench/RESULTS.md, stop 50).
        max_eval_users: Users ranked exhaustively for hitrate@5 on the validation window.
        seed: Seed of sampling and of CatBoost.
        threads: CatBoost threads (-1: all cores).
    """

    iterations: int = 200
    likes_per_tree: float = 13.0
    min_iterations: int = 20
    depth: int = 6
    learning_rate: float = 0.1
    pairwise: bool = False
    unseen_per_positive: float = 32.0
    skipped_negatives: bool = False
    windows: WindowPolicy = field(default_factory=WindowPolicy)
    max_train_rows: int = 3_000_000
    history_at_row: bool = True
    history_lag: timedelta = timedelta(0)
    on_control: bool = True
    correction_iterations: int = 50
    correction_depth: int = 3
    correction_context: tuple[str, ...] = (
        CollabFeature.RECENT_POPULARITY,
        CollabFeature.ERA_POPULARITY,
        CollabFeature.ERA_TREND,
        CollabFeature.RECENT_TREND,
    )
    correction_weights: tuple[float, ...] = (1.0,)
    max_eval_users: int = 5_000
    seed: int = 42
    threads: int = -1


@dataclass(frozen=True, slots=True)
class BuildOptions:
    """What one run does. Entry points build it with :meth:`from_settings`.

    Attributes:
        as_of: Cutoff: only feed rows before it are used; None = the end of the data (next midnight after it).
        k: List length per user.
        params: Training parameters.
        model_path: For ``score``: the artifact to use; None = the latest.
        publish: False stops before Redis (evaluation runs).
        models: The models to train; None = those the A/B split of the settings serves.
        embedding: How the ``test`` model embeds post texts (``batch.pipeline.embed.EMBEDDING_METHODS``).
        embedding_cache: Folder of the post vectors' cache; None = the settings' (``POSTREC_EMBEDDING_CACHE``, else
            ``<data_dir>/embeddings``). An evaluation, whose data dir is its own, points it at the deployment's cache.
        nn_feature: Train the ``test`` model with the sequence model's score (``--nn-feature``). Off by default: over
            the world family it lifted ``test`` beyond noise in no cell of stop 25's matrix and cost it in several,
            and its effect on one cell changed sign between two sessions' runs of the same code (bench/RESULTS.md).
        allow_worse: Publish even when validation ranks a model below the best baseline beyond noise.
    """

    as_of: datetime | None = None
    k: int = 200
    params: TrainParams = field(default_factory=TrainParams)
    model_path: Path | None = None
    publish: bool = True
    models: tuple[str, ...] | None = None
    embedding: str = AUTO
    embedding_cache: Path | None = None
    nn_feature: bool = False
    allow_worse: bool = False

    @classmethod
    def from_settings(
        cls,
        settings: Settings,
        *,
        as_of: datetime | None = None,
        k: int | None = None,
        model_path: Path | None = None,
        publish: bool = True,
        models: tuple[str, ...] | None = None,
        unseen_per_positive: float | None = None,
        embedding: str = AUTO,
        nn_feature: bool = False,
        allow_worse: bool = False,
        horizon: timedelta | None = None,
    ) -> BuildOptions:
        """The options of a run of this deployment: its list length (unless ``k``) and its seed.

        Args:
            settings: The deployment's settings (``POSTREC_K``, ``POSTREC_SEED``).
            as_of: Cutoff; None = the end of the data.
            k: List length; None = the settings'.
            model_path: For ``score``: the artifact; None = the latest.
            publish: False stops before Redis.
            models: The models to train; None = those the settings' split serves.
            unseen_per_positive: Never-shown negatives per liked post; None = the default.
            embedding: How the ``test`` model embeds post texts.
            nn_feature: Train the ``test`` model with the sequence model's score.
            allow_worse: Publish even a model that validation ranks below the best baseline (or the settings say so).
            horizon: How long after the cutoff the lists are used; None = the settings' (``POSTREC_HORIZON_HOURS``).
        """
        horizon = timedelta(hours=settings.horizon_hours) if horizon is None else horizon
        params = replace(TrainParams(), seed=settings.seed, history_lag=min(horizon, MAX_HISTORY_LAG))
        if unseen_per_positive is not None:
            params = replace(params, unseen_per_positive=unseen_per_positive)
        return cls(
            as_of=as_of,
            k=k or settings.k,
            params=params,
            model_path=model_path,
            publish=publish,
            models=models,
            embedding=embedding,
            nn_feature=nn_feature,
            allow_worse=allow_worse or settings.allow_worse,
        )

    def wanted_models(self, control_percent: int) -> tuple[str, ...]:
        """The models this run trains: the options' choice, else those the split serves."""
        return self.models or served_groups(control_percent)


def served_groups(control_percent: int) -> tuple[str, ...]:
    """The groups the split sends any user to: only one at 100 or 0 percent."""
    if control_percent >= 100:
        return (CONTROL,)
    return (TEST,) if control_percent <= 0 else (CONTROL, TEST)
