"""The embedding cache of a warehouse: float32 vectors by (model id, text hash).

A mixin of :class:`pipeline.warehouse.base.Warehouse`: the generic path writes through ``upsert`` (each
backend's bulk path) and reads through ``read``; backends override ``_read_vectors`` /
``_write_vectors`` where they can decode or encode faster.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

from pipeline.errors import SchemaError
from pipeline.warehouse.tables import build_table
from pipeline.warehouse.types import BIGINT, BLOB, TEXT, VECTOR_KEY, check_values, pack_vectors, unpack_vector

if TYPE_CHECKING:
    from pipeline.warehouse.base import PreparedFrame


class VectorCache:
    """``read_vectors`` / ``write_vectors`` over the table :attr:`vector_table` (see Warehouse)."""

    def read_vectors(self, model_id: str, hashes: Sequence[str]) -> dict[str, np.ndarray]:
        """Read cached embeddings.

        Args:
            model_id: The embedder's id (vectors of different models never mix).
            hashes: Text hashes to look up.

        Returns:
            ``{hash: float32 vector}`` for the hashes found; missing ones are absent.
        """
        if not isinstance(model_id, str) or not model_id:
            raise SchemaError(f"model_id must be a non-empty string, got {model_id!r}.")
        hashes = check_values("hashes", hashes)
        if not hashes or not self.table_exists(self.vector_table):
            return {}
        unique = list(dict.fromkeys(str(h) for h in hashes))
        return self._read_vectors(model_id, unique)

    def _read_vectors(self, model_id: str, hashes: list[str]) -> dict[str, np.ndarray]:
        # Generic path; backends override with something faster when they can.
        frame = self.read(
            self.vector_table, ["text_hash", "dim", "vector"], {"model_id": [model_id], "text_hash": hashes}
        )
        return {
            h: unpack_vector(blob, int(dim))
            for h, dim, blob in zip(frame["text_hash"], frame["dim"], frame["vector"], strict=True)
        }

    def write_vectors(self, model_id: str, hashes: Sequence[str], vectors: np.ndarray) -> int:
        """Store embeddings in the cache (:attr:`vector_table`, key ``(model_id, text_hash)``).

        Vectors are stored as little-endian float32 bytes, so they read back exactly. Writing a key
        that exists overwrites it; a hash given twice keeps its last vector.

        Args:
            model_id: The embedder's id.
            hashes: One text hash per row of ``vectors``.
            vectors: 2-d array (n, dim); converted to float32.

        Returns:
            The number of vectors written.
        """
        if not isinstance(model_id, str) or not model_id:
            raise SchemaError(f"model_id must be a non-empty string, got {model_id!r}.")
        hashes = [str(h) for h in check_values("hashes", hashes)]
        matrix = np.asarray(vectors)
        if matrix.ndim != 2 or matrix.shape[0] != len(hashes):
            raise SchemaError(
                f"write_vectors expects a 2-d array with one row per hash: got shape {matrix.shape} for "
                f"{len(hashes)} hash(es)."
            )
        if not len(hashes):
            return 0
        matrix = np.ascontiguousarray(matrix, dtype="<f4")
        last = {h: i for i, h in enumerate(hashes)}  # the last occurrence wins
        if len(last) != len(hashes):
            index = sorted(last.values())
            hashes, matrix = [hashes[i] for i in index], matrix[index]
        return self._write_vectors(model_id, hashes, matrix)

    def _vector_prepared(self) -> PreparedFrame:
        """A PreparedFrame (no rows) for the embedding cache: its types known, no inference."""
        existing = self._column_types(self.vector_table)
        types = {"model_id": TEXT, "text_hash": TEXT, "dim": BIGINT, "vector": BLOB}
        target = build_table(self.vector_table, types, VECTOR_KEY, self.dialect, self.schema)
        from pipeline.warehouse.base import PreparedFrame

        return PreparedFrame(pd.DataFrame(columns=list(types)), types, bool(existing), [], target)

    def _write_vectors(self, model_id: str, hashes: list[str], matrix: np.ndarray) -> int:
        frame = pd.DataFrame(
            {
                "model_id": pd.Series([model_id] * len(hashes), dtype=object),
                "text_hash": pd.Series(hashes, dtype=object),
                "dim": np.full(len(hashes), matrix.shape[1], dtype=np.int64),
                "vector": pd.Series(pack_vectors(matrix), dtype=object),
            }
        )
        self.upsert(self.vector_table, frame, VECTOR_KEY)
        return len(hashes)
