"""The RQ worker and scheduler of ``postrec worker``: rq's own, tuned so that a worker killed hard in the middle of
a job costs a retry within about a minute, not many.

What decides how long a dead worker's job waits (rq's defaults in brackets):

- its heartbeat in the started registry expires :data:`JOB_MONITORING_INTERVAL_S` + :data:`HEARTBEAT_GRACE_S`
  after the last beat [30 + 60 s];
- a surviving worker notices at its next registry clean-up, every :data:`MAINTENANCE_INTERVAL_S` [10 min], and an
  idle one wakes for it every :data:`WORKER_TTL_S` - 15 s [405 s];
- the retry is due ``POSTREC_JOB_RETRY_INTERVAL_SECONDS`` later and is moved to its queue by the scheduler holding
  the queue's lock, which a dead scheduler keeps for :data:`worker.scheduler_lock.LOCK_TTL_S` [61 s], or not at all
  when it ran on this host (see :mod:`worker.scheduler_lock`);
- the work horse and the scheduler process die with their worker (:mod:`worker.orphans`) instead of living on.
"""

from __future__ import annotations

import os
import socket
from typing import Any, Final

from rq import Worker
from rq.defaults import DEFAULT_LOGGING_DATE_FORMAT, DEFAULT_LOGGING_FORMAT
from rq.job import Job
from rq.queue import Queue
from rq.scheduler import RQScheduler

from worker.orphans import die_with_parent
from worker.scheduler_lock import clear_dead_locks, release_locks, shorten_locks

MAINTENANCE_INTERVAL_S: Final = 10
WORKER_TTL_S: Final = 25
JOB_MONITORING_INTERVAL_S: Final = 5
# Slack for a heartbeat that comes late because both cores are busy scoring.
HEARTBEAT_GRACE_S: Final = 15


class RecoveringScheduler(RQScheduler):
    """rq's scheduler process, holding its locks for :data:`worker.scheduler_lock.LOCK_TTL_S` past each beat and
    dying with the worker that forked it."""

    def start(self) -> Any:  # noqa: ANN401 - rq's own return value (the process)
        """Fork the scheduler process, remembering this process as the parent it dies with."""
        self._parent_pid = os.getpid()
        return super().start()  # type: ignore[no-untyped-call]

    def work(self) -> None:
        """The scheduler process's loop (rq's), once it is tied to its parent."""
        die_with_parent(self._parent_pid)
        super().work()  # type: ignore[no-untyped-call]

    def heartbeat(self) -> None:
        """rq's heartbeat, then the owned locks' TTL cut to :data:`worker.scheduler_lock.LOCK_TTL_S`."""
        super().heartbeat()  # type: ignore[no-untyped-call]
        shorten_locks(self.connection, self.name, self.acquired_locks)


class RecoveringWorker(Worker):
    """rq's forking worker with the timings above, a scheduler that dies with it, and horses that do too."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:  # noqa: ANN401 - rq's own arguments
        kwargs.setdefault("maintenance_interval", MAINTENANCE_INTERVAL_S)
        kwargs.setdefault("worker_ttl", WORKER_TTL_S)
        kwargs.setdefault("job_monitoring_interval", JOB_MONITORING_INTERVAL_S)
        super().__init__(*args, **kwargs)
        self._worker_pid = os.getpid()

    def get_heartbeat_ttl(self, job: Job, working_time: float = 0.0) -> int:
        """How long the job's entry in the started registry outlives a beat: the next beat is due within
        ``job_monitoring_interval`` (or the job's time limit, if sooner)."""
        interval = float(self.job_monitoring_interval)
        if job.timeout and job.timeout > 0:
            interval = min(job.timeout - working_time, interval)
        return int(interval) + HEARTBEAT_GRACE_S

    def main_work_horse(self, job: Job, queue: Queue) -> None:
        """The work horse (rq's), once it is tied to the worker that forked it."""
        die_with_parent(self._worker_pid)
        super().main_work_horse(job, queue)

    def _start_scheduler(
        self,
        burst: bool = False,
        logging_level: str | None = "INFO",
        date_format: str = DEFAULT_LOGGING_DATE_FORMAT,
        log_format: str = DEFAULT_LOGGING_FORMAT,
    ) -> None:
        """rq's scheduler start-up with :class:`RecoveringScheduler`, after clearing locks of dead schedulers."""
        clear_dead_locks(self.connection, self.queue_names(), socket.gethostname())
        scheduler = RecoveringScheduler(
            self.queues,
            connection=self.connection,
            logging_level=logging_level if logging_level is not None else self.log.level,
            date_format=date_format,
            log_format=log_format,
            serializer=self.serializer,
        )
        self.scheduler = scheduler
        scheduler.acquire_locks()  # type: ignore[no-untyped-call]
        if not scheduler.acquired_locks:
            return
        if not burst:
            scheduler.start()
            return
        try:  # a burst worker moves what is due once, then lets go
            scheduler.register_birth()
            scheduler.enqueue_scheduled_jobs()  # type: ignore[no-untyped-call]
        finally:
            scheduler.release_locks()  # type: ignore[no-untyped-call]
            scheduler.register_death()

    def run_maintenance_tasks(self) -> None:
        """rq's maintenance (take over a free scheduler lock, clean registries), after clearing dead locks."""
        if self.scheduler is not None:
            clear_dead_locks(self.connection, self.queue_names(), socket.gethostname())
        super().run_maintenance_tasks()  # type: ignore[no-untyped-call]

    def teardown(self) -> None:
        """rq's teardown, then any lock that the scheduler, killed or not, still holds."""
        super().teardown()  # type: ignore[no-untyped-call]
        if self.scheduler is not None and not self.is_horse:
            release_locks(self.connection, self.scheduler.name, self.queue_names())
