"""``postrec evaluate``: hitrate@5 as the course checker measures it, for models, baselines and the oracle.

Steps: build the ``control`` and ``test`` models as of T from data before T only (published under an evaluation
prefix, never the live one), score every evaluated user with both (not only with its group's model), build the
baselines' and the oracle's lists, publish each as a version there too, then ask for 5
posts per evaluated user through the API's own serving script (list minus liked set), and score the answers
against the likes of ``[T, T + window)``.

Two protocols: ``time`` (the above: one cutoff T for everyone) and ``per-user`` (each user's last 20% of views held
out, see :mod:`batch.evaluation.per_user`; everything else is built on, and each user's window is their own tail).
"""

from __future__ import annotations

import logging
from collections import Counter
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Final

import numpy as np
import numpy.typing as npt
import polars as pl
import redis
from sqlalchemy.engine import Engine

from batch.evaluation.baseline_lists import params_note, seen_aware_rankings
from batch.evaluation.cluster_reads import read_served_across_slots
from batch.evaluation.holdout import Holdout, build_holdout, shuffled_holdout, user_groups
from batch.evaluation.nn_lists import nn_rankings
from batch.evaluation.paired import paired_differences
from batch.evaluation.per_user import HOLDOUT_SHARE, Scratch, per_user_holdout, scratch_without_holdout
from batch.evaluation.report import EvaluationReport, RecommenderScore, write_report
from batch.evaluation.time_window import HoldoutWindow, HoldoutWindowPolicy, choose_holdout_window, given_window
from batch.pipeline.build import run_build
from batch.pipeline.embed import AUTO, embedding_cache_dir
from batch.pipeline.extract import copy_query, load_feed
from batch.pipeline.nn_feature import NN_SCORE, TEST_WITHOUT_NN, nn_feature_enabled
from batch.pipeline.options import BuildOptions
from batch.pipeline.prepared import Prepared, embedding_label
from batch.pipeline.score import score_group
from batch.pipeline.source import data_end
from batch.publish.release import Release, new_version_id, version_meta, write_version
from batch.ranking import baselines
from batch.ranking.metrics import (
    bootstrap_interval,
    catalog_coverage,
    gap_closure,
    group_means,
    hit_matrix,
    hitrate_per_user,
    ndcg_per_user,
    precision_per_user,
)
from batch.ranking.positions import pairs_csr
from batch.ranking.recommenders.registry import RECOMMENDERS
from batch.ranking.topk import NO_POST, TopK, top_k
from common.ab import CONTROL, TEST
from common.columns import Action, Col, Table
from common.keys import KeyLayout
from common.logs import format_figures
from common.redis_clients import Role, is_cluster, redis_client
from common.serving import RECOMMEND_KEYS, RECOMMEND_LUA, recommend_call
from common.settings import Settings

if TYPE_CHECKING:  # the world's truth is imported only when the oracle is asked for
    from batch.world.truth import WorldTruth

log = logging.getLogger(__name__)

# Reference rows, not seen-aware: a random order, and the catalog by likes (the base of gap closure).
RANDOM, POPULAR, ORACLE = "random", "popular", "oracle"
# The oracle with users known only topic by topic: the ceiling of ``control``'s kind of user features.
TOPIC_ORACLE: Final = "oracle_topic_level"
READ_BATCH: Final = 1000
# The rows of the sequence score's ablation, compared user by user: ``test`` minus ``test`` without the score.
ABLATION: Final = (TEST, TEST_WITHOUT_NN)
# Rows compared user by user wherever both ran: the ablation, and the A/B contrast.
PAIRS: Final = (ABLATION, (TEST, CONTROL))
PAIRED_NOTE: Final = (
    "The best baseline of the paired differences is {best}: the seen-aware baseline with the highest hitrate@5 on"
    " this hold-out."
)
ABLATION_NOTE: Final = (
    f"{TEST_WITHOUT_NN}: the {TEST} model without the {NN_SCORE} column, trained on the same rows with the same"
    f" parameters; the paired difference ({TEST} - {TEST_WITHOUT_NN}) is a bootstrap over users of their own"
    " difference, so it is narrower than the two rows' intervals side by side."
)
TIME, PER_USER = "time", "per-user"
PROTOCOLS: Final = (TIME, PER_USER)
PER_USER_NOTE: Final = (
    f"Protocol {PER_USER}: each user's last {HOLDOUT_SHARE:.0%} of views (by time, users with at least 5 views) held"
    " out with every later row of theirs; models and baselines built on all the rest (T = the end of what remains);"
    " a hit is a post liked in the user's own held-out tail and not liked before it."
)
ORACLE_NOTE: Final = (
    f"{ORACLE}: the generator's true like probabilities in the window (the ceiling); {TOPIC_ORACLE}: the same with"
    " each user's sub-topic tastes and exposure interests replaced by their topic means, the ceiling of a model whose"
    " user features stop at the topic (control's), however well it learns."
)


