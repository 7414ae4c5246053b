"""Tagger versions measured and compared: predictions as frames, evaluation reports, the promotion gate,
and what to label next (the least certain answers). Plain functions; the CLI, the retrain flow and the
notebook call them."""

from __future__ import annotations

import json
import logging
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from pipeline.embed import Embedder
from pipeline.errors import FeedbackError
from pipeline.model_gates import MAX_DROP_POINTS, PromotionDecision
from pipeline.model_store import (
    FolderStore,
    ModelStore,
    read_manifest,
    resolve_version_dir,
)
from pipeline.tagging.data import LabelledData, embed_labelled
from pipeline.tagging.lifecycle import embedder_from_manifest, embeds_itself, load_tagger
from pipeline.tagging.metrics import error_table, rollup, tagging_report
from pipeline.tagging.zeroshot import ZeroShotTagger

log = logging.getLogger(__name__)


def _parents(model: Any) -> dict[str, str | None]:
    if isinstance(model, ZeroShotTagger):
        return {t.name: t.parent for t in model.taxonomy.tags}
    return dict(getattr(model, "parents_", {}) or {})


def predict_tags(
    model: Any, data: LabelledData, sentence_embedder: Embedder | None = None
) -> tuple[list[list[str]], np.ndarray]:
    """Tags and scores of embedded rows (the texts go along for taggers that read them).

    With ``sentence_embedder`` (the run's encoder), a tagger that also takes the tags of single sentences
    (the zero-shot one) is applied as the nightly run applies it (:func:`with_sentence_tags`).
    """
    if data.embeddings is None and not embeds_itself(model):
        raise FeedbackError("the rows carry no embeddings: read them with an embedder first")
    tags, scores = model.predict(data.embeddings, texts=data.texts)
    langs = data.langs if any(data.langs) else None
    return with_sentence_tags(model, tags, data.texts, langs, sentence_embedder), scores


def with_sentence_tags(
    model: Any,
    tags: list[list[str]],
    texts: Sequence[str],
    langs: Sequence[str | None] | None,
    sentence_embedder: Embedder | None,
) -> list[list[str]]:
    """Answers' tags as the nightly run gives them: for a tagger whose ``tags_from_sentences`` is true
    (the zero-shot one), each answer also gets the tags of any of its sentences
    (:func:`pipeline.tagging.answer_tags`); other taggers' tags, or without an embedder, come back as
    they are.

    Args:
        model: The tagger.
        tags: Its tags for the whole answers.
        texts: The (prepared) answers.
        langs: Their languages for sentence splitting (None detects them).
        sentence_embedder: The run's encoder (an answer embedder is unwrapped to its encoder).
    """
    if sentence_embedder is None or not getattr(model, "tags_from_sentences", False) or not len(texts):
        return tags
    from pipeline.prepare import split_sentences_many
    from pipeline.tagging import answer_tags

    sentences = split_sentences_many(list(texts), langs)
    unique = list(dict.fromkeys(s for ss in sentences for s in ss))
    if not unique:
        return tags
    row = {s: k for k, s in enumerate(unique)}
    sent_tags = model.predict(getattr(sentence_embedder, "base", sentence_embedder).embed(unique), unique)[0]
    return [
        list(answer_tags(model, tags[i], [(row[s], sent_tags[row[s]]) for s in ss]))
        for i, ss in enumerate(sentences)
    ]


def evaluate_tagger(
    model: Any, data: LabelledData, sentence_embedder: Embedder | None = None
) -> dict[str, Any]:
    """Micro/macro F1, per tag and per language of a tagger on embedded labelled rows.

    Gold tags roll up to their parents in the model's hierarchy, as predictions do; tags outside the
    model's tag set count as misses (they are scored too). ``sentence_embedder``: see
    :func:`predict_tags` (the zero-shot tagger is then measured as the nightly run applies it).
    """
    predicted, _ = predict_tags(model, data, sentence_embedder)
    parents = _parents(model)
    gold = [rollup(t, parents) for t in data.tags]
    names = list(dict.fromkeys([*model.tag_names_, *sorted({t for ts in gold for t in ts})]))
    report = tagging_report(gold, predicted, langs=data.langs, tag_names=names)
    report["version"] = model.version
    return report


def per_tag_errors(model: Any, data: LabelledData, tag: str, limit: int = 20) -> pd.DataFrame:
    """Rows where a tag was missed or wrongly given (for looking at a tag's errors)."""
    predicted, _ = predict_tags(model, data)
    gold = [rollup(t, _parents(model)) for t in data.tags]
    return pd.DataFrame(error_table(gold, predicted, data.texts, tag)[:limit])


