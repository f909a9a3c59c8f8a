"""Commands facing an unreachable or dying PostgreSQL print one clear message, exit 2 and never show a traceback or
the URL's password; a bad ``POSTREC_LOG_LEVEL`` and ``postgres://`` URLs are handled the same way."""

from __future__ import annotations

import threading

import psycopg2.errors
import pytest
import sqlalchemy as sa

from batch.pipeline.extract import copy_chunks
from common.errors import SourceUnavailableError
from postrec.cli import main

UNREACHABLE = "postgresql://postgres:s3cretpass@127.0.0.1:1/nowhere"


@pytest.mark.parametrize(
    "argv",
    [["db", "init"], ["seed", "--scale", "tiny"], ["evaluate"], ["ab-report", "--since", "2021-12-01"], ["build"]],
)
def test_unreachable_postgresql_is_one_message_without_the_password(argv, tmp_path, monkeypatch, capfd) -> None:
    monkeypatch.setenv("POSTREC_DATABASE_URL", UNREACHABLE)
    monkeypatch.setenv("POSTREC_DATA_DIR", str(tmp_path))

    code = main(argv)

    out, err = capfd.readouterr()
    assert code == 2
    assert "PostgreSQL at postgresql+psycopg2://postgres:***@127.0.0.1:1/nowhere is unreachable" in err
    assert "Traceback" not in err and "s3cretpass" not in out + err


def test_a_bad_log_level_is_one_message(monkeypatch, capfd) -> None:
    monkeypatch.setenv("POSTREC_LOG_LEVEL", "LOUD")

    code = main(["db", "init"])

    err = capfd.readouterr().err
    assert code == 2
    assert "log level 'LOUD' (POSTREC_LOG_LEVEL or --log-level) is not one of DEBUG" in err
    assert "Traceback" not in err


def test_a_postgres_scheme_url_works(database_url, tmp_path, monkeypatch) -> None:
    scheme, rest = database_url.split("://", 1)
    assert scheme.startswith("postgresql")
    monkeypatch.setenv("POSTREC_DATABASE_URL", f"postgres://{rest}")
    monkeypatch.setenv("POSTREC_DATA_DIR", str(tmp_path))

    assert main(["db", "init"]) == 0


def terminate_backends(engine: sa.Engine) -> None:
    admin = sa.create_engine(engine.url.set(database="postgres"), isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        sql = "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = :db AND pid <> pg_backend_pid()"
        conn.execute(sa.text(sql), {"db": engine.url.database})
    admin.dispose()


def test_postgresql_dying_mid_copy_of_an_extract_is_a_clear_error(engine) -> None:
    with engine.begin() as conn:
        conn.execute(sa.text("INSERT INTO user_data (user_id, age) SELECT g, 20 FROM generate_series(1, 200000) g"))
    killed = threading.Event()

    def consume(_chunk) -> None:
        if not killed.is_set():
            killed.set()
            terminate_backends(engine)

    with pytest.raises(SourceUnavailableError, match=r"^PostgreSQL connection failed or was lost \("):
        sql = "SELECT a.user_id, a.age FROM user_data a CROSS JOIN generate_series(1, 20)"
        copy_chunks(
            engine,
            sql,
            {"user_id": sa.Integer and __import__("polars").Int32(), "age": __import__("polars").Int32()},
            consume,
            chunk_bytes=4096,
        )
    assert killed.is_set()


def test_an_error_of_the_query_mid_copy_stays_the_querys_own(engine) -> None:
    with engine.begin() as conn:
        conn.execute(sa.text("INSERT INTO user_data (user_id, age) SELECT g, 20 FROM generate_series(1, 50000) g"))
    schema = {"user_id": __import__("polars").Int32(), "age": __import__("polars").Int32()}

    # The division fails on one row: an error of the query itself, and the connection stays open.
    sql = "SELECT user_id, age / (50000 - user_id) FROM user_data ORDER BY user_id"
    with pytest.raises(psycopg2.errors.DivisionByZero):
        copy_chunks(engine, sql, schema, lambda _chunk: None, chunk_bytes=4096)