@dataclass(frozen=True, slots=True)
class EvaluateOptions:
    """One evaluation run.

    Attributes:
        as_of: Cutoff T; None = the end of the data minus the window.
        window: Length of the hold-out window after T; None = chosen from the likes by ``window_policy`` (a week
            when ``as_of`` is given).
        window_policy: How a window that is not given is sized (:mod:`batch.evaluation.time_window`).
        chosen_window: The window the time protocol resolved, with why it is that long (set by the run).
        limit: Posts asked for per user (the checker asks for 5).
        k: Length of the published lists.
        out_dir: Where the report goes.
        shuffle_holdout: The leakage guard: score against likes moved to other users and posts.
        oracle: Include the world's ground truth (only for generated worlds).
        embedding: How the ``test`` model embeds post texts (``batch.pipeline.embed.EMBEDDING_METHODS``).
        nn_feature: Train the ``test`` model with the sequence model's score (implied by ``nn_ablation``).
        protocol: ``time`` (one cutoff T) or ``per-user`` (each user's last 20% of views held out; ``as_of`` and
            ``window`` do not apply).
        nn_ablation: Train ``test`` with the sequence score and also without that column, on the same rows, and
            report the second as ``test_without_nn``, with the paired difference.
    """

    as_of: datetime | None = None
    window: timedelta | None = None
    window_policy: HoldoutWindowPolicy = field(default_factory=HoldoutWindowPolicy)
    chosen_window: HoldoutWindow | None = None
    limit: int = 5
    k: int = 200
    out_dir: Path = Path("reports")
    shuffle_holdout: bool = False
    oracle: bool = True
    embedding: str = AUTO
    nn_feature: bool = False
    protocol: str = TIME
    nn_ablation: bool = False

    @property
    def with_nn(self) -> bool:
        """Whether the ``test`` model is asked to read the sequence score (the ablation compares with it)."""
        return self.nn_feature or self.nn_ablation


def evaluation_settings(settings: Settings) -> Settings:
    """The same deployment with its own key prefix and artifact folder, so nothing live is touched."""
    return replace(
        settings, prefix=f"{settings.prefix}-eval", data_dir=settings.data_dir / "eval", version_grace_seconds=0
    )


def evaluation_build_options(settings: Settings, options: EvaluateOptions) -> BuildOptions:
    """The build of the models as of T: both models whatever the split, the deployment's seed, published only
    under the evaluation's prefix, so the publication guard does not stop it (the evaluation measures them).

    ``settings`` are the deployment's: the build reuses its embedding cache (the evaluation's data dir is its own).
    """
    built = BuildOptions.from_settings(
        settings,
        as_of=options.as_of,
        k=options.k,
        models=evaluated_models(options),
        embedding=options.embedding,
        nn_feature=options.with_nn,
        allow_worse=True,
        horizon=list_horizon(options),
    )
    return replace(built, embedding_cache=embedding_cache_dir(settings))


def list_horizon(options: EvaluateOptions) -> timedelta:
    """How long after the cutoff the protocol judges the lists: the time cut's whole window; per user, the user's
    next views, at once."""
    if options.protocol == TIME and options.window is not None:
        return options.window
    return timedelta(0)


def evaluated_models(options: EvaluateOptions) -> tuple[str, ...]:
    """Both A/B models, and ``test`` without the sequence score when the ablation is asked for and the score can be
    computed (without torch the two would be the same model)."""
    ablation = options.nn_ablation and nn_feature_enabled(wanted=True)
    return (CONTROL, TEST, TEST_WITHOUT_NN) if ablation else (CONTROL, TEST)


@dataclass(frozen=True, slots=True)
class EvaluatedBuild:
    """The models' build, with the deployment it ran on, the database it read (``engine``: under the per-user
    protocol a scratch copy without the held-out rows) and the source database (``source_engine``: the hold-out
    and the world's truth)."""

    settings: Settings
    engine: Engine
    prepared: Prepared
    source_engine: Engine
    scratch: Scratch | None = None


