"""Our code uses no deprecated API of its libraries: building the app, the command line and the worker warns of
nothing (a deprecated call warns once per app a test builds: dozens of warnings in a test run)."""

from __future__ import annotations

import warnings

import redis


def test_building_the_app_the_cli_and_the_worker_warns_of_no_deprecation() -> None:
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        from api.app import create_app
        from postrec.cli import build_parser
        from worker.recovering import RecoveringWorker

        create_app()
        build_parser()
        nowhere = redis.Redis(port=1)  # never connected to: the worker is only built
        RecoveringWorker(["postrec_test:live"], connection=nowhere, prepare_for_work=False)
    deprecations = [str(w.message) for w in caught if issubclass(w.category, DeprecationWarning)]
    assert deprecations == []
