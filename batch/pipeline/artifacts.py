"""Model artifacts on disk: ``<data_dir>/models/<version>/`` holding the CatBoost models of the build (``control`` in
``model.cbm``, ``test`` in ``test.cbm``, each only when trained; an evaluation's nn ablation adds ``test_without_nn``),
their ordered feature lists with the categorical encoders, and metadata (as_of, windows, params, metrics, row
counts, embedding method, code version).

A directory is written under a temporary name and renamed into place, so a killed build never leaves a
half-written artifact that ``postrec score`` could pick up.
"""

from __future__ import annotations

import json
import shutil
import subprocess
from collections.abc import Mapping
from dataclasses import dataclass
from importlib import metadata as package_metadata
from pathlib import Path
from typing import Any, Final

import catboost

from batch.pipeline.features import FEATURE_NAMES, Encoders
from batch.pipeline.nn_feature import TEST_WITHOUT_NN
from common.ab import CONTROL, TEST
from common.errors import ArtifactMismatchError, PostrecError

MODEL_FILE: Final = "model.cbm"
MODEL_FILES: Final = {CONTROL: MODEL_FILE, TEST: "test.cbm", TEST_WITHOUT_NN: "test_without_nn.cbm"}
FEATURES_FILE: Final = "features.json"
METADATA_FILE: Final = "metadata.json"
PARTIAL_SUFFIX: Final = ".partial"


class MissingArtifactError(PostrecError):
    """No usable model artifact exists where one was asked for."""


@dataclass(frozen=True, slots=True)
class Artifact:
    """Loaded models with what they need to score.

    Attributes:
        version: The artifact's directory name (the version id of the build that trained it).
        models: The CatBoost models by group (``control``, ``test``), those the build trained.
        encoders: Categorical codes used in training.
        metadata: as_of, windows, params, metrics, row counts, embedding method, code version.
    """

    version: str
    models: dict[str, catboost.CatBoost]
    encoders: Encoders
    metadata: dict[str, Any]

    @property
    def model(self) -> catboost.CatBoost:
        """The ``control`` model.

        Raises:
            MissingArtifactError: The build trained no ``control`` model (control_percent 0).
        """
        if CONTROL not in self.models:
            raise MissingArtifactError(f"artifact {self.version} holds no {CONTROL} model: build one with it")
        return self.models[CONTROL]


def models_dir(data_dir: Path) -> Path:
    """Where artifacts live."""
    return data_dir / "models"


def code_version() -> str:
    """Package version plus the git commit when running from a checkout."""
    version = package_metadata.version("postrec")
    try:
        commit = subprocess.run(
            ["git", "rev-parse", "--short", "HEAD"],
            capture_output=True,
            text=True,
            timeout=5,
            check=True,
            cwd=Path(__file__).parent,
        ).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return version
    return f"{version}+{commit}"


def save_artifact(
    data_dir: Path,
    version: str,
    models: Mapping[str, catboost.CatBoost],
    encoders: Encoders,
    metadata: dict[str, Any],
) -> Path:
    """Write an artifact atomically (temporary directory, then rename). Returns its directory.

    Args:
        data_dir: The data folder; artifacts go under its ``models/``.
        version: The directory's name.
        models: Trained models by group (keys of :data:`MODEL_FILES`).
        encoders: Categorical codes used in training.
        metadata: Anything JSON-serialisable describing the build.
    """
    final = models_dir(data_dir) / version
    partial = final.with_name(final.name + PARTIAL_SUFFIX)
    shutil.rmtree(partial, ignore_errors=True)
    partial.mkdir(parents=True)
    for name, model in models.items():
        model.save_model(str(partial / MODEL_FILES[name]))
    features = {
        "features": list(FEATURE_NAMES),
        "models": {name: list(model.feature_names_ or []) for name, model in models.items()},
        "encoders": json.loads(encoders.to_json()),
    }
    (partial / FEATURES_FILE).write_text(json.dumps(features, ensure_ascii=False, indent=1))
    full_metadata = {"version": version, "code_version": code_version(), **metadata}
    (partial / METADATA_FILE).write_text(json.dumps(full_metadata, indent=1, default=str))
    partial.rename(final)
    return final


def _check_features(saved: list[str], path: Path) -> None:
    # A test model's list goes on with the embedding features; their names are checked when they are rebuilt.
    if saved[: len(FEATURE_NAMES)] != list(FEATURE_NAMES):
        added = sorted(set(FEATURE_NAMES) - set(saved))
        dropped = sorted(set(saved) - set(FEATURE_NAMES))
        raise ArtifactMismatchError(
            f"model artifact {path} was trained on a different feature list (code adds {added or 'none'}, "
            f"drops {dropped or 'none'}, or reorders them): run `postrec build` to train a model for this code"
        )


def load_artifact(path: Path) -> Artifact:
    """Load an artifact directory and check it fits this code.

    Raises:
        MissingArtifactError: A file of the artifact is missing, or it holds no model.
        ArtifactMismatchError: Its feature list differs from :data:`batch.pipeline.features.FEATURE_NAMES`.
    """
    files = [path / name for name in (FEATURES_FILE, METADATA_FILE)]
    missing = [file.name for file in files if not file.is_file()]
    if missing or not any((path / file).is_file() for file in MODEL_FILES.values()):
        missing = missing or ["a model file"]
        raise MissingArtifactError(f"model artifact {path} lacks {', '.join(missing)}: run `postrec build`")
    saved = json.loads((path / FEATURES_FILE).read_text())
    _check_features(list(saved.get("features", [])), path)
    models = {name: _load_model(path / file, path) for name, file in MODEL_FILES.items() if (path / file).is_file()}
    encoders = Encoders.from_json(json.dumps(saved.get("encoders", {})))
    return Artifact(path.name, models, encoders, json.loads((path / METADATA_FILE).read_text()))


def _load_model(file: Path, path: Path) -> catboost.CatBoost:
    model = catboost.CatBoost()
    model.load_model(str(file))
    _check_features(list(model.feature_names_ or []), path)
    return model


def latest_artifact_path(data_dir: Path) -> Path:
    """The newest complete artifact (by the time in its metadata, then by name).

    Raises:
        MissingArtifactError: None exists yet.
    """
    candidates = [
        path
        for path in models_dir(data_dir).glob("*")
        if path.is_dir() and not path.name.endswith(PARTIAL_SUFFIX) and (path / METADATA_FILE).is_file()
    ]
    if not candidates:
        raise MissingArtifactError(f"no model artifact under {models_dir(data_dir)}: run `postrec build` first")
    return max(candidates, key=_created_at_and_name)


def _created_at_and_name(path: Path) -> tuple[str, str]:
    return str(json.loads((path / METADATA_FILE).read_text()).get("created_at", "")), path.name