@dataclass(frozen=True, slots=True)
class HeldOut:
    """Who is evaluated and on what, with each user's window for the oracle.

    Attributes:
        holdout: Evaluated users and their fresh likes in their window.
        starts: Each evaluated user's window start.
        window: Length of every user's window (per-user: up to the end of the data).
    """

    holdout: Holdout
    starts: list[datetime]
    window: timedelta


def run_evaluation(settings: Settings, engine: Engine, options: EvaluateOptions) -> EvaluationReport:
    """Evaluate every recommender under the options' protocol; writes the report and returns it.

    Raises:
        ValueError: The protocol is unknown.
    """
    if options.protocol not in PROTOCOLS:
        raise ValueError(f"unknown protocol {options.protocol!r}: use one of {', '.join(PROTOCOLS)}")
    eval_settings = evaluation_settings(settings)
    client = redis_client(settings.redis_url, Role.BATCH)
    try:
        report = _run_protocol(settings, eval_settings, engine, client, options)
    finally:
        _delete_prefix(client, eval_settings.prefix)
        client.close()
    write_report(report, options.out_dir, previous=options.out_dir / "evaluation.json")
    return report


def _run_protocol(
    settings: Settings, eval_settings: Settings, engine: Engine, client: redis.Redis[bytes], options: EvaluateOptions
) -> EvaluationReport:
    if options.protocol == TIME:
        window = time_window(engine, options)
        log.info("evaluation: %s", window.describe())
        options = replace(options, as_of=window.start, window=window.length, chosen_window=window)
        return _evaluate(eval_settings, engine, None, client, options, evaluation_build_options(settings, options))
    with scratch_without_holdout(engine, HOLDOUT_SHARE) as scratch:
        options = replace(options, as_of=None)
        return _evaluate(eval_settings, engine, scratch, client, options, evaluation_build_options(settings, options))


def time_window(engine: Engine, options: EvaluateOptions) -> HoldoutWindow:
    """The time protocol's window: as given, or chosen from the likes (see :mod:`batch.evaluation.time_window`)."""
    if options.window is None and options.as_of is None:
        return choose_holdout_window(engine, data_end(engine), options.window_policy)
    length = options.window or timedelta(days=options.window_policy.least_days)
    return given_window(engine, options.as_of or data_end(engine) - length, length)


def _evaluate(
    settings: Settings,
    engine: Engine,
    scratch: Scratch | None,
    client: redis.Redis[bytes],
    options: EvaluateOptions,
    build: BuildOptions,
) -> EvaluationReport:
    """Build on the scratch copy when there is one (per-user), else on ``engine``; hold out from ``engine``."""
    build_engine = scratch.engine if scratch else engine
    built = run_build(settings, build_engine, build)
    state = EvaluatedBuild(settings, build_engine, built.prepared, engine, scratch)
    held_out = _held_out(state, options)
    holdout = held_out.holdout
    as_of = built.prepared.source.as_of
    log.info("evaluation: protocol=%s as_of=%s users=%d", options.protocol, as_of, holdout.user_ids.size)
    keys = KeyLayout(settings.prefix)
    versions = _publish_models(client, keys, state, holdout, options) | _publish_others(
        client, keys, state, held_out, options
    )
    served = {
        name: read_served(client, keys, version, holdout.user_ids, options.limit) for name, version in versions.items()
    }
    return _report(state, held_out, served, options)


def _held_out(state: EvaluatedBuild, options: EvaluateOptions) -> HeldOut:
    if state.scratch is not None:
        held_out = _per_user_held_out(state, state.scratch)
    else:
        assert options.as_of is not None and options.window is not None  # noqa: S101 - resolved by the caller
        end = options.as_of + options.window
        window = load_feed(state.source_engine, start=options.as_of, end=end, action=Action.LIKE)
        holdout = build_holdout(state.prepared.source.likes, window)
        held_out = HeldOut(holdout, [options.as_of] * holdout.user_ids.size, options.window)
    if options.shuffle_holdout:
        post_ids = state.prepared.score_features.post_ids.astype(np.int64)
        held_out = replace(held_out, holdout=shuffled_holdout(held_out.holdout, post_ids, state.settings.seed))
    return held_out


def _per_user_held_out(state: EvaluatedBuild, scratch: Scratch) -> HeldOut:
    holdout, starts = per_user_holdout(state.source_engine, scratch, state.prepared.source.likes)
    end = data_end(state.source_engine)
    return HeldOut(holdout, starts, end - min(starts, default=end))


