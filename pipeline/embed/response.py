"""Response vectors: one encoder pass over sentences serves both levels.

With ``mode="sentence_mean"`` (the default) an answer's vector is the normalised mean of its sentences'
vectors, so every piece of text is encoded once; a one-sentence answer gets exactly its sentence's
vector. The response vectors are cached too, under the encoder's id plus ``+sentmean``, so that topic
fitting and re-tagging read them without encoding anything. ``mode="whole"`` encodes each whole answer
as one text in addition to its sentences (about twice the encoder time on multi-sentence answers).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Literal

import numpy as np

from pipeline.embed.base import Embedder, l2_normalise, text_hash

ResponseMode = Literal["sentence_mean", "whole"]
SUFFIX = "+sentmean"


def response_model_id(embedder: Embedder, mode: ResponseMode) -> str:
    """The cache id under which response vectors of this embedder and mode are stored."""
    return embedder.model_id + (SUFFIX if mode == "sentence_mean" else "")


def response_vectors(
    embedder: Embedder,
    texts: Sequence[str],
    sentences: Sequence[Sequence[str]] | None,
    mode: ResponseMode = "sentence_mean",
    **kwargs: object,
) -> np.ndarray:
    """Vectors of whole answers, built from their sentences (see the module doc).

    Args:
        embedder: The (usually cached) sentence embedder; if it has a ``store`` the response vectors are
            cached there too.
        texts: The answers.
        sentences: Each answer's sentences; None (or an empty list for an answer) falls back to encoding
            the answer whole.
        mode: "sentence_mean" or "whole".
        **kwargs: Passed to ``embedder.embed`` (e.g. ``progress``).
    """
    texts = list(texts)
    if not texts:
        return np.zeros((0, embedder.dim), dtype=np.float32)
    if mode == "whole":
        return embedder.embed(texts, **kwargs)
    if mode != "sentence_mean":
        raise ValueError(f"response vector mode must be 'sentence_mean' or 'whole', got {mode!r}")
    store = getattr(embedder, "store", None)
    rid = response_model_id(embedder, mode)
    hashes = [text_hash(t) for t in texts]
    unique = list(dict.fromkeys(hashes))
    found = store.read_vectors(rid, unique) if store is not None else {}
    todo: dict[str, list[str]] = {}
    for i, h in enumerate(hashes):
        if h not in found and h not in todo:
            sents = [s for s in (sentences[i] if sentences is not None else []) if s]
            todo[h] = sents or [texts[i]]
    if todo:
        flat = [s for sents in todo.values() for s in sents]
        vecs = embedder.embed(list(dict.fromkeys(flat)), **kwargs)
        row = {t: k for k, t in enumerate(dict.fromkeys(flat))}
        new_hashes = list(todo)
        new = l2_normalise(np.stack([vecs[[row[s] for s in todo[h]]].mean(axis=0) for h in new_hashes]))
        if store is not None:
            store.write_vectors(rid, new_hashes, new)
        found.update(zip(new_hashes, new, strict=True))
    return np.stack([found[h] for h in hashes]).astype(np.float32, copy=False)


class AnswerEmbedder:
    """Embeds whole answers exactly as the nightly run does, so that a model trained or measured on a file
    reads the vectors it will be given in production.

    The nightly run gives an answer the mean of its sentences' vectors (``mode="sentence_mean"``, the
    default of ``response_vector`` in the config); a model trained on whole-text vectors and then fed
    sentence means loses about 4 points of F1 on multi-sentence answers (bench/README.md, "Answer vectors").
    Texts are split into sentences per language, as :func:`pipeline.prepare.prepare` splits them; pass
    texts prepared with :func:`pipeline.prepare.model_texts`.

    Args:
        base: The encoder (possibly a :class:`~pipeline.embed.cache.CachedEmbedder`; then answer vectors
            are cached too, under :func:`response_model_id`).
        mode: "sentence_mean" or "whole" (the config's ``response_vector``).
        prepare_config: Language detection options for texts whose language is not given.

    Attributes:
        model_id: The encoder's id: models record it and are checked against the run's encoder.
        cache_id: Where these answer vectors are cached (differs from ``model_id`` in "sentence_mean"
            mode, so encoder vectors and answer vectors never share a cache key).
        response_mode: ``mode``, recorded in model manifests.
    """

    def __init__(
        self, base: Embedder, mode: ResponseMode = "sentence_mean", prepare_config: object = None
    ) -> None:
        if mode not in ("sentence_mean", "whole"):
            raise ValueError(f"response vector mode must be 'sentence_mean' or 'whole', got {mode!r}")
        if isinstance(base, AnswerEmbedder):
            base = base.base
        self.base = base
        self.response_mode: ResponseMode = mode
        self.prepare_config = prepare_config
        self.model_id = base.model_id
        self.cache_id = response_model_id(base, mode)
        self.dim = base.dim

    def embed(
        self, texts: Sequence[str], progress: object = None, languages: Sequence[str | None] | None = None
    ) -> np.ndarray:
        """Answer vectors of ``texts``.

        Args:
            texts: Prepared answers.
            progress: Passed to the encoder.
            languages: Each text's language, for sentence splitting; None detects them.
        """
        from pipeline.embed.base import check_texts

        texts = check_texts(texts)
        kwargs = {"progress": progress} if progress is not None else {}
        if self.response_mode == "whole" or not texts:
            return response_vectors(self.base, texts, None, "whole", **kwargs)
        from pipeline.prepare import PrepareConfig, split_sentences_many

        config = self.prepare_config if isinstance(self.prepare_config, PrepareConfig) else None
        sentences = split_sentences_many(texts, languages, config)
        return response_vectors(self.base, texts, sentences, self.response_mode, **kwargs)


def answer_embedder(base: Embedder, config: object = None) -> AnswerEmbedder:
    """An :class:`AnswerEmbedder` with the response mode and prepare options of an enrichment config
    (:class:`pipeline.config.EnrichmentConfig`), or the defaults when ``config`` is None."""
    from pipeline.prepare import prepare_config_of

    if config is None:
        return AnswerEmbedder(base)
    return AnswerEmbedder(base, config.response_vector, prepare_config_of(config))  # type: ignore[attr-defined]
