"""``postrec worker``, ``scheduler``, ``sync-likes``, ``refresh``."""

from __future__ import annotations

import argparse
import json
import logging

from common.settings import Settings, queue_url
from worker.roles import ROLES

log = logging.getLogger("postrec.worker")

DEFAULT_WAIT_S = 600.0


def _cmd_worker(settings: Settings, args: argparse.Namespace) -> int:
    from worker.runner import run_worker

    run_worker(
        settings, args.queues, burst=args.burst, with_scheduler=not args.no_scheduler, preload=not args.no_preload
    )
    return 0


def _cmd_scheduler(settings: Settings, _args: argparse.Namespace) -> int:
    from worker.runner import run_scheduler

    run_scheduler(settings)
    return 0


def _cmd_sync_likes(settings: Settings, args: argparse.Namespace) -> int:
    from worker import jobs
    from worker.connections import open_redis
    from worker.queues import enqueue_job
    from worker.waiting import wait_for_result

    with open_redis(queue_url(settings)) as connection:
        job = enqueue_job(connection, settings, jobs.sync_likes)
        log.info("enqueued %s: job=%s queue=%s", job.func_name, job.id, job.origin)
        if args.wait:
            print(json.dumps(wait_for_result(job, args.timeout)))
    return 0


def _cmd_refresh(settings: Settings, args: argparse.Namespace) -> int:
    from worker import jobs
    from worker.connections import open_redis
    from worker.queues import enqueue_job
    from worker.waiting import wait_for_refresh, wait_for_result

    with open_redis(queue_url(settings)) as connection:
        if args.user is not None:
            job = enqueue_job(connection, settings, jobs.refresh_user, args.user)
        else:
            job = enqueue_job(connection, settings, jobs.rescore if args.rescore else jobs.refresh)
        log.info("enqueued %s: job=%s queue=%s", job.func_name, job.id, job.origin)
        if args.wait:
            wait = wait_for_result if args.user is not None else wait_for_refresh
            print(json.dumps(wait(job, args.timeout)))
    return 0


def _add_wait(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--wait", action="store_true", help="block until the job ends; print its result as JSON")
    parser.add_argument(
        "--timeout", type=float, default=DEFAULT_WAIT_S, help=f"seconds to wait with --wait (default {DEFAULT_WAIT_S})"
    )


def register(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add the worker's subcommands."""
    worker = commands.add_parser("worker", help="run an RQ worker on this deployment's queues")
    worker.add_argument(
        "--queues", nargs="+", choices=ROLES, default=list(ROLES), help="queue roles, highest priority first"
    )
    worker.add_argument("--burst", action="store_true", help="quit once the queues are empty")
    worker.add_argument(
        "--no-scheduler", action="store_true", help="do not move delayed jobs (retries after an interval) to queues"
    )
    worker.add_argument(
        "--no-preload", action="store_true", help="import the refresh's modules in each job, not once at start"
    )
    worker.set_defaults(handler=_cmd_worker)
    scheduler = commands.add_parser("scheduler", help="enqueue the recurring jobs on time (run one per deployment)")
    scheduler.set_defaults(handler=_cmd_scheduler)
    sync = commands.add_parser("sync-likes", help="enqueue a sync of new likes into the liked sets")
    _add_wait(sync)
    sync.set_defaults(handler=_cmd_sync_likes)
    refresh = commands.add_parser(
        "refresh", help="enqueue a refresh: extract, train, score in shards on the workers, flip when all landed"
    )
    what = refresh.add_mutually_exclusive_group()
    what.add_argument("--rescore", action="store_true", help="keep the live model; score it on fresh features")
    what.add_argument("--user", type=int, default=None, help="rescore only this user of the live version, now")
    _add_wait(refresh)
    refresh.set_defaults(handler=_cmd_refresh)
