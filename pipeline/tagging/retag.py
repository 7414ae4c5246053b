"""Re-tag every stored response with a new tagger, from the embeddings already in the warehouse cache.

Nothing is encoded: sentence vectors are read under the encoder's model id and answer vectors under the
response-vector id (see :mod:`pipeline.embed.response`); a row whose vectors are missing keeps its old
tags and is counted. Tags combine as in :func:`pipeline.enrich.enrich_batch` (:func:`pipeline.tagging.answer_tags`:
a trained tagger's answer-level decision, the sentences saying which tags they carry), and a tag's
sentiment comes from the sentences that carry it. Only ``source == "model"`` rows of ``feedback_tags`` are replaced (human and rule tags stay).
"""

from __future__ import annotations

import logging
import time
from collections import Counter
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import numpy as np
import pandas as pd

from pipeline.config import EnrichmentConfig
from pipeline.embed.base import text_hash
from pipeline.embed.response import SUFFIX
from pipeline.schema import TAG_COLUMNS
from pipeline.tagging import answer_tags

log = logging.getLogger(__name__)


@dataclass
class RetagReport:
    """What a re-tagging pass did."""

    tagger_version: str
    rows: int = 0
    retagged: int = 0
    changed: int = 0
    missing_vectors: int = 0
    seconds: float = 0.0


def _best_score(j: int, i: int, ks: list[int], resp_scores: np.ndarray, sent_scores: np.ndarray) -> float:
    """A tag's score for an answer: the best of the whole answer's and its sentences' scores."""
    return max([float(resp_scores[i, j])] + [float(sent_scores[k, j]) for k in ks])


def _vectors(wh: Any, model_id: str, texts: list[str]) -> dict[str, np.ndarray]:
    hashes = list(dict.fromkeys(text_hash(t) for t in texts))
    return wh.read_vectors(model_id, hashes) if hashes else {}


