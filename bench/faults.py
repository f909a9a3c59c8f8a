"""Fault probes against a running API (issue 14, probes 1-4): a private redis-server, a real `postrec serve`, load
from 8 connections, one fault at a time. Prints, per probe, the requests sent, the 5xx answers other than 503 (must
be 0), the 503s, the 404s, and the seconds from the end of the fault to normal service.

    PYTHONPATH=. .venv/bin/python bench/faults.py            # bench/faults.sh runs it with probes 5 and 8

Probes:
  1 busy      a real endless Lua script makes Redis answer BUSY for FAULT_S, then SCRIPT KILL and a flip of
              `current` to v2 (a rollback the watcher must not miss); recovered = v2 answered.
  2 full      maxmemory below use under noeviction for FAULT_S, then lifted; reads must keep answering 200, the
              lost served-log entries are counted in /metrics; recovered = the served stream grows again.
  2 password  requirepass set live and the API's connections killed, for FAULT_S, then removed; recovered = 200.
  3 empty     Redis restarted empty (no version, no script) for FAULT_S, then v1 published again; no 404 may be
              answered; recovered = 200.
  4 secrets   `postrec build` and `postrec rollback` with a password-bearing unreachable Redis URL: the number of
              outputs that print the password (must be 0).
"""

from __future__ import annotations

import asyncio
import os
import re
import subprocess
import sys
import threading
import time
from collections import Counter
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import redis

from common.keys import KeyLayout
from tests.api_fixtures import OwnRedis, free_port, make_version, publish, running_server

FAULT_S = 2.0
CONNECTIONS = 8
USERS = range(200, 1200)
POSTS = list(range(1, 301))
RECOVERY_LIMIT_S = 30.0
PASSWORD = "faults-s3cretpass"  # noqa: S105  # set on the probe's own throw-away redis-server


@dataclass
class Tally:
    """Answers seen while the load runs."""

    statuses: Counter[int] = field(default_factory=Counter)
    messages: Counter[str] = field(default_factory=Counter)

    def row(self, name: str, recovered_s: float | None, note: str = "", ok: bool = True) -> Result:
        sent = sum(self.statuses.values())
        bad = sum(n for status, n in self.statuses.items() if status >= 500 and status != 503) + self.statuses[0]
        recovered = "never" if recovered_s is None else f"{recovered_s:.2f}"
        line = f"{name:<12} {sent:>8} {bad:>5} {self.statuses[503]:>6} {self.statuses[404]:>5} {recovered:>12}  {note}"
        return Result(line, ok and bad == 0 and self.statuses[404] == 0 and recovered_s is not None)


@dataclass(frozen=True)
class Result:
    """One probe's printed row, and whether it held (no 5xx but 503, no 404, recovered)."""

    line: str
    ok: bool


class Load:
    """CONNECTIONS clients asking for recommendations in a loop until stopped."""

    def __init__(self, base_url: str) -> None:
        self.base_url = base_url
        self.tally = Tally()
        self._stop = asyncio.Event()
        self._tasks: list[asyncio.Task[None]] = []

    async def __aenter__(self) -> Load:
        self._client = httpx.AsyncClient(base_url=self.base_url, timeout=10.0)
        self._tasks = [asyncio.create_task(self._hammer(n)) for n in range(CONNECTIONS)]
        return self

    async def __aexit__(self, *_: object) -> None:
        self._stop.set()
        await asyncio.gather(*self._tasks)
        await self._client.aclose()

    async def _hammer(self, n: int) -> None:
        while not self._stop.is_set():
            user = USERS[n * 97 % len(USERS)]
            n += CONNECTIONS
            try:
                response = await self._client.get("/post/recommendations/", params={"id": user})
            except httpx.TransportError as exc:
                self.tally.statuses[0] += 1
                self.tally.messages[type(exc).__name__] += 1
                continue
            self.tally.statuses[response.status_code] += 1
            if response.status_code != 200:
                self.tally.messages[response.json().get("message", "")[:90]] += 1


async def recovery_seconds(check: Callable[[], Awaitable[bool]]) -> float | None:
    started = time.monotonic()
    while time.monotonic() - started < RECOVERY_LIMIT_S:
        if await check():
            return time.monotonic() - started
        await asyncio.sleep(0.02)
    return None


@dataclass
class Deployment:
    """The probe's own Redis and API."""

    redis_server: OwnRedis
    keys: KeyLayout
    base_url: str

    def admin(self, password: str | None = None) -> redis.Redis[bytes]:
        return redis.Redis.from_url(self.redis_server.url, password=password)

    async def serving(self, version: str) -> bool:
        async with httpx.AsyncClient(base_url=self.base_url, timeout=5.0) as client:
            health = (await client.get("/health")).json()
            answer = await client.get("/post/recommendations/", params={"id": USERS[0]})
        return health.get("version") == version and answer.status_code == 200


def publish_versions(client: redis.Redis[bytes], keys: KeyLayout) -> None:
    publish(client, keys, make_version("v1", USERS, POSTS))
    publish(client, keys, make_version("v2", USERS, POSTS[::-1]), make_current=False)


