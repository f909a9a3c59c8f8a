"""No command prints a password: every command that reaches Redis or PostgreSQL runs with password-bearing URLs
(Redis unreachable; PostgreSQL unreachable, then reachable) and all its output, and the API's answers, are grepped."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import httpx

from tests.api_fixtures import free_port

REDIS_PASSWORD = "redis-s3cretpass"  # noqa: S105  # throw-away passwords of servers that do not exist
PG_PASSWORD = "pg-s3cretpass"  # noqa: S105
POSTREC = str(Path(sys.executable).parent / "postrec")
# PostgreSQL unreachable: the commands that start from PostgreSQL.
PG_COMMANDS = (["db", "init"], ["seed", "--scale", "tiny"], ["evaluate"])
# PostgreSQL reachable (trust: the password is ignored), Redis unreachable: every command that reaches Redis.
REDIS_COMMANDS = (
    ["build"],
    ["score"],
    ["rollback"],
    ["refresh"],
    ["sync-likes"],
    ["worker"],
)


def environment(database_url: str, tmp_path: Path) -> dict[str, str]:
    redis_url = f"redis://:{REDIS_PASSWORD}@127.0.0.1:{free_port()}/0"
    return {**os.environ, "POSTREC_REDIS_URL": redis_url, "POSTREC_DATABASE_URL": database_url,
            "POSTREC_DATA_DIR": str(tmp_path)}  # fmt: skip


def run_all(commands: tuple[list[str], ...], env: dict[str, str]) -> dict[str, str]:
    """Each command's output; they run side by side (each spends seconds importing, and fails fast)."""
    running = {
        " ".join(command): subprocess.Popen(
            [POSTREC, *command], env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True
        )
        for command in commands
    }
    outputs = {}
    for name, process in running.items():
        output, _ = process.communicate(timeout=120)
        assert process.returncode != 0, f"postrec {name} should have failed: {output}"
        outputs[name] = output
    return outputs


def assert_masked(output: str, what: str) -> None:
    assert REDIS_PASSWORD not in output and PG_PASSWORD not in output, f"{what} printed a password:\n{output}"
    assert "Traceback" not in output, f"{what} printed a traceback:\n{output}"
    assert ":***@" in output, f"{what} did not say where the server is:\n{output}"


def test_no_password_when_postgresql_is_unreachable(tmp_path: Path) -> None:
    env = environment(f"postgresql://root:{PG_PASSWORD}@127.0.0.1:{free_port()}/postrec", tmp_path)
    for name, output in run_all(PG_COMMANDS, env).items():
        assert_masked(output, f"postrec {name}")


def test_no_password_when_redis_is_unreachable(database_url: str, tmp_path: Path) -> None:
    env = environment(database_url.replace("://root@", f"://root:{PG_PASSWORD}@"), tmp_path)
    for name, output in run_all(REDIS_COMMANDS, env).items():
        assert_masked(output, f"postrec {name}")


def test_no_password_from_serve_or_its_answers(database_url: str, tmp_path: Path) -> None:
    env = environment(database_url.replace("://root@", f"://root:{PG_PASSWORD}@"), tmp_path)
    port = free_port()
    log = tmp_path / "serve.log"
    with log.open("wb") as out:
        server = subprocess.Popen([POSTREC, "serve", "--port", str(port)], env=env, stdout=out, stderr=out)
    try:
        answers = [_get(f"http://127.0.0.1:{port}{path}") for path in ("/health", "/post/recommendations/?id=200")]
    finally:
        server.terminate()
        server.wait(timeout=15)
    output = log.read_text() + "".join(answers)
    assert REDIS_PASSWORD not in output and PG_PASSWORD not in output, output
    assert "Redis is unreachable" in answers[1]


def _get(url: str) -> str:
    for _ in range(300):  # until the server answers (not a timing check)
        try:
            return httpx.get(url, timeout=5.0).text
        except httpx.TransportError:
            time.sleep(0.1)
    raise AssertionError(f"postrec serve never answered at {url}")
