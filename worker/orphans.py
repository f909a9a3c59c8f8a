"""Child processes that end with their worker.

An RQ worker forks a work horse per job and a scheduler process. When the worker is killed hard (SIGKILL, the
OOM killer, a container stopped without grace) both would live on as orphans: the horse finishing or corrupting a
shard that is also retried elsewhere, the scheduler holding the queues' scheduler lock so that no other worker moves
due retries. Each child therefore asks the kernel for SIGKILL when its parent dies.
"""

from __future__ import annotations

import ctypes
import logging
import os
import signal
import sys
import threading
import time
from typing import Final

log = logging.getLogger(__name__)

# prctl(2): "send me this signal when my parent thread dies".
PR_SET_PDEATHSIG: Final = 1
# Where prctl does not exist (not Linux), a thread looks for a new parent this often.
POLL_S: Final = 1.0


def die_with_parent(parent_pid: int) -> None:
    """End this process (SIGKILL) as soon as ``parent_pid``, its parent at fork, is gone.

    Call it first thing in a freshly forked child, with the pid the parent had before forking: a parent that
    died in between is caught too.
    """
    if sys.platform.startswith("linux"):
        _set_death_signal()
    else:
        threading.Thread(target=_watch_parent, args=(parent_pid,), name="die-with-parent", daemon=True).start()
    if os.getppid() != parent_pid:  # the parent died before the kernel was told
        os.kill(os.getpid(), signal.SIGKILL)


def _set_death_signal() -> None:
    libc = ctypes.CDLL(None, use_errno=True)
    if libc.prctl(PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0) != 0:
        error = ctypes.get_errno()
        log.warning("prctl(PR_SET_PDEATHSIG) failed (%s): this child may outlive its worker", os.strerror(error))


def _watch_parent(parent_pid: int) -> None:
    while os.getppid() == parent_pid:
        time.sleep(POLL_S)
    os.kill(os.getpid(), signal.SIGKILL)