async def probe_busy(deployment: Deployment) -> Result:
    admin = deployment.admin()
    admin.set(deployment.keys.current, "v1")
    await recovery_seconds(lambda: deployment.serving("v1"))
    script = threading.Thread(target=_endless_script, args=(deployment.redis_server.url,), daemon=True)
    async with Load(deployment.base_url) as load:
        script.start()
        await asyncio.sleep(FAULT_S)
        await asyncio.to_thread(_kill_script, admin)
        admin.set(deployment.keys.current, "v2")
        recovered = await recovery_seconds(lambda: deployment.serving("v2"))
    script.join(timeout=10)
    return load.tally.row("1 busy", recovered, _top(load.tally))


def _endless_script(url: str) -> None:
    try:
        redis.Redis.from_url(url).eval("while true do end", 0)  # type: ignore[no-untyped-call]
    except redis.ResponseError:  # killed by SCRIPT KILL
        return


def _kill_script(admin: redis.Redis[bytes]) -> None:
    for _ in range(500):
        try:
            admin.script_kill()  # type: ignore[no-untyped-call]
            return
        except redis.ResponseError:  # NOTBUSY: not started yet
            time.sleep(0.01)


async def probe_full(deployment: Deployment) -> Result:
    admin = deployment.admin()
    async with Load(deployment.base_url) as load:
        await asyncio.sleep(0.3)
        admin.config_set("maxmemory", 1)
        await asyncio.sleep(FAULT_S)
        admin.config_set("maxmemory", 0)
        before = admin.xlen(deployment.keys.served)
        recovered = await recovery_seconds(lambda: _grew(admin, deployment.keys, before))
    lost = await _served_log_failures(deployment.base_url)
    return load.tally.row("2 full", recovered, f"served-log entries lost (counted): {lost}; {_top(load.tally)}")


async def _grew(admin: redis.Redis[bytes], keys: KeyLayout, before: int) -> bool:
    return int(admin.xlen(keys.served)) > before


async def _served_log_failures(base_url: str) -> int:
    async with httpx.AsyncClient(base_url=base_url) as client:
        text = (await client.get("/metrics")).text
    return sum(int(n) for n in re.findall(r"^postrec_served_log_failures_total\{[^}]*\} (\d+)$", text, re.MULTILINE))


async def probe_password(deployment: Deployment) -> Result:
    admin = deployment.admin()
    async with Load(deployment.base_url) as load:
        await asyncio.sleep(0.3)
        admin.config_set("requirepass", PASSWORD)
        admin.client_kill_filter(_type="normal", skipme=True)
        await asyncio.sleep(FAULT_S)
        deployment.admin(PASSWORD).config_set("requirepass", "")
        live = (admin.get(deployment.keys.current) or b"").decode()
        recovered = await recovery_seconds(lambda: deployment.serving(live))
    leaked = sum(n for message, n in load.tally.messages.items() if PASSWORD in message)
    note = f"answers showing the password: {leaked}; {_top(load.tally)}"
    return load.tally.row("2 password", recovered, note, ok=leaked == 0)


async def probe_empty(deployment: Deployment) -> Result:
    async with Load(deployment.base_url) as load:
        await asyncio.sleep(0.3)
        await asyncio.to_thread(deployment.redis_server.stop)
        await asyncio.to_thread(lambda: deployment.redis_server.start().close())
        await asyncio.sleep(FAULT_S)
        publish(deployment.admin(), deployment.keys, make_version("v1", USERS, POSTS))
        recovered = await recovery_seconds(lambda: deployment.serving("v1"))
    return load.tally.row("3 empty", recovered, _top(load.tally))


def probe_secrets() -> Result:
    env = {**os.environ, "POSTREC_REDIS_URL": f"redis://:{PASSWORD}@127.0.0.1:{free_port()}/0"}
    postrec = str(Path(sys.executable).parent / "postrec")
    leaks = 0
    for command in (["rollback"], ["build"]):
        done = subprocess.run([postrec, *command], env=env, capture_output=True, text=True, timeout=120, check=False)
        leaks += PASSWORD in done.stdout + done.stderr
    line = f"{'4 secrets':<12} {2:>8} {'-':>5} {'-':>6} {'-':>5} {'-':>12}  outputs printing the password: {leaks}"
    return Result(line, leaks == 0)


def _top(tally: Tally) -> str:
    return "; ".join(f"{n} x {message!r}" for message, n in tally.messages.most_common(2))


async def run_probes() -> list[Result]:
    server = OwnRedis("--lua-time-limit", "50", "--maxmemory-policy", "noeviction")
    keys = KeyLayout(f"postrec_faults_{os.getpid()}")
    publish_versions(server.start(), keys)
    env = {"POSTREC_REDIS_URL": server.url, "POSTREC_PREFIX": keys.prefix, "POSTREC_API_REDIS_TIMEOUT_MS": "200"}
    try:
        with running_server(env) as base_url:
            deployment = Deployment(server, keys, base_url)
            rows = [await probe(deployment) for probe in (probe_busy, probe_full, probe_password, probe_empty)]
    finally:
        server.stop()
    return [*rows, probe_secrets()]


def main() -> int:
    print(f"{'probe':<12} {'requests':>8} {'5xx':>5} {'503':>6} {'404':>5} {'recovered_s':>12}  notes", flush=True)
    results = asyncio.run(run_probes())
    for result in results:
        print(result.line, flush=True)
    failed = sum(not result.ok for result in results)
    print("result: " + ("ok" if not failed else f"FAILED: {failed} probe(s)"))
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
