"""The API stays light: serving never loads the batch's heavy libraries, and importing builds nothing."""

from __future__ import annotations

import subprocess
import sys

HEAVY = ("torch", "catboost", "polars", "sklearn", "implicit", "numpy")


def test_api_modules_load_no_heavy_library() -> None:
    code = (
        "import sys, api.app, api.server, api.cli, api.routes;"
        f"print(','.join(m for m in {HEAVY!r} if m in sys.modules))"
    )
    loaded = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.strip()
    assert loaded == ""


def test_importing_the_app_module_builds_no_app() -> None:
    import api.app

    assert not any(type(value).__name__ == "Litestar" for value in vars(api.app).values())
