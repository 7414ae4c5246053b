"""Tagging: multi-label themes over the shared embeddings.

Two taggers share one interface (:class:`Tagger`): the zero-shot :class:`ZeroShotTagger` (taxonomy only,
the day-one default) and the trained :class:`EmbeddingTfidfTagger` (labelled examples; few-shot to full).
Both are registered under versioned names that configs refer to.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Protocol, runtime_checkable

import numpy as np

from pipeline.errors import UnknownComponentError
from pipeline.tagging.taxonomy import Taxonomy
from pipeline.tagging.trained import EmbeddingTfidfTagger
from pipeline.tagging.trained_parts import TaggerParams
from pipeline.tagging.zeroshot import ZeroShotTagger


@runtime_checkable
class Tagger(Protocol):
    """What the enrichment stage needs from a tagger.

    Attributes:
        tag_names_: Column names of the score matrix.
        needs_texts: Whether ``score`` reads the texts as well as the embeddings.
        version: Recorded on every tagged row.
    """

    tag_names_: list[str]
    needs_texts: bool

    @property
    def version(self) -> str: ...

    def score(self, embeddings: np.ndarray, texts: Sequence[str] | None = None) -> np.ndarray: ...

    def decide(self, scores: np.ndarray) -> list[list[str]]: ...

    def predict(
        self, embeddings: np.ndarray, texts: Sequence[str] | None = None
    ) -> tuple[list[list[str]], np.ndarray]: ...


def answer_tags(
    tagger: Any, whole: Sequence[str], sentences: Sequence[tuple[int, Sequence[str]]]
) -> dict[str, list[int]]:
    """One answer's tags, each with the sentences that carry it (their positions ``k``).

    A tagger whose ``tags_from_sentences`` is true (the zero-shot one) gives the answer every tag of its
    whole text or of any of its sentences; otherwise (trained taggers) the answer's tags are the whole
    answer's decision, which is what the tagger was trained and measured on, and sentences only say which
    of them they carry.

    Args:
        tagger: The run's tagger.
        whole: The tags decided on the whole answer's vector.
        sentences: ``(k, tags)`` for each of the answer's sentences.
    """
    union = bool(getattr(tagger, "tags_from_sentences", True))
    found: dict[str, list[int]] = {t: [] for t in whole}
    for k, tags in sentences:
        for t in tags:
            if t in found:
                found[t].append(k)
            elif union:
                found[t] = [k]
    return found


TAGGERS: dict[str, type] = {
    "tagger.zeroshot.v1": ZeroShotTagger,
    "tagger.embedding_tfidf.v1": EmbeddingTfidfTagger,
}
TRAINED_TAGGERS = {"tagger.embedding_tfidf.v1"}


def build_tagger(name: str, taxonomy: Taxonomy | None = None, **options: Any) -> Any:
    """Create a tagger from its registered name.

    The zero-shot tagger takes the taxonomy; a trained tagger takes its hyper-parameters as options and is
    then fitted on labelled data (or loaded with :func:`load_tagger`).
    """
    if name not in TAGGERS:
        raise UnknownComponentError(f"Unknown tagger {name!r}. Valid names: {sorted(TAGGERS)}")
    if name in TRAINED_TAGGERS:
        return TAGGERS[name](**options)
    if taxonomy is None:
        raise UnknownComponentError(f"tagger {name!r} needs the taxonomy: build_tagger({name!r}, taxonomy)")
    return TAGGERS[name](taxonomy, **options)


__all__ = [
    "EmbeddingTfidfTagger",
    "TAGGERS",
    "Tagger",
    "TaggerParams",
    "ZeroShotTagger",
    "answer_tags",
    "build_tagger",
]