def baseline_rankings(
    state: EvaluatedBuild, user_ids: npt.NDArray[np.int64], k: int, oracle_windows: OracleWindows | None
) -> dict[str, npt.NDArray[np.int64]]:
    """(users x k) post ids of every baseline, from data the build saw only; the oracle from the ground truth.

    ``random`` and ``popular`` are reference rows; the others are the seen-aware, tuned baselines.

    Args:
        state: The build.
        user_ids: The evaluated users.
        k: List length.
        oracle_windows: Each user's window start and the windows' length; None = no oracle.
    """
    likes = state.prepared.source.likes.select(Col.USER_ID, Col.POST_ID)
    post_ids = state.prepared.score_features.post_ids.astype(np.int64)
    seed, k = state.settings.seed, min(k, post_ids.size)
    rankings = {
        RANDOM: baselines.random_ranking(user_ids, post_ids, k, seed),
        POPULAR: baselines.popular_ranking(likes, user_ids, post_ids, k),
    }
    rankings |= seen_aware_rankings(state.prepared, user_ids, k, seed)
    rankings |= nn_rankings(state.prepared, user_ids, k)
    if oracle_windows is not None:
        seen = seen_before_mask(state.engine, user_ids, post_ids, state.prepared.source.as_of)
        rankings |= oracle_rankings(state.source_engine, seen, user_ids, post_ids, k, oracle_windows)
    return rankings


OracleWindows = tuple[list[datetime], timedelta]
"""Each user's window start, and the length of every window."""


def oracle_rankings(
    engine: Engine,
    seen: npt.NDArray[np.bool_],
    user_ids: npt.NDArray[np.int64],
    post_ids: npt.NDArray[np.int64],
    k: int,
    windows: OracleWindows,
) -> dict[str, npt.NDArray[np.int64]]:
    """The oracle's lists and the topic-level oracle's (users' sub-topic tastes and interests known only as their
    topic means), from one read of the truth, given what each user was shown before their window (``seen``)."""
    from batch.world.store import load_truth
    from batch.world.truth import topic_level_truth

    truth = load_truth(engine)
    return {
        ORACLE: oracle_ranking_per_user(truth, seen, user_ids, post_ids, k, windows),
        TOPIC_ORACLE: oracle_ranking_per_user(topic_level_truth(truth), seen, user_ids, post_ids, k, windows),
    }


def oracle_ranking(
    truth: WorldTruth,
    seen: npt.NDArray[np.bool_],
    user_ids: npt.NDArray[np.int64],
    post_ids: npt.NDArray[np.int64],
    k: int,
    window: tuple[datetime, datetime],
) -> npt.NDArray[np.int64]:
    """Posts by the true probability of a like in the window, given what each user was shown before it (``seen``,
    users x posts)."""
    windows = ([window[0]] * user_ids.size, window[1] - window[0])
    return oracle_ranking_per_user(truth, seen, user_ids, post_ids, k, windows)


def oracle_ranking_per_user(
    truth: WorldTruth,
    seen: npt.NDArray[np.bool_],
    user_ids: npt.NDArray[np.int64],
    post_ids: npt.NDArray[np.int64],
    k: int,
    windows: OracleWindows,
) -> npt.NDArray[np.int64]:
    """:func:`oracle_ranking` with a window start of its own per user."""
    from batch.world.truth import oracle_scores_per_user

    starts, length = windows
    rows = []
    for start in range(0, user_ids.size, READ_BATCH):
        block = slice(start, start + READ_BATCH)
        scores = oracle_scores_per_user(
            truth, user_ids[block], post_ids, starts[block], length, seen_before=seen[block]
        )
        rows.append(post_ids[top_k(scores, k)])
    return np.concatenate(rows) if rows else np.empty((0, k), dtype=np.int64)


