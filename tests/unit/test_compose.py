"""The deployment files, checked as far as possible without a Docker engine: docker-compose.yml against the CLI
parser and the Settings fields, the Dockerfile against the repository."""

from __future__ import annotations

import importlib.util
import re
import tomllib
from dataclasses import fields
from pathlib import Path
from typing import Any

import pytest
import yaml
from packaging.specifiers import SpecifierSet

from common.settings import ENV_PREFIX, Settings
from postrec.cli import build_parser

ROOT = Path(__file__).resolve().parents[2]
INTERPOLATION = re.compile(r"\$\{(\w+)(?::?-([^}]*))?\}")
REQUIRED_SERVICES = {"postgres", "redis", "api", "worker", "scheduler", "seed", "build"}


def interpolate(text: str) -> str:
    """What Compose substitutes with no variables set: each ``${VAR:-default}`` becomes its default."""
    return INTERPOLATION.sub(lambda match: match.group(2) or "", text)


@pytest.fixture(scope="module")
def compose() -> dict[str, Any]:
    return yaml.safe_load(interpolate((ROOT / "docker-compose.yml").read_text()))


@pytest.fixture(scope="module")
def services(compose: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return compose["services"]


def postrec_commands(services: dict[str, dict[str, Any]]) -> list[tuple[str, list[str]]]:
    return [(name, s["command"]) for name, s in services.items() if s.get("command", [None])[0] == "postrec"]


def is_one_shot(service: dict[str, Any]) -> bool:
    return service.get("restart") == "no"


def test_every_required_service_is_defined(services: dict[str, dict[str, Any]]) -> None:
    assert set(services) >= REQUIRED_SERVICES


@pytest.mark.parametrize("name", sorted(REQUIRED_SERVICES - {"postgres", "redis"}))
def test_postrec_services_run_a_postrec_command(services: dict[str, dict[str, Any]], name: str) -> None:
    assert services[name]["command"][0] == "postrec"


def test_every_postrec_command_parses_with_the_cli(services: dict[str, dict[str, Any]]) -> None:
    parser = build_parser()
    commands = postrec_commands(services)
    assert {name for name, _ in commands} >= REQUIRED_SERVICES - {"postgres", "redis"}
    for name, command in commands:
        try:
            parser.parse_args(command[1:])
        except SystemExit:
            pytest.fail(f"service {name}: `{' '.join(command)}` is not a valid postrec command (yet)")


def test_every_postrec_variable_is_a_settings_field(services: dict[str, dict[str, Any]]) -> None:
    known = {ENV_PREFIX + field.name.upper() for field in fields(Settings)}
    for name, service in services.items():
        variables = {key for key in service.get("environment", {}) if key.startswith(ENV_PREFIX)}
        assert variables <= known, f"service {name} sets unknown variables {sorted(variables - known)}"


def test_postrec_services_point_at_the_compose_servers(services: dict[str, dict[str, Any]]) -> None:
    environment = services["worker"]["environment"]
    assert "@postgres:" in environment["POSTREC_DATABASE_URL"]
    assert environment["POSTREC_REDIS_URL"].startswith("redis://redis:")


@pytest.mark.parametrize("name", sorted(REQUIRED_SERVICES))
def test_every_service_has_a_healthcheck_or_is_a_one_shot(services: dict[str, dict[str, Any]], name: str) -> None:
    service = services[name]
    assert is_one_shot(service) or service.get("healthcheck", {}).get("test"), name


def test_one_shots_stay_out_of_a_plain_up(services: dict[str, dict[str, Any]]) -> None:
    assert all(service.get("profiles") for service in services.values() if is_one_shot(service))


def test_health_check_modules_exist(services: dict[str, dict[str, Any]]) -> None:
    for service in services.values():
        test = service.get("healthcheck", {}).get("test", [])
        if test[1:3] == ["python", "-m"]:
            assert importlib.util.find_spec(test[3]) is not None, test


def test_named_volumes_are_declared(compose: dict[str, Any]) -> None:
    declared = set(compose.get("volumes") or {})
    for name, service in compose["services"].items():
        for volume in service.get("volumes", []):
            source = volume.split(":", 1)[0]
            if not source.startswith((".", "/")):
                assert source in declared, f"service {name} mounts undeclared volume {source}"


def test_dependencies_name_services_and_wait_for_health(services: dict[str, dict[str, Any]]) -> None:
    for name, service in services.items():
        for dependency, rule in (service.get("depends_on") or {}).items():
            assert dependency in services, f"{name} depends on unknown service {dependency}"
            assert rule["condition"] == "service_healthy"


def test_worker_can_scale(services: dict[str, dict[str, Any]]) -> None:
    worker = services["worker"]
    assert "container_name" not in worker and "ports" not in worker


def dockerfile() -> str:
    return (ROOT / "Dockerfile").read_text()


def test_dockerfile_copies_only_files_that_exist() -> None:
    for line in dockerfile().splitlines():
        if line.startswith("COPY") and "--from" not in line:
            for source in line.split()[1:-1]:
                assert (ROOT / source).exists(), f"Dockerfile copies missing {source}"


def stages() -> list[tuple[str, list[str]]]:
    """(base image, instruction lines) of each ``FROM`` stage of the Dockerfile."""
    found: list[tuple[str, list[str]]] = []
    for line in dockerfile().splitlines():
        if line.startswith("FROM "):
            found.append((line.split()[1], []))
        elif found and line and not line.startswith("#"):
            found[-1][1].append(line)
    return found


def project() -> dict[str, Any]:
    return tomllib.loads((ROOT / "pyproject.toml").read_text())


def test_base_images_run_a_python_the_project_accepts() -> None:
    accepted = SpecifierSet(project()["project"]["requires-python"])
    for image, _ in stages():
        version = re.fullmatch(r"python:(\d+\.\d+)(?:\.\d+)?-slim", image)
        assert version is not None, f"base image {image} is not an official slim Python image"
        assert f"{version.group(1)}.0" in accepted, f"{image} does not satisfy requires-python {accepted}"


def test_the_image_holds_every_package_the_project_installs() -> None:
    copied = {line.split()[1] for _, lines in stages() for line in lines if line.startswith("COPY ")}
    patterns = project()["tool"]["setuptools"]["packages"]["find"]["include"]
    top_level = {pattern.rstrip("*") for pattern in patterns}
    assert top_level <= copied, f"the image lacks {sorted(top_level - copied)}: `postrec` would fail to import them"


def test_runtime_stage_takes_the_build_stage_venv_and_drops_root() -> None:
    (_, build), (_, runtime) = stages()
    assert all("-c constraints.txt" in line for line in build if "pip install" in line)
    assert any(line.startswith("COPY --from=build /opt/venv") for line in runtime)
    users = [line.split()[1] for line in runtime if line.startswith("USER ")]
    assert users and users[-1] not in {"root", "0"}


def test_dockerignore_keeps_local_state_out_of_the_image() -> None:
    ignored = set((ROOT / ".dockerignore").read_text().split())
    assert {".git", ".venv", ".data"} <= ignored
