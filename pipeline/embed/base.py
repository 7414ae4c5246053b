"""The embedder interface: an object with ``model_id``, ``dim`` and ``embed(texts)``."""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Callable, Sequence
from typing import Protocol, runtime_checkable

import numpy as np

from pipeline.errors import FeedbackError

log = logging.getLogger(__name__)

Progress = Callable[[int, int], None]
"""A callback called with (done, total) as batches finish."""


@runtime_checkable
class Embedder(Protocol):
    """Anything that turns texts into L2-normalised float32 vectors.

    Attributes:
        model_id: A stable identifier of the model *and* its version; it keys the embedding cache, so
            two different models must never share one.
        dim: Length of each vector.
    """

    model_id: str
    dim: int

    def embed(self, texts: Sequence[str]) -> np.ndarray:
        """Return an array of shape (len(texts), dim), float32, rows L2-normalised."""
        ...


def check_texts(texts: object) -> list[str]:
    """Validate an ``embed`` argument and return it as a list of strings.

    Raises:
        FeedbackError: with a fix-it message when the input is not a sequence of strings.
    """
    if isinstance(texts, str):
        raise FeedbackError("embed() expects a list of strings, not a single string: wrap it as [text].")
    if hasattr(texts, "columns"):
        raise FeedbackError("embed() expects a list of strings, not a DataFrame: pass df['text'].tolist().")
    try:
        out = list(texts)  # type: ignore[call-overload]
    except TypeError as exc:
        raise FeedbackError(f"embed() expects a list of strings, got {type(texts).__name__}.") from exc
    bad = [i for i, t in enumerate(out) if not isinstance(t, str)]
    if bad:
        raise FeedbackError(
            f"embed() expects strings; items at positions {bad[:5]} are "
            f"{sorted({type(out[i]).__name__ for i in bad})}. Clean the text column first (pipeline.prepare)."
        )
    return out


def l2_normalise(x: np.ndarray) -> np.ndarray:
    """Row-normalise a matrix to unit L2 norm (zero rows stay zero), as float32."""
    x = np.asarray(x, dtype=np.float32)
    norms = np.linalg.norm(x, axis=1, keepdims=True)
    norms[norms == 0] = 1.0
    return x / norms


def text_hash(text: str) -> str:
    """Hash of a text used as the embedding-cache key (with the model id)."""
    return hashlib.blake2b(text.encode("utf-8", errors="replace"), digest_size=16).hexdigest()


def texts_digest(texts: Sequence[object], labels: Sequence[object] | None = None) -> str:
    """sha256 over texts in order, each followed by NUL (and its label, when given, followed by NUL).

    The one fingerprint of a list of texts: the key of the embedding file caches (``tagging.data``,
    ``bench/``) and the training-data hash in model manifests.
    """
    h = hashlib.sha256()
    for i, t in enumerate(texts):
        h.update(str(t).encode("utf-8", errors="replace") + b"\0")
        if labels is not None:
            h.update(str(labels[i]).encode() + b"\0")
    return h.hexdigest()


def embed_in_batches(
    fn: Callable[[list[str]], np.ndarray],
    texts: list[str],
    dim: int,
    batch_size: int,
    progress: Progress | None = None,
) -> np.ndarray:
    """Call ``fn`` on consecutive batches and stack the (normalised) results."""
    out = np.zeros((len(texts), dim), dtype=np.float32)
    for start in range(0, len(texts), batch_size):
        chunk = texts[start : start + batch_size]
        out[start : start + len(chunk)] = l2_normalise(fn(chunk))
        if progress is not None:
            progress(min(start + batch_size, len(texts)), len(texts))
    return out


def release_model(embedder: object) -> None:
    """Drop an embedder's loaded weights; its next ``embed`` loads them again.

    Works through wrappers (a cached embedder's ``embedder``, a concatenation's ``members``) down to the
    backends, which keep their model in ``_model``. A run calls this when its pages are done: the topic
    stage reads vectors from the cache and does not need the encoder in memory while it fits.
    """
    inner = getattr(embedder, "embedder", None)
    if inner is not None and inner is not embedder:
        release_model(inner)
    for member in getattr(embedder, "members", None) or []:
        release_model(member)
    if getattr(embedder, "_model", None) is not None:
        embedder._model = None  # type: ignore[attr-defined]
