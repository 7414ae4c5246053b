"""Enrichment of one batch of validated responses: prepare, embed once, sentiment, tags, topics.

Plain functions over DataFrames: no warehouse, no Prefect. The caller supplies fitted models.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime

import numpy as np
import pandas as pd

from pipeline.embed import Embedder
from pipeline.embed.base import Progress
from pipeline.embed.response import ResponseMode, response_vectors
from pipeline.prepare import PrepareConfig, prepare
from pipeline.schema import SENTENCE_COLUMNS, TAG_COLUMNS
from pipeline.sentiment import SentimentModel, combine_sentences, label_from_score
from pipeline.tagging import Tagger, answer_tags
from pipeline.tagging.taxonomy import Taxonomy
from pipeline.topics import BERTopicModel, NoTopics

log = logging.getLogger(__name__)


@dataclass
class Models:
    """The fitted parts one enrichment run uses; all read the same embeddings."""

    embedder: Embedder
    sentiment: SentimentModel
    tagger: Tagger
    taxonomy: Taxonomy
    topics: BERTopicModel | NoTopics
    response_vector: ResponseMode = "sentence_mean"

    def versions(self) -> dict[str, str]:
        """Lineage recorded on every row and in the run record."""
        return {
            "embedder_id": self.embedder.model_id,
            "sentiment_model_version": self.sentiment.version,
            "sentiment_source": self.sentiment.source,
            "tagger_version": self.tagger.version,
            "taxonomy_version": self.taxonomy.version_id,
            "topic_model_version": self.topics.version,
        }


@dataclass
class EnrichedBatch:
    """What one batch adds to the warehouse (table-shaped frames)."""

    enriched: pd.DataFrame
    tags: pd.DataFrame
    sentences: pd.DataFrame
    embeddings: np.ndarray = field(repr=False)
    timings: dict[str, float] = field(default_factory=dict)


def prepare_batch(valid: pd.DataFrame, config: PrepareConfig) -> pd.DataFrame:
    """Run the text preparation stage on the comment column."""
    return prepare(valid, config, text_column="comment")


def enrich_batch(
    valid: pd.DataFrame,
    prepared: pd.DataFrame,
    models: Models,
    segments: list[str],
    run_id: str,
    enriched_at: datetime,
    progress: Progress | None = None,
) -> EnrichedBatch:
    """Enrich validated rows whose text was prepared by :func:`prepare_batch`.

    Args:
        valid: Conformed, validated source rows.
        prepared: Output of :func:`prepare_batch` for ``valid`` (same index).
        models: Fitted models.
        segments: Segment columns of ``valid`` to carry through.
        run_id: The run's id, written on every row.
        enriched_at: Timestamp written on every row.
        progress: Optional callback for the encoder's progress.

    Returns:
        The table-shaped frames and the response embeddings (rows of ``valid``, zeros for non-answers).
    """
    import time

    timings: dict[str, float] = {}
    answered = ~prepared["is_non_answer"].to_numpy(dtype=bool)
    texts = prepared["text_redacted"].tolist()
    sentences = prepared["sentences"].tolist()

    # Embed every distinct sentence once; answers' vectors are built from them (pipeline.embed.response).
    t0 = time.perf_counter()
    resp_idx = np.flatnonzero(answered)
    sent_owner: list[int] = []
    sent_texts: list[str] = []
    for i in resp_idx:
        for s in sentences[i]:
            sent_owner.append(int(i))
            sent_texts.append(s)
    kwargs = {"progress": progress} if progress is not None else {}
    unique = list(dict.fromkeys(sent_texts))
    vectors = models.embedder.embed(unique, **kwargs) if unique else np.zeros((0, models.embedder.dim))
    row_of = {t: k for k, t in enumerate(unique)}
    dim = vectors.shape[1] if len(vectors) else models.embedder.dim
    resp_emb = np.zeros((len(texts), dim), dtype=np.float32)
    if len(resp_idx):
        resp_emb[resp_idx] = response_vectors(
            models.embedder,
            [texts[i] for i in resp_idx],
            [sentences[i] for i in resp_idx],
            models.response_vector,
        )
    sent_emb = vectors[[row_of[s] for s in sent_texts]] if sent_texts else np.zeros((0, dim), np.float32)
    timings["embed"] = time.perf_counter() - t0

    t0 = time.perf_counter()
    # Only answered rows are scored; models that read texts (TF-IDF, transformers) get them too.
    reads_texts = bool(getattr(models.sentiment, "needs_texts", False))
    resp_texts = [texts[i] or "" for i in resp_idx]
    resp_sents = [sentences[i] for i in resp_idx]
    resp_score = np.zeros(len(texts))
    scored, sent_score = score_answers_and_sentences(
        models.sentiment.score, resp_emb[resp_idx], resp_texts, resp_sents, sent_emb, sent_texts, reads_texts
    )
    resp_score[resp_idx] = scored
    timings["sentiment"] = time.perf_counter() - t0

    t0 = time.perf_counter()
    # Trained taggers read the texts too (TF-IDF n-grams); zero-shot ones only the embeddings.
    tag_texts = bool(getattr(models.tagger, "needs_texts", False))
    scored, sent_tag_scores = score_answers_and_sentences(
        models.tagger.score, resp_emb[resp_idx], resp_texts, resp_sents, sent_emb, sent_texts, tag_texts
    )
    resp_tag_scores = np.zeros((len(texts), len(models.tagger.tag_names_)), dtype=np.float32)
    if len(resp_idx):
        resp_tag_scores[resp_idx] = scored
    sent_tags = models.tagger.decide(sent_tag_scores)
    resp_tags_whole = models.tagger.decide(resp_tag_scores)
    timings["tags"] = time.perf_counter() - t0

    t0 = time.perf_counter()
    topic_ids = np.full(len(texts), -1, dtype=int)
    if len(resp_idx):
        langs = prepared["language"].astype(str).to_numpy()[resp_idx].tolist()
        topic_ids[resp_idx] = models.topics.transform(resp_emb[resp_idx], languages=langs)
    topic_labels = models.topics.labels(topic_ids)
    timings["topics"] = time.perf_counter() - t0

    t0 = time.perf_counter()
    names = models.tagger.tag_names_
    col = {n: j for j, n in enumerate(names)}
    by_resp: dict[int, list[int]] = {}
    for k, owner in enumerate(sent_owner):
        by_resp.setdefault(owner, []).append(k)

    versions = models.versions()
    ids = valid["response_id"].astype(str).tolist()
    labels: list[str | None] = [None] * len(texts)
    scores: list[float] = [np.nan] * len(texts)
    tags_out: list[list[str]] = [[] for _ in texts]
    tag_rows: list[dict] = []
    sent_rows: list[dict] = []
    # An answer's tags, each with the sentences that carry it (pipeline.tagging.answer_tags: the zero-shot
    # tagger also takes the tags of single sentences, a trained one keeps its answer-level decision).
    found_of: dict[int, dict[str, list[int]]] = {
        int(i): answer_tags(
            models.tagger, resp_tags_whole[i], [(k, sent_tags[k]) for k in by_resp.get(int(i), [])]
        )
        for i in resp_idx
    }
    aspect = _aspect_scores(models.sentiment, resp_emb, texts, found_of, reads_texts)
    for i in resp_idx:
        ks = by_resp.get(int(i), [])
        label, score = combine_sentences(
            float(resp_score[i]),
            [sent_score[k] for k in ks],
            models.sentiment.neutral_band,
            models.sentiment.mixed_band,
        )
        labels[i], scores[i] = label, score
        found = found_of[int(i)]
        ordered = sorted(found, key=lambda t: -_tag_score(t, i, ks, col, resp_tag_scores, sent_tag_scores))
        tags_out[i] = ordered
        for t in ordered:
            carrier = found[t]
            mean = float(np.mean([sent_score[k] for k in carrier])) if carrier else float(resp_score[i])
            t_score = aspect.get((int(i), t), mean)
            tag_rows.append(
                {
                    "response_id": ids[i],
                    "tag": t,
                    "parent_tag": models.taxonomy.parent_of(t),
                    "score": _tag_score(t, i, ks, col, resp_tag_scores, sent_tag_scores),
                    "sentiment_label": str(
                        label_from_score(np.array([t_score]), models.sentiment.neutral_band)[0]
                    ),
                    "sentiment_score": t_score,
                    "source": "model",
                    "tagger_version": versions["tagger_version"],
                    "run_id": run_id,
                }
            )
        for n, k in enumerate(ks):
            sent_rows.append(
                {
                    "response_id": ids[i],
                    "sentence_id": n,
                    "text_redacted": sent_texts[k],
                    "sentiment_label": str(
                        label_from_score(np.array([sent_score[k]]), models.sentiment.neutral_band)[0]
                    ),
                    "sentiment_score": float(sent_score[k]),
                    "tags": list(sent_tags[k]),
                    "run_id": run_id,
                }
            )

    enriched = pd.DataFrame(
        {
            "response_id": ids,
            "survey_type": valid["survey_type"].to_numpy(),
            "score": valid["score"].to_numpy(dtype=float),
            "submitted_at": valid["submitted_at"].to_numpy(),
        }
    )
    for seg in segments:
        enriched[seg] = valid[seg].to_numpy()
    enriched = enriched.assign(
        language=prepared["language"].to_numpy(),
        language_confidence=prepared["language_confidence"].to_numpy(dtype=float),
        is_non_answer=~answered,
        text_redacted=prepared["text_redacted"].to_numpy(),
        text_truncated=prepared["text_truncated"].to_numpy(dtype=bool),
        pii_found=prepared["pii_found"].map(list).to_numpy(),
        n_sentences=[len(s) for s in sentences],
        sentiment_label=labels,
        sentiment_score=scores,
        topic_id=topic_ids,
        topic_label=topic_labels,
        tags=tags_out,
        run_id=run_id,
        **versions,
        enriched_at=pd.Timestamp(enriched_at).as_unit("us"),
    )
    timings["assemble"] = time.perf_counter() - t0
    return EnrichedBatch(
        enriched=enriched,
        tags=pd.DataFrame(tag_rows, columns=TAG_COLUMNS),
        sentences=pd.DataFrame(sent_rows, columns=SENTENCE_COLUMNS),
        embeddings=resp_emb,
        timings=timings,
    )


def score_answers_and_sentences(
    score: Callable[..., np.ndarray],
    resp_emb: np.ndarray,
    resp_texts: Sequence[str],
    resp_sentences: Sequence[Sequence[str]],
    sent_emb: np.ndarray,
    sent_texts: Sequence[str],
    with_texts: bool,
) -> tuple[np.ndarray, np.ndarray]:
    """A row-wise model's scores of answers and of their sentences, each distinct input scored once.

    Survey answers repeat ("Great service."), and most are a single sentence, which the nightly run would
    otherwise score twice: once as the answer and once as its sentence. A sentence is keyed by its text
    (its vector is the encoder's vector of that text); an answer by its text as well, sharing its
    sentence's row when it is exactly that one sentence (its vector is then that sentence's vector, which
    the sentence mean leaves unchanged up to renormalisation).

    Args:
        score: ``model.score`` of a sentiment model or tagger (one output row per input row).
        resp_emb: Answer vectors, row-aligned with ``resp_texts``.
        resp_texts: The answers.
        resp_sentences: Each answer's sentences.
        sent_emb: Sentence vectors, row-aligned with ``sent_texts``.
        sent_texts: The sentences (repeats allowed).
        with_texts: Pass the texts to ``score`` too (models that read them).

    Returns:
        The answers' scores and the sentences' scores, in input order.
    """
    key_row: dict[tuple[str, str], int] = {}
    picks: list[tuple[int, int]] = []  # (0 = answer / 1 = sentence, row) of each distinct input
    resp_at = np.zeros(len(resp_texts), dtype=np.int64)
    for i, (text, sents) in enumerate(zip(resp_texts, resp_sentences, strict=True)):
        key = ("s", text) if len(sents) == 1 and sents[0] == text else ("a", text)
        if key not in key_row:
            key_row[key] = len(picks)
            picks.append((0, i))
        resp_at[i] = key_row[key]
    sent_at = np.zeros(len(sent_texts), dtype=np.int64)
    for k, text in enumerate(sent_texts):
        key = ("s", text)
        if key not in key_row:
            key_row[key] = len(picks)
            picks.append((1, k))
        sent_at[k] = key_row[key]
    emb = np.zeros((len(picks), resp_emb.shape[1]), dtype=np.float32)
    kinds = np.array([kind for kind, _ in picks], dtype=np.int8)
    rows = np.array([row for _, row in picks], dtype=np.int64)
    if len(picks):
        emb[kinds == 0] = resp_emb[rows[kinds == 0]]
        emb[kinds == 1] = sent_emb[rows[kinds == 1]]
    texts = [resp_texts[r] if kind == 0 else sent_texts[r] for kind, r in picks]
    out = np.asarray(score(emb, **({"texts": texts} if with_texts else {})))
    return out[resp_at], out[sent_at]


def _aspect_scores(
    model: SentimentModel,
    resp_emb: np.ndarray,
    texts: list[str],
    found_of: dict[int, dict[str, list[int]]],
    reads_texts: bool,
) -> dict[tuple[int, str], float]:
    """Sentiment per (answer, tag) from the model's aspect head, in one call for the whole batch.

    Empty for models without a trained aspect head (the zero-shot default, transformers): their tags keep
    the mean score of the sentences that carry them. Tags the head never saw keep that mean too, since
    the head would only read the answer's overall tone for them.
    """
    known = set(getattr(model, "aspect_tags_", None) or ())
    if not known or not hasattr(model, "score_tags"):
        return {}
    rows = [i for i, found in found_of.items() if any(t in known for t in found)]
    if not rows:
        return {}
    tags = [[t for t in found_of[i] if t in known] for i in rows]
    scored = model.score_tags(resp_emb[rows], [texts[i] for i in rows] if reads_texts else None, tags)
    return {
        (i, t): float(s)
        for i, ts, ss in zip(rows, tags, scored, strict=True)
        for t, s in zip(ts, ss, strict=True)
    }


def _tag_score(
    tag: str, i: int, ks: list[int], col: dict[str, int], resp_scores: np.ndarray, sent_scores: np.ndarray
) -> float:
    j = col[tag]
    best = float(resp_scores[i, j])
    for k in ks:
        best = max(best, float(sent_scores[k, j]))
    return best
