"""Embed once: a cache keyed by (model id, text hash), in front of any embedder."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import Protocol

import numpy as np

from pipeline.embed.base import Embedder, Progress, check_texts, text_hash

log = logging.getLogger(__name__)


class VectorStore(Protocol):
    """Where cached vectors live (the warehouse implements this)."""

    def read_vectors(self, model_id: str, hashes: list[str]) -> dict[str, np.ndarray]: ...

    def write_vectors(self, model_id: str, hashes: list[str], vectors: np.ndarray) -> int: ...


class MemoryVectorStore:
    """An in-process vector store (tests, one-off commands)."""

    def __init__(self) -> None:
        self._data: dict[tuple[str, str], np.ndarray] = {}

    def read_vectors(self, model_id: str, hashes: list[str]) -> dict[str, np.ndarray]:
        """Return the stored vectors of the given hashes (missing ones are absent)."""
        return {h: self._data[(model_id, h)] for h in hashes if (model_id, h) in self._data}

    def write_vectors(self, model_id: str, hashes: list[str], vectors: np.ndarray) -> int:
        """Store vectors; returns how many were written."""
        for h, v in zip(hashes, vectors, strict=True):
            self._data[(model_id, h)] = np.asarray(v, dtype=np.float32)
        return len(hashes)


class CachedEmbedder:
    """Wraps an embedder so that each distinct text is encoded at most once per model, across runs.

    Attributes:
        hits_: texts served from the cache by the last ``embed`` call.
        misses_: distinct texts encoded by the last ``embed`` call.
    """

    def __init__(self, embedder: Embedder, store: VectorStore) -> None:
        self.embedder = embedder
        self.store = store
        self.hits_ = 0
        self.misses_ = 0

    @property
    def model_id(self) -> str:
        """The wrapped embedder's id."""
        return self.embedder.model_id

    @property
    def dim(self) -> int:
        """The wrapped embedder's dimension."""
        return self.embedder.dim

    def embed(self, texts: Sequence[str], progress: Progress | None = None) -> np.ndarray:
        """Embed texts, reading known ones from the store and writing new ones to it."""
        texts = check_texts(texts)
        hashes = [text_hash(t) for t in texts]
        unique = list(dict.fromkeys(hashes))
        found = self.store.read_vectors(self.model_id, unique) if unique else {}
        todo = [h for h in unique if h not in found]
        self.hits_ = len(texts) - sum(1 for h in hashes if h not in found)
        self.misses_ = len(todo)
        if todo:
            first_text = {}
            for h, t in zip(hashes, texts, strict=True):
                first_text.setdefault(h, t)
            kwargs = {"progress": progress} if progress is not None else {}
            new = self.embedder.embed([first_text[h] for h in todo], **kwargs)
            self.store.write_vectors(self.model_id, todo, new)
            found.update(zip(todo, new, strict=True))
        log.info("embeddings: %d from cache, %d encoded (%s)", self.hits_, self.misses_, self.model_id)
        if not texts:
            return np.zeros((0, self.embedder.dim), dtype=np.float32)
        return np.stack([found[h] for h in hashes]).astype(np.float32, copy=False)
