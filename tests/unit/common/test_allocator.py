"""Polars' allocator is told to return freed pages before polars loads, and a user's own setting wins."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from common.allocator import JEMALLOC_ENV, RETURN_AT_ONCE, return_freed_memory_at_once


def test_sets_the_variable_when_absent(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(JEMALLOC_ENV, raising=False)
    return_freed_memory_at_once()
    assert os.environ[JEMALLOC_ENV] == RETURN_AT_ONCE


def test_keeps_a_users_own_setting(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(JEMALLOC_ENV, "dirty_decay_ms:5000")
    return_freed_memory_at_once()
    assert os.environ[JEMALLOC_ENV] == "dirty_decay_ms:5000"


def test_the_console_script_module_does_not_load_polars_before_main_runs() -> None:
    # The setting is read once, when polars loads: the entry point must get to it first.
    probe = "import sys, postrec.cli; print('polars' in sys.modules)"
    loaded = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True).stdout
    assert loaded.strip() == "False"
