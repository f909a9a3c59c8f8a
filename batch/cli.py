"""``postrec seed``, ``build``, ``score``, ``rollback``, ``evaluate``."""

from __future__ import annotations

import argparse
import logging
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING

from batch.pipeline.embed import AUTO, EMBEDDING_METHODS
from batch.world.designs import DEFAULT_WORLD, WORLDS
from batch.world.facts import SCALES
from common.settings import Settings

if TYPE_CHECKING:
    from sqlalchemy.engine import Engine

    from batch.pipeline.options import BuildOptions

log = logging.getLogger(__name__)


def _cmd_seed(settings: Settings, args: argparse.Namespace) -> int:
    from batch.world.seed import seed_database
    from common.db import ensure_database, make_engine

    ensure_database(settings.database_url)
    engine = make_engine(settings.database_url)
    try:
        if args.if_empty and _has_users(engine):
            log.info("seed skipped: user_data already has rows (drop --if-empty to replace them)")
            return 0
        seed_database(engine, args.scale, args.seed, args.world)
    finally:
        engine.dispose()
    return 0


def _has_users(engine: Engine) -> bool:
    import sqlalchemy as sa

    from common.columns import Table
    from common.db import init_schema

    init_schema(engine)
    with engine.connect() as conn:
        return conn.execute(sa.text(f"SELECT EXISTS (SELECT 1 FROM {Table.USERS})")).scalar() is True