def seen_before_mask(
    engine: Engine, user_ids: npt.NDArray[np.int64], post_ids: npt.NDArray[np.int64], cutoff: datetime
) -> npt.NDArray[np.bool_]:
    """Users x posts: whether the user was shown the post before ``cutoff`` (the oracle conditions on it)."""
    # Repeats are made distinct on the client, chunk by chunk: PostgreSQL misjudges the groups of such a DISTINCT.
    sql = (
        f"SELECT {Col.USER_ID}, {Col.POST_ID} FROM {Table.FEED} "
        f'WHERE "{Col.TIMESTAMP}" < %(cutoff)s AND {Col.USER_ID} = ANY(%(users)s)'
    )
    schema = {Col.USER_ID: pl.Int64(), Col.POST_ID: pl.Int64()}
    params = {"cutoff": cutoff, "users": user_ids.tolist()}
    pairs = copy_query(engine, sql, schema, params, reduce=pl.DataFrame.unique)
    indptr, cols = pairs_csr(user_ids.astype(np.int32), post_ids.astype(np.int32), pairs)
    seen = np.zeros((user_ids.size, post_ids.size), dtype=bool)
    seen[np.repeat(np.arange(user_ids.size), np.diff(indptr)), cols] = True
    return seen


def _publish_models(
    client: redis.Redis[bytes], keys: KeyLayout, state: EvaluatedBuild, holdout: Holdout, options: EvaluateOptions
) -> dict[str, str]:
    """Every evaluated user's list from each trained model, whatever its A/B group, each as its own version."""
    versions = {}
    for name in state.prepared.models.by_group:
        top = score_group(state.prepared, name, holdout.user_ids, options.k)
        versions[name] = _publish_lists(client, keys, state, name, holdout.user_ids, top.post_ids.astype(np.int64))
    return versions


def _publish_others(
    client: redis.Redis[bytes], keys: KeyLayout, state: EvaluatedBuild, held_out: HeldOut, options: EvaluateOptions
) -> dict[str, str]:
    holdout = held_out.holdout
    windows = (held_out.starts, held_out.window) if options.oracle else None
    rankings = baseline_rankings(state, holdout.user_ids, options.k, windows)
    return {
        name: _publish_lists(client, keys, state, name, holdout.user_ids, posts) for name, posts in rankings.items()
    }


def _publish_lists(
    client: redis.Redis[bytes],
    keys: KeyLayout,
    state: EvaluatedBuild,
    name: str,
    user_ids: npt.NDArray[np.int64],
    post_ids: npt.NDArray[np.int64],
) -> str:
    version = new_version_id(state.prepared.source.as_of)
    meta = version_meta(
        version=version,
        as_of=state.prepared.source.as_of,
        settings=state.settings,
        models={name: name},
        k=int(post_ids.shape[1]),
        users=int(user_ids.size),
        posts=state.prepared.source.posts.height,
    )
    rankings = TopK(user_ids.astype(np.int32), post_ids.astype(np.int32), np.zeros(post_ids.shape, dtype=np.float32))
    popular = baselines.popularity_order(
        state.prepared.source.likes, state.prepared.score_features.post_ids.astype(np.int64)
    )
    # Read back by version id: written and verified, never made current (nothing here is live).
    write_version(client, keys, Release(meta, rankings, state.prepared.source.posts, popular.tolist()))
    return version


def read_served(
    client: redis.Redis[bytes], keys: KeyLayout, version: str, user_ids: npt.NDArray[np.int64], limit: int
) -> npt.NDArray[np.int64]:
    """What the API would answer each user, through its own serving script: (users x limit), NO_POST padded."""
    if is_cluster(client):
        return read_served_across_slots(client, keys, version, user_ids, limit)
    sha = str(client.script_load(RECOMMEND_LUA))  # type: ignore[no-untyped-call]
    served = np.full((user_ids.size, limit), NO_POST, dtype=np.int64)
    for start in range(0, user_ids.size, READ_BATCH):
        with client.pipeline(transaction=False) as pipe:
            for user in user_ids[start : start + READ_BATCH].tolist():
                script_keys, argv = recommend_call(keys, version, user, limit)
                pipe.evalsha(sha, RECOMMEND_KEYS, *script_keys, *argv)
            replies = pipe.execute()
        for offset, reply in enumerate(replies):
            posts = [int(post) for post in (reply or [])]
            served[start + offset, : len(posts)] = posts
    return served