def retag_stored(
    wh: Any,
    config: EnrichmentConfig,
    tagger: Any,
    encoder_id: str,
    parent_of: Any = None,
    batch_size: int = 5000,
    run_id: str | None = None,
    taxonomy_version: str | None = None,
) -> RetagReport:
    """Re-tag the answered rows of ``feedback_enriched`` (and their sentences) with ``tagger``.

    Args:
        wh: Open warehouse.
        config: The enrichment config (table names, response-vector mode).
        tagger: A fitted tagger (the promoted version).
        encoder_id: Model id of the run's encoder; the tagger must have been trained on it.
        parent_of: Callable tag -> parent (default: the tagger's own ``parent_of``, else None).
        batch_size: Responses per read/score/write round.
        run_id: Id written on the new tag rows (default ``retag-<UTC time>``).
        taxonomy_version: The codeframe version the new tags belong to, recorded on every re-tagged row
            (default: the config's taxonomy, as a nightly run records it), so that rows never claim the
            codeframe they were first tagged with after their tags changed.
    """
    t_start = time.perf_counter()
    t = config.tables
    report = RetagReport(tagger_version=tagger.version)
    if not wh.table_exists(t.enriched):
        return report
    run_id = run_id or f"retag-{datetime.now(UTC):%Y%m%dT%H%M%S}"
    parent_of = parent_of or getattr(tagger, "parent_of", None) or (lambda _tag: None)
    if taxonomy_version is None:
        from pipeline.tagging.taxonomy import load_taxonomy

        taxonomy_version = load_taxonomy(config.tagger.taxonomy).version_id
    lineage = {"tagger_version": tagger.version, "taxonomy_version": taxonomy_version}
    reads_texts = bool(getattr(tagger, "needs_texts", False))
    resp_model_id = encoder_id + (SUFFIX if config.response_vector == "sentence_mean" else "")
    enriched = wh.read(t.enriched)
    non_answer = enriched["is_non_answer"].astype(bool).to_numpy()
    if non_answer.any():
        # Non-answers carry no tags; they still record the version that (did not) tag them.
        wh.upsert(t.enriched, enriched[non_answer].assign(**lineage), key=["response_id"])
    enriched = enriched[~non_answer].reset_index(drop=True)
    report.rows = len(enriched)
    has_sentences = wh.table_exists(t.sentences)
    for start in range(0, len(enriched), batch_size):
        rows = enriched.iloc[start : start + batch_size].reset_index(drop=True)
        ids = rows["response_id"].astype(str).tolist()
        sents = wh.read(t.sentences, where={"response_id": ids}) if has_sentences else pd.DataFrame()
        if len(sents):
            sents = sents.sort_values(["response_id", "sentence_id"]).reset_index(drop=True)
        texts = rows["text_redacted"].fillna("").astype(str).tolist()
        resp_vec = _vectors(wh, resp_model_id, texts)
        sent_texts = sents["text_redacted"].fillna("").astype(str).tolist() if len(sents) else []
        sent_vec = _vectors(wh, encoder_id, sent_texts)
        ok = np.array([text_hash(x) in resp_vec for x in texts], dtype=bool)
        report.missing_vectors += int((~ok).sum())
        if not ok.any():
            continue
        rows, texts = rows[ok].reset_index(drop=True), [x for x, k in zip(texts, ok, strict=True) if k]
        resp_emb = np.stack([resp_vec[text_hash(x)] for x in texts]).astype(np.float32)
        resp_scores = tagger.score(resp_emb, **({"texts": texts} if reads_texts else {}))
        resp_tags = tagger.decide(resp_scores)
        sent_ok = [text_hash(s) in sent_vec for s in sent_texts]
        s_idx = [i for i, k in enumerate(sent_ok) if k]
        sent_tags: list[list[str]] = [[] for _ in sent_texts]
        sent_scores = np.zeros((len(sent_texts), len(tagger.tag_names_)), dtype=np.float32)
        if s_idx:
            s_emb = np.stack([sent_vec[text_hash(sent_texts[i])] for i in s_idx]).astype(np.float32)
            s_txt = [sent_texts[i] for i in s_idx]
            sc = tagger.score(s_emb, **({"texts": s_txt} if reads_texts else {}))
            for i, tags_i, row in zip(s_idx, tagger.decide(sc), sc, strict=True):
                sent_tags[i], sent_scores[i] = tags_i, row
        by_resp: dict[str, list[int]] = {}
        if len(sents):
            for k, rid in enumerate(sents["response_id"].astype(str)):
                by_resp.setdefault(rid, []).append(k)
        col = {n: j for j, n in enumerate(tagger.tag_names_)}
        new_tags: list[list[str]] = []
        tag_rows: list[dict[str, Any]] = []
        for i, rid in enumerate(rows["response_id"].astype(str)):
            ks = by_resp.get(rid, [])
            found = answer_tags(tagger, resp_tags[i], [(k, sent_tags[k]) for k in ks])

            best = {tag: _best_score(col[tag], i, ks, resp_scores, sent_scores) for tag in found}
            ordered = sorted(found, key=lambda tag: -best[tag])
            new_tags.append(ordered)
            for tag in ordered:
                carriers = found[tag]
                if carriers:
                    s_score = float(np.mean([float(sents.at[k, "sentiment_score"]) for k in carriers]))
                    votes = Counter(str(sents.at[k, "sentiment_label"]) for k in carriers)
                    s_label = votes.most_common(1)[0][0]
                else:
                    s_score = float(rows.at[i, "sentiment_score"])
                    s_label = str(rows.at[i, "sentiment_label"])
                tag_rows.append(
                    {
                        "response_id": rid,
                        "tag": tag,
                        "parent_tag": parent_of(tag),
                        "score": best[tag],
                        "sentiment_label": s_label,
                        "sentiment_score": s_score,
                        "source": "model",
                        "tagger_version": tagger.version,
                        "run_id": run_id,
                    }
                )
        old = rows["tags"].map(lambda v: list(v) if v is not None else []).tolist()
        report.changed += sum(a != b for a, b in zip(old, new_tags, strict=True))
        updated = rows.assign(tags=new_tags, **lineage)
        done_ids = updated["response_id"].astype(str).tolist()
        # A response's tag list, tag rows and sentence tags change together or not at all.
        with wh.transaction():
            if wh.table_exists(t.tags):
                wh.delete(t.tags, {"response_id": done_ids, "source": ["model"]})
            wh.upsert(t.enriched, updated, key=["response_id"])
            if tag_rows:
                wh.upsert(t.tags, pd.DataFrame(tag_rows, columns=TAG_COLUMNS), key=["response_id", "tag"])
            if len(sents):
                keep = sents["response_id"].astype(str).isin(set(done_ids)).to_numpy()
                new_sent = sents.assign(tags=sent_tags)[keep]
                wh.upsert(t.sentences, new_sent, key=["response_id", "sentence_id"])
        report.retagged += len(updated)
    report.seconds = round(time.perf_counter() - t_start, 2)
    log.info(
        "re-tagged %d of %d stored answers with %s (%d changed, %d without cached vectors) in %.1fs",
        report.retagged,
        report.rows,
        report.tagger_version,
        report.changed,
        report.missing_vectors,
        report.seconds,
    )
    return report