def predictions_frame(
    ids: Sequence[str], tags: Sequence[Sequence[str]], scores: np.ndarray, names: Sequence[str]
) -> pd.DataFrame:
    """``id``, ``tags`` (list) and ``tag_scores`` ({tag: score}) per row."""
    return pd.DataFrame(
        {
            "id": [None if i is None else str(i) for i in ids],
            "tags": [list(t) for t in tags],
            "tag_scores": [
                {n: round(float(v), 4) for n, v in zip(names, row, strict=True)} for row in np.asarray(scores)
            ],
        }
    )


def write_frame(df: pd.DataFrame, path: str | Path) -> Path:
    """Write Parquet (lists kept, dicts as structs) or CSV (lists as "a|b", dicts as JSON), by extension."""
    out = Path(path)
    out.parent.mkdir(parents=True, exist_ok=True)
    if out.suffix.lower() in (".parquet", ".pq"):
        df.to_parquet(out, index=False)
    else:
        frame = df.copy()
        for col in frame.columns:
            if len(frame) and isinstance(frame[col].iloc[0], (list, tuple)):
                frame[col] = frame[col].map(lambda v: "|".join(v))
            elif len(frame) and isinstance(frame[col].iloc[0], dict):
                frame[col] = frame[col].map(lambda d: json.dumps(d, ensure_ascii=False))
        frame.to_csv(out, index=False)
    return out


def evaluate_version(
    model_dir: str | Path, data: LabelledData, embedder: Embedder | None = None
) -> dict[str, Any]:
    """Evaluate a saved version on labelled rows, embedding them with the version's own encoder when the
    rows carry other (or no) embeddings."""
    folder = resolve_version_dir(model_dir)
    if folder is None:
        raise FeedbackError(f"no tagger at {model_dir}")
    manifest = read_manifest(folder)
    wanted = (manifest.get("encoder") or {}).get("model_id")
    if data.embeddings is None or (wanted and data.embedder_id != wanted):
        enc = (
            embedder
            if embedder is not None and embedder.model_id == wanted
            else embedder_from_manifest(manifest)
        )
        if getattr(enc, "response_mode", None) is None:  # answers' vectors as the nightly run makes them
            from pipeline.embed.response import AnswerEmbedder

            mode = (manifest.get("encoder") or {}).get("response_vector", "sentence_mean")
            enc = AnswerEmbedder(enc, mode)
        data = embed_labelled(data, enc)
        embedder = enc
    model = load_tagger(folder, embedder)
    if embedder is None and getattr(model, "tags_from_sentences", False):
        embedder = embedder_from_manifest(manifest)  # its sentences' tags count, as in the nightly run
    return evaluate_tagger(model, data, embedder)


def compare_and_promote(
    candidate_dir: str | Path,
    eval_data: LabelledData | None,
    registry: str | Path | ModelStore,
    *,
    force: bool = False,
    max_drop: float = MAX_DROP_POINTS,
    embedder: Embedder | None = None,
) -> tuple[PromotionDecision, dict[str, Any]]:
    """Evaluate a candidate and the promoted version on the same rows, gate (micro F1), and promote.

    Without ``eval_data`` the versions' cross-validated micro F1 from their manifests is compared
    (logged as such: a weaker check, since the two may have been trained on different data).

    Args:
        candidate_dir: The candidate's version folder.
        eval_data: Labelled rows both versions are measured on.
        registry: The tagger store, or a family folder (a folder store there).
        force: Promote even when the gate refuses.
        max_drop: The gate's tolerance in points of micro F1 (1.0 = 0.01).
        embedder: The run's encoder (reused when a version was trained on it).

    Returns:
        The decision and the reports ({"candidate": ..., "current": ...}).
    """
    store = registry if isinstance(registry, ModelStore) else FolderStore(registry, "tagger")
    current_dir = store.promoted_path()
    reports: dict[str, Any] = {}
    if eval_data is not None:
        reports["candidate"] = evaluate_version(candidate_dir, eval_data, embedder)
        if current_dir is not None:
            reports["current"] = evaluate_version(current_dir, eval_data, embedder)
        evaluation = {"rows": len(eval_data), "sha256": eval_data.sha256, "sources": eval_data.sources}
    else:
        reports["candidate"] = read_manifest(candidate_dir).get("metrics") or {}
        if current_dir is not None:
            reports["current"] = read_manifest(current_dir).get("metrics") or {}
        evaluation = {"kind": "metrics of each manifest"}
    gate_family, keys = "tagger", ("micro_f1", "macro_f1")
    if eval_data is None and read_manifest(candidate_dir).get("mode") == "self-trained":
        # No labels to measure on: a self-trained candidate is gated on its label-free metrics (against
        # a self-trained current version; a version trained on labels has none, so --force is needed).
        gate_family, keys = "tagger-self-trained", ("confident_agreement", "coverage", "stability")
    elif eval_data is None:
        log.warning("no evaluation data: comparing the manifests' cross-validated micro F1")

    def picked(report: dict[str, Any]) -> dict[str, Any]:
        return {k: report[k] for k in keys if report.get(k) is not None}

    decision = store.promote(
        candidate_dir,
        picked(reports["candidate"]),
        picked(reports["current"]) if "current" in reports else None,
        force=force,
        max_drop=max_drop,
        evaluation=evaluation,
        gate_family=gate_family,
    )
    return decision, reports