def _report(
    state: EvaluatedBuild,
    held_out: HeldOut,
    served: dict[str, npt.NDArray[np.int64]],
    options: EvaluateOptions,
) -> EvaluationReport:
    holdout = held_out.holdout
    groups = _groups(state, holdout)
    partial = {
        name: _score(name, top, holdout, state.prepared.source.posts.height, groups, state.settings.seed)
        for name, top in served.items()
    }
    popular = partial[POPULAR].hitrate
    oracle = partial[ORACLE].hitrate if ORACLE in partial else float("nan")
    scores = [replace(score, gap_closure=gap_closure(score.hitrate, popular, oracle)) for score in partial.values()]
    differences, best = paired_differences(served, holdout.relevant, PAIRS, RECOMMENDERS, state.settings.seed)
    return EvaluationReport(
        as_of=state.prepared.source.as_of.isoformat(),
        window_days=held_out.window.total_seconds() / 86400,
        users=int(holdout.user_ids.size),
        posts=state.prepared.source.posts.height,
        scores=sorted(scores, key=lambda s: s.hitrate),
        group_sizes={kind: dict(Counter(labels)) for kind, labels in groups.items()},
        feature_importance=_importance(state),
        calibration=state.prepared.calibration,
        notes=[*_notes(options, state), *([PAIRED_NOTE.format(best=best)] if best is not None else [])],
        protocol=options.protocol,
        differences=differences,
    )


def _score(
    name: str, served: npt.NDArray[np.int64], holdout: Holdout, catalog: int, groups: dict[str, list[str]], seed: int
) -> RecommenderScore:
    hits = hit_matrix(served, holdout.relevant)
    per_user = hitrate_per_user(hits)
    low, high = bootstrap_interval(per_user, seed=seed)
    return RecommenderScore(
        name=name,
        hitrate=float(per_user.mean()),
        hitrate_low=low,
        hitrate_high=high,
        precision=float(precision_per_user(hits).mean()),
        ndcg=float(ndcg_per_user(hits, holdout.relevant_counts).mean()),
        coverage=catalog_coverage(served, catalog),
        gap_closure=float("nan"),
        by_group={kind: group_means(per_user, labels) for kind, labels in groups.items()},
    )


def _groups(state: EvaluatedBuild, holdout: Holdout) -> dict[str, list[str]]:
    sql = (
        f"SELECT {Col.USER_ID}, count(*) FROM {Table.FEED} "
        f"WHERE {Col.ACTION} = 'view' AND \"{Col.TIMESTAMP}\" < %(cutoff)s GROUP BY {Col.USER_ID}"
    )
    views = copy_query(
        state.engine, sql, {Col.USER_ID: pl.Int32(), "views": pl.UInt32()}, {"cutoff": state.prepared.source.as_of}
    )
    source, settings = state.prepared.source, state.settings
    likes = source.likes.select(Col.TIMESTAMP, Col.USER_ID, Col.POST_ID)
    return user_groups(
        views, likes, source.posts, holdout.user_ids, settings.ab_salt, settings.control_percent, source.as_of
    )


def _importance(state: EvaluatedBuild) -> dict[str, float]:
    model = state.prepared.models.by_group.get(CONTROL)
    if model is None:
        return {}
    # Spelled out: for a pairwise loss CatBoost's default importance needs the training rows, gone by now.
    values = model.get_feature_importance(type="PredictionValuesChange")
    return {name: float(value) for name, value in zip(model.feature_names_ or [], values, strict=True)}


def _notes(options: EvaluateOptions, state: EvaluatedBuild) -> list[str]:
    notes = [
        "Hit: any of the 5 posts served (list minus posts liked before T, via the API's script) liked in the window.",
        f"control and test trained on data before T only, on the same rows; test embeddings: {_embedding(state)}.",
        "Validation metrics (test_: the test model): " + format_figures(state.prepared.models.metrics),
        f"{RANDOM} and {POPULAR} (by likes, viewed posts not left out) are reference rows. "
        + params_note(state.prepared),
    ]
    if options.protocol == PER_USER:
        notes.append(PER_USER_NOTE)
    if options.chosen_window is not None:
        notes.append(f"Time protocol {options.chosen_window.describe()} (see batch/evaluation/time_window.py).")
    if TEST_WITHOUT_NN in state.prepared.models.by_group:
        notes.append(ABLATION_NOTE)
    if options.oracle:
        notes.append(ORACLE_NOTE)
    if options.shuffle_holdout:
        notes.append("LEAKAGE GUARD: hold-out likes shuffled across users and posts; every model should be ~random.")
    return notes


def _embedding(state: EvaluatedBuild) -> str:
    info = state.prepared.features.embedding
    return embedding_label(info) if info is not None else "none"


def _delete_prefix(client: redis.Redis[bytes], prefix: str) -> None:
    keys = list(client.scan_iter(match=f"{prefix}:*", count=1000))
    for start in range(0, len(keys), 1000):
        client.delete(*keys[start : start + 1000])
