"""The path a new user's machine takes: nothing answers at the configured URLs, the data dir is the default relative
``.data``, and the commands of the README start, fill and stop their own servers.

Runs the console script in child processes from a new working directory, once as root (where PostgreSQL must run
as an unprivileged system user) and once as an ordinary user, the way a developer's laptop runs it.
"""

from __future__ import annotations

import os
import pwd
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

REPO = Path(__file__).resolve().parents[2]
ORDINARY_USER = "postrec-laptop"
CLI_MODULE = "postrec"

pytestmark = pytest.mark.slow


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def listens(port: int) -> bool:
    with socket.socket() as sock:
        sock.settimeout(0.5)
        return sock.connect_ex(("127.0.0.1", port)) == 0


@dataclass(frozen=True)
class Machine:
    """A working directory, the URLs of servers that do not exist yet, and how to run commands there."""

    cwd: Path
    env: dict[str, str]
    prefix: list[str]  # runuser and the interpreter, before the CLI's own arguments
    pg_port: int
    redis_port: int

    def command(self, *args: str) -> list[str]:
        return [*self.prefix, "-m", CLI_MODULE, *args]

    def run(self, *args: str, timeout: float = 600) -> subprocess.CompletedProcess[str]:
        done = subprocess.run(
            self.command(*args), cwd=self.cwd, env=self.env, capture_output=True, text=True, timeout=timeout
        )
        assert done.returncode == 0, f"postrec {' '.join(args)} failed:\n{done.stdout}\n{done.stderr}"
        return done


def _ensure_user(name: str) -> None:
    try:
        pwd.getpwnam(name)
    except KeyError:
        subprocess.run(["useradd", "--create-home", name], check=True, capture_output=True)


def _interpreter_for(user: str | None) -> list[str]:
    """The command prefix that runs this interpreter as ``user`` (None: this process's user).

    A virtual environment's interpreter may live where another user cannot reach (pyenv under a private /root). The
    user then keeps only the capability to read and search directories, enough to load the interpreter and its
    packages; it is still not root, which is all PostgreSQL checks.
    """
    if user is None:
        return [sys.executable]
    runuser = ["runuser", "-u", user, "--"]
    if subprocess.run([*runuser, sys.executable, "-c", "pass"], capture_output=True).returncode == 0:
        return [*runuser, sys.executable]
    identity = [f"--reuid={user}", f"--regid={user}", "--init-groups"]
    capability = ["--inh-caps=+dac_read_search", "--ambient-caps=+dac_read_search"]
    return ["setpriv", *identity, *capability, sys.executable]


def _environment(pg_port: int, redis_port: int) -> dict[str, str]:
    env = {name: value for name, value in os.environ.items() if not name.startswith("POSTREC_")}
    env["POSTREC_DATABASE_URL"] = f"postgresql://postgres@127.0.0.1:{pg_port}/postrec"
    env["POSTREC_REDIS_URL"] = f"redis://127.0.0.1:{redis_port}/0"
    env["POSTREC_LOG_LEVEL"] = "WARNING"
    return env


@pytest.fixture(params=["as-root", "as-ordinary-user"])
def machine(request: pytest.FixtureRequest) -> Iterator[Machine]:
    is_root = os.geteuid() == 0
    if request.param == "as-root" and not is_root:
        pytest.skip("the root path needs root")
    user = ORDINARY_USER if request.param == "as-ordinary-user" and is_root else None
    if user is not None:
        _ensure_user(user)
    cwd = Path(tempfile.mkdtemp(prefix="postrec-fresh-"))
    cwd.chmod(0o755)  # the system user PostgreSQL runs as under root must be able to walk into .data
    if user is not None:
        shutil.chown(cwd, user)
    pg_port, redis_port = free_port(), free_port()
    found = Machine(cwd, _environment(pg_port, redis_port), _interpreter_for(user), pg_port, redis_port)
    assert not listens(pg_port) and not listens(redis_port)
    yield found
    subprocess.run(found.command("services", "down"), cwd=cwd, env=found.env, capture_output=True, check=False)
    shutil.rmtree(cwd, ignore_errors=True)


def _serve(machine: Machine, port: int) -> subprocess.Popen[str]:
    return subprocess.Popen(
        machine.command("serve", "--port", str(port), "--workers", "1", "--pidfile", ".data/api.pid"),
        cwd=machine.cwd,
        env=machine.env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        start_new_session=True,
    )


def _first_answer(url: str, timeout_s: float = 60.0) -> httpx.Response:
    deadline = time.monotonic() + timeout_s
    while True:
        try:
            return httpx.get(url, timeout=5.0)
        except httpx.TransportError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.3)


def _stop(server: subprocess.Popen[str]) -> None:
    os.killpg(server.pid, signal.SIGTERM)
    try:
        server.wait(timeout=20)
    except subprocess.TimeoutExpired:
        os.killpg(server.pid, signal.SIGKILL)
        server.wait()


def _server_processes(data_dir: Path) -> list[str]:
    """Command lines of live processes that run from the data dir (the embedded servers would)."""
    found = []
    for pid in filter(str.isdigit, os.listdir("/proc")):
        try:
            cmdline = Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
        except OSError:
            continue
        if str(data_dir) in cmdline:
            found.append(cmdline)
    return found


def test_readme_path_on_a_machine_with_no_servers(machine: Machine) -> None:
    machine.run("services", "up")
    assert listens(machine.pg_port) and listens(machine.redis_port)
    assert (machine.cwd / ".data" / "pg" / "PG_VERSION").exists()  # the default relative data dir, in cwd

    machine.run("db", "init")
    machine.run("seed", "--scale", "tiny")
    machine.run("build", "--allow-worse")  # the tiny world is too small for the model to beat popularity

    api_port = free_port()
    server = _serve(machine, api_port)
    try:
        answer = _first_answer(f"http://127.0.0.1:{api_port}/post/recommendations/?id=200&limit=5")
        assert answer.status_code == 200, answer.text
        body = answer.json()
        assert body["exp_group"] in ("control", "test")
        assert len(body["recommendations"]) == 5

        machine.run("services", "down")  # what `make stop` runs: the API it recorded goes too
        server.wait(timeout=30)
    finally:
        if server.poll() is None:
            _stop(server)
    assert not listens(machine.pg_port) and not listens(machine.redis_port) and not listens(api_port)
    assert _server_processes(machine.cwd / ".data") == []


def test_failed_start_reports_the_server_log_not_a_traceback(machine: Machine) -> None:
    # A plain TCP listener holds PostgreSQL's port and speaks no PostgreSQL: nothing answers, so the embedded server
    # is started, cannot bind, and must say why.
    with socket.socket() as blocker:
        blocker.bind(("127.0.0.1", machine.pg_port))
        blocker.listen()
        done = subprocess.run(
            machine.command("services", "up"),
            cwd=machine.cwd,
            env=machine.env,
            capture_output=True,
            text=True,
            timeout=120,
        )
    assert done.returncode == 2
    assert "Traceback" not in done.stderr
    assert "starting embedded PostgreSQL" in done.stderr
    assert "server.log" in done.stderr  # the end of the log, where the reason is