def suggest_for_labelling(
    model: Any,
    ids: Sequence[str],
    texts: Sequence[str],
    embeddings: np.ndarray,
    n: int = 200,
    langs: Sequence[str | None] | None = None,
    pool_factor: int = 5,
) -> pd.DataFrame:
    """The rows whose labels would help the tagger most: uncertain and diverse.

    Uncertainty is how close a row's most doubtful tag is to its decision threshold (for one-tag-per-row
    taggers: how close the two best tags are). Among the ``pool_factor * n`` most uncertain rows,
    rows are then picked greedily, each maximising uncertainty times its cosine distance to the rows
    already picked, so that near-duplicates are not all sent to the labellers.

    Returns:
        ``id``, ``text``, ``lang``, ``tags`` (the model's tags, for the labeller to correct),
        ``model_tags``, ``uncertainty``, ``labelled`` (False; set it to True on rows you have checked,
        ``feedback tagger import-labels`` imports only those).
    """
    emb = np.asarray(embeddings, dtype=np.float32)
    if len(emb) == 0 or n <= 0:
        return pd.DataFrame(columns=["id", "text", "lang", "tags", "model_tags", "uncertainty", "labelled"])
    tags, scores = model.predict(emb, texts=list(texts))
    uncertainty = uncertainty_scores(model, scores)
    pool = np.argsort(-uncertainty, kind="stable")[: max(n * pool_factor, n)]
    chosen: list[int] = []
    min_dist = np.full(len(pool), np.inf)
    for _ in range(min(n, len(pool))):
        gain = uncertainty[pool] * np.where(np.isinf(min_dist), 1.0, min_dist)
        gain[chosen_mask(pool, chosen)] = -np.inf
        k = int(np.argmax(gain))
        chosen.append(int(pool[k]))
        min_dist = np.minimum(min_dist, 1.0 - emb[pool] @ emb[pool[k]])
    rows = np.array(chosen, dtype=int)
    lang_list = list(langs) if langs is not None else [None] * len(emb)
    return pd.DataFrame(
        {
            "id": [str(ids[i]) for i in rows],
            "text": [texts[i] for i in rows],
            "lang": [lang_list[i] for i in rows],
            "tags": [list(tags[i]) for i in rows],
            "model_tags": [list(tags[i]) for i in rows],
            "uncertainty": np.round(uncertainty[rows], 4),
            "labelled": False,
        }
    )


def chosen_mask(pool: np.ndarray, chosen: list[int]) -> np.ndarray:
    """Which pool entries were already chosen."""
    return np.isin(pool, np.asarray(chosen, dtype=int))


def uncertainty_scores(model: Any, scores: np.ndarray) -> np.ndarray:
    """Per-row uncertainty in [0, 1] (see :func:`suggest_for_labelling`)."""
    s = np.asarray(scores, dtype=np.float64)
    if s.size == 0:
        return np.zeros(len(s))
    if getattr(model, "max_tags_", None) == 1:
        n_mod = len(model.modelled_)
        top = np.sort(s[:, :n_mod], axis=1)
        return 1.0 - (top[:, -1] - (top[:, -2] if n_mod > 1 else 0.0))
    thr = np.asarray(model.thresholds_, dtype=np.float64)
    s = s[:, : len(thr)]
    span = np.maximum(thr, 1.0 - thr)
    closeness = 1.0 - np.abs(s - thr[None, :]) / span[None, :]
    return np.clip(closeness.max(axis=1), 0.0, 1.0)