def _register_seed(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    seed = commands.add_parser("seed", help="generate the synthetic world and load it into PostgreSQL (replaces)")
    seed.add_argument("--scale", default="small", choices=tuple(SCALES), help="world size (default: small)")
    seed.add_argument("--seed", type=int, default=42, help="random seed; the same seed gives the same data")
    seed.add_argument(
        "--world",
        default=DEFAULT_WORLD,
        choices=tuple(WORLDS),
        help="which world of the family: "
        + "; ".join(f"{name}: {design.summary}" for name, design in WORLDS.items())
        + f" (default: {DEFAULT_WORLD})",
    )
    seed.add_argument("--if-empty", action="store_true", help="do nothing when the database already holds users")
    seed.set_defaults(handler=_cmd_seed)


def _cmd_ab_report(settings: Settings, args: argparse.Namespace) -> int:

    from batch.ab.render import write_ab_report
    from batch.ab.report import as_naive_utc, build_ab_report
    from common.db import check_connection, make_engine
    from common.keys import KeyLayout
    from common.redis_clients import Role, redis_client

    since, until = as_naive_utc(args.since), as_naive_utc(args.until or datetime.now(UTC))
    engine = make_engine(settings.database_url)
    check_connection(engine)
    client = redis_client(settings.redis_url, Role.BATCH)
    try:
        report = build_ab_report(client, engine, KeyLayout(settings.prefix), since, until, settings.control_percent)
    finally:
        engine.dispose()
        client.close()
    log.info("ab report written: %s", write_ab_report(report, args.out))
    return 0


def _register_ab_report(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    report = commands.add_parser("ab-report", help="hitrate of control vs test from the served log and the likes")
    report.add_argument("--since", type=datetime.fromisoformat, required=True, help="first serving time (ISO 8601)")
    report.add_argument(
        "--until", type=datetime.fromisoformat, default=None, help="end of the window, excluded (default: now)"
    )
    report.add_argument("--out", type=Path, default=Path("reports/ab"), help="folder for the Markdown, PNG and JSON")
    report.set_defaults(handler=_cmd_ab_report)


def _build_options(args: argparse.Namespace, settings: Settings) -> BuildOptions:
    from batch.pipeline.options import BuildOptions

    return BuildOptions.from_settings(
        settings,
        as_of=args.as_of,
        k=args.k,
        model_path=getattr(args, "model", None),
        unseen_per_positive=getattr(args, "unseen_per_positive", None),
        embedding=getattr(args, "embedding", AUTO),
        nn_feature=bool(getattr(args, "nn_feature", False)),
        allow_worse=getattr(args, "allow_worse", False),
    )


def _cmd_build(settings: Settings, args: argparse.Namespace) -> int:
    from batch.pipeline.build import run_build, run_score
    from common.db import make_engine

    engine = make_engine(settings.database_url)
    try:
        run = run_build if args.command == "build" else run_score
        built = run(settings, engine, _build_options(args, settings))
    finally:
        engine.dispose()
    model_version = built.prepared.models.version
    log.info("published version %s (model %s); previous: %s", built.version, model_version, built.previous)
    return 0


def _cmd_rollback(settings: Settings, _args: argparse.Namespace) -> int:
    import redis

    from batch.publish.release import rollback
    from common.errors import StoreUnavailableError
    from common.keys import KeyLayout
    from common.redis_clients import Role, redis_client
    from common.urls import mask_url

    client = redis_client(settings.redis_url, Role.BATCH)
    try:
        live, replaced = rollback(client, KeyLayout(settings.prefix))
    except redis.ConnectionError as exc:
        raise StoreUnavailableError(f"Redis at {mask_url(settings.redis_url)} is unreachable ({exc})") from None
    finally:
        client.close()
    log.info("rolled back: version %s is live again; %s is now previous", live, replaced)
    return 0


def _register_build(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    build = commands.add_parser("build", help="validate, extract, features, train, score every user, publish")
    score = commands.add_parser("score", help="rescore every user with an existing model artifact and publish")
    for parser in (build, score):
        parser.add_argument(
            "--as-of", type=datetime.fromisoformat, default=None, help="cutoff (default: the end of the data)"
        )
        parser.add_argument("--k", type=int, default=None, help="list length per user (default: POSTREC_K)")
        parser.set_defaults(handler=_cmd_build)
    build.add_argument(
        "--unseen-per-positive", type=float, default=None, help="never-shown negatives per liked post in training"
    )
    build.add_argument(
        "--allow-worse",
        action="store_true",
        help="publish even when validation ranks a model below the best seen-aware baseline (logged)",
    )
    _add_embedding_argument(build)
    _add_nn_feature_argument(build)
    score.add_argument("--model", type=Path, default=None, help="artifact directory (default: the latest)")
    commands.add_parser("rollback", help="make the previous version live again").set_defaults(handler=_cmd_rollback)


def _add_embedding_argument(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--embedding",
        choices=EMBEDDING_METHODS,
        default=AUTO,
        help="post text embeddings of the test model: auto (MiniLM where the dl extra is installed, else TF-IDF), "
        "minilm (fail without the extra) or tfidf-svd",
    )


def _add_nn_feature_argument(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--nn-feature",
        action=argparse.BooleanOptionalAction,
        default=None,
        help="train the test model with the neural sequence score as one more column (default: without; it lifted"
        " test on none of the synthetic worlds, see bench/RESULTS.md)",
    )


def _parse_window(text: str) -> timedelta:
    """``7d``, ``36h`` or a number of days."""
    units = {"d": "days", "h": "hours"}
    unit = units.get(text[-1:].lower())
    try:
        return timedelta(**{unit: float(text[:-1])}) if unit else timedelta(days=float(text))
    except ValueError:
        raise argparse.ArgumentTypeError(f"window {text!r} is not like 7d or 36h") from None


def _evaluation_nn_feature(args: argparse.Namespace) -> bool:
    """``--nn-feature``, implied by ``--nn-ablation``, which compares ``test`` with the score against without it.

    Raises:
        ConfigError: ``--nn-ablation`` with ``--no-nn-feature``.
    """
    from common.errors import ConfigError

    if args.nn_ablation and args.nn_feature is False:
        raise ConfigError("--nn-ablation trains test with and without the nn score: it cannot run with --no-nn-feature")
    return bool(args.nn_feature) or args.nn_ablation


def _cmd_evaluate(settings: Settings, args: argparse.Namespace) -> int:
    from batch.evaluation.evaluate import EvaluateOptions, run_evaluation
    from common.db import check_connection, make_engine

    options = EvaluateOptions(
        as_of=args.as_of,
        window=args.window,
        k=args.k or settings.k,
        out_dir=args.out,
        shuffle_holdout=args.shuffle_holdout,
        oracle=not args.no_oracle,
        embedding=args.embedding,
        nn_feature=_evaluation_nn_feature(args),
        protocol=args.protocol,
        nn_ablation=args.nn_ablation,
    )
    engine = make_engine(settings.database_url)
    try:
        check_connection(engine)
        report = run_evaluation(settings, engine, options)
    finally:
        engine.dispose()
    for score in report.scores:
        log.info("%-16s hitrate@5=%.4f [%.4f, %.4f]", score.name, score.hitrate, score.hitrate_low, score.hitrate_high)
    log.info("report written to %s", args.out / "evaluation.md")
    return 0


def _register_evaluate(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    evaluate = commands.add_parser("evaluate", help="hitrate@5 of the model, baselines and the oracle, with a report")
    evaluate.add_argument(
        "--as-of",
        type=datetime.fromisoformat,
        default=None,
        help="cutoff T: rankings use data before T (default: end of the data minus the window)",
    )
    evaluate.add_argument(
        "--window",
        type=_parse_window,
        default=None,
        help="hold-out window, e.g. 7d (default: from 7 days, grown by whole days until 1,000 users, or a third of"
        " those with a like, liked in it, at most a quarter of the feed's span; 7 days with --as-of)",
    )
    evaluate.add_argument("--k", type=int, default=None, help="list length per user (default: POSTREC_K)")
    evaluate.add_argument("--out", type=Path, default=Path("reports"), help="report folder (default: reports)")
    evaluate.add_argument(
        "--shuffle-holdout", action="store_true", help="leakage guard: shuffle hold-out likes across users and posts"
    )
    evaluate.add_argument("--no-oracle", action="store_true", help="skip the oracle (data not from postrec seed)")
    evaluate.add_argument(
        "--protocol",
        choices=("time", "per-user"),
        default="time",
        help="time: one cutoff T, likes of [T, T + window) held out; per-user: each user's last 20%% of views held"
        " out, the models built on the rest (works on data without an oracle: add --no-oracle)",
    )
    _add_embedding_argument(evaluate)
    _add_nn_feature_argument(evaluate)
    evaluate.add_argument(
        "--nn-ablation",
        action="store_true",
        help="also train the test model without the neural sequence score on the same rows and report it as"
        " test_without_nn, with the paired difference (one extra CatBoost fit)",
    )
    evaluate.set_defaults(handler=_cmd_evaluate)


def _cmd_load(settings: Settings, args: argparse.Namespace) -> int:
    from batch.ingest.load import load_directory
    from common.db import ensure_database, make_engine

    ensure_database(settings.database_url)
    engine = make_engine(settings.database_url)
    try:
        report = load_directory(engine, args.directory)
    finally:
        engine.dispose()
    rows = ", ".join(f"{table} {count:,}" for table, count in report.rows.items())
    log.info(
        "loaded %s in %.1f s (%d warnings); run `postrec build` to serve them",
        rows,
        report.seconds,
        len(report.validation.warned),
    )
    return 0


def _register_load(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    load = commands.add_parser(
        "load",
        help="replace the source tables with user_data, post_text_df and feed_data files (CSV or Parquet) from DIR",
        description="Load user_data, post_text_df and feed_data from DIR (each .csv, .csv.gz or .parquet, named "
        "after its table) in one transaction: validated with the build's rules, nothing loaded on any error.",
    )
    load.add_argument("directory", type=Path, metavar="DIR", help="folder holding the three export files")
    load.set_defaults(handler=_cmd_load)


def register(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add the batch's subcommands."""
    _register_seed(commands)
    _register_load(commands)
    _register_ab_report(commands)
    _register_build(commands)
    _register_evaluate(commands)
