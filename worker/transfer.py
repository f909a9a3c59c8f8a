"""Moving a refresh's inputs between machines through Redis: models as ``.cbm`` bytes, arrays as msgpack.

A scoring shard may run on any machine, so nothing it reads may be a local path: the refresh job stores the
model and the feature arrays in Redis under the new version's keys, and each shard reads them back. Arrays travel
as raw little-endian buffers with their dtype and shape (no pickle: a blob is data, never code).
"""

from __future__ import annotations

import tempfile
from collections.abc import Mapping
from pathlib import Path

import catboost
import msgspec
import numpy as np
import numpy.typing as npt
import redis

from common.errors import WorkerJobError


class ArrayBlob(msgspec.Struct, frozen=True, array_like=True):
    """One numpy array on the wire."""

    dtype: str
    shape: list[int]
    data: bytes


def encode_arrays(arrays: Mapping[str, npt.NDArray[np.generic]]) -> bytes:
    """msgpack of name -> array (dtype, shape, raw buffer)."""
    blobs = {name: _to_blob(array) for name, array in arrays.items()}
    return msgspec.msgpack.encode(blobs)


def decode_arrays(data: bytes) -> dict[str, npt.NDArray[np.generic]]:
    """The arrays of :func:`encode_arrays`, writable and in C order."""
    blobs = msgspec.msgpack.decode(data, type=dict[str, ArrayBlob])
    return {name: _from_blob(blob) for name, blob in blobs.items()}


def _to_blob(array: npt.NDArray[np.generic]) -> ArrayBlob:
    contiguous = np.ascontiguousarray(array)
    little = contiguous.astype(contiguous.dtype.newbyteorder("<"), copy=False)
    return ArrayBlob(dtype=little.dtype.str, shape=list(little.shape), data=little.tobytes())


def _from_blob(blob: ArrayBlob) -> npt.NDArray[np.generic]:
    return np.frombuffer(blob.data, dtype=np.dtype(blob.dtype)).reshape(blob.shape).copy()


def model_to_bytes(model: catboost.CatBoost) -> bytes:
    """The model in CatBoost's own ``.cbm`` format."""
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "model.cbm"
        model.save_model(str(path))
        return path.read_bytes()


def model_from_bytes(data: bytes) -> catboost.CatBoost:
    """A model from :func:`model_to_bytes`."""
    model = catboost.CatBoost()
    model.load_model(blob=data)
    return model


def put_blob(client: redis.Redis[bytes], key: str, data: bytes, ttl_s: int) -> None:
    """Store bytes under a key that expires, so an abandoned refresh never leaves them behind for good."""
    client.set(key, data, ex=ttl_s)


def get_blob(client: redis.Redis[bytes], key: str) -> bytes:
    """Bytes stored by :func:`put_blob`.

    Raises:
        WorkerJobError: The key is gone (expired, or its refresh was abandoned and cleaned up).
    """
    data = client.get(key)
    if data is None:
        raise WorkerJobError(f"{key} is missing: its refresh expired or was abandoned; run `postrec refresh` again")
    return data
