"""Learning sentiment from the survey's own scores, as a gated model-store version (the weekly
``retrain-sentiment`` flow wires this; a nightly run never trains).

When ``sentiment.options.learn_from_scores`` is set (``{min_rows: 2000, ...}``, the rest being
:class:`pipeline.sentiment.EmbeddingSentiment` parameters) and at least ``min_rows`` answered, scored
answers are stored, a share is held out, ``sentiment.embedding_lr.v1`` is trained on the rest from the
cached vectors, and the candidate and what the nightly run uses today (the promoted version, or the
configured zero-shot model) are measured on the held-out answers: Spearman of the model's score with
the customer's score (scales put on 0..1 first) and macro F1 against the score buckets. The candidate is
promoted when neither is worse by more than ``max_drop`` points.
"""

from __future__ import annotations

import logging
import tempfile
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from pipeline.model_store import ModelStore, open_store
from pipeline.sentiment.supervised import SCALES, SURVEY_SCALES, EmbeddingSentiment, labels_from_scores

log = logging.getLogger(__name__)

DEFAULT_MIN_ROWS = 500


def stored_scores(wh: Any, config: Any) -> pd.DataFrame:
    """Answered, enriched responses with their scores: ``text`` (redacted, as models see it), ``score``,
    ``survey_type``, ``language``."""
    t = config.tables.enriched
    cols = ["text", "score", "survey_type", "language"]
    if not wh.table_exists(t):
        return pd.DataFrame(columns=cols)
    rows = wh.read(t, ["response_id", "text_redacted", "score", "survey_type", "language", "is_non_answer"])
    rows = rows[~rows["is_non_answer"].astype(bool)].rename(columns={"text_redacted": "text"})
    rows = _with_corrections(wh, config, rows)
    rows = rows[rows["text"].notna() & rows["score"].notna()]
    return rows[cols].reset_index(drop=True)


def _with_corrections(wh: Any, config: Any, rows: pd.DataFrame) -> pd.DataFrame:
    """A person's sentiment correction (``sentiment_labels``) wins over the score as the training target:
    the score becomes the bottom of its scale, the middle of its neutral band, or the top."""
    table = getattr(config.tables, "sentiment_labels", None)
    if not table or not wh.table_exists(table) or rows.empty:
        return rows
    labels = wh.read(table, ["response_id", "sentiment_label"]).set_index("response_id")["sentiment_label"]
    found = rows["response_id"].map(labels)
    if found.notna().any():
        lo_hi = {k: SCALES[v][:2] for k, v in SURVEY_SCALES.items()}
        targets = []
        for label, kind, score in zip(
            found, rows["survey_type"].astype(str).str.lower(), rows["score"], strict=True
        ):
            lo, hi = lo_hi.get(kind, (0, 10))
            targets.append(
                score if pd.isna(label) else {"negative": lo, "neutral": (lo + hi) / 2, "positive": hi}[label]
            )
        rows = rows.assign(score=targets)
        log.info("sentiment: %d human correction(s) used as targets", int(found.notna().sum()))
    return rows


def unit_scores(scores: pd.Series, survey_types: pd.Series) -> pd.Series:
    """Scores put on 0..1 by their survey's scale, so NPS, CSAT and CES rank together."""
    lows, highs = [], []
    for kind in survey_types.astype(str).str.lower():
        lo, hi, _, _ = SCALES[SURVEY_SCALES.get(kind, "0-10")]
        lows.append(lo)
        highs.append(hi)
    lo_s, hi_s = np.asarray(lows, dtype=float), np.asarray(highs, dtype=float)
    return pd.Series((scores.astype(float).to_numpy() - lo_s) / (hi_s - lo_s), index=scores.index)


def _evaluate(model: Any, rows: pd.DataFrame, emb: np.ndarray) -> dict[str, Any]:
    from pipeline.sentiment.workflow import evaluate_frame

    frame = pd.DataFrame(
        {
            "id": [str(i) for i in range(len(rows))],
            "text": rows["text"].astype(str).tolist(),
            "score": unit_scores(rows["score"], rows["survey_type"]).to_numpy(),
            "sentiment": labels_from_scores(
                rows["score"].astype(float).tolist(), rows["survey_type"].tolist()
            ),
        }
    )
    report = evaluate_frame(model, frame, None, emb)
    return {k: report.get(k) for k in ("spearman_score", "macro_f1", "accuracy", "score_n", "n")}


def learn_from_scores(
    wh: Any,
    config: Any,
    embedder: Any,
    store: ModelStore | None = None,
    *,
    eval_fraction: float = 0.2,
    seed: int = 0,
    force: bool = False,
    max_drop: float = 1.0,
) -> dict[str, Any]:
    """Train a sentiment version on the stored scores, gate it against today's model and promote it.

    Args:
        wh: The open warehouse (scores and the embedding cache).
        config: The enrichment config (``sentiment.options.learn_from_scores``).
        embedder: The run's encoder (stored answers' vectors come from its cache).
        store: The sentiment store (default: the config's).
        eval_fraction: Share of the scored answers held out for the gate.
        seed: Seed of the split.
        force: Promote even when the gate refuses.
        max_drop: The gate's tolerance in points.

    Returns:
        A summary: status (promoted / refused / skipped), rows, versions and both reports.
    """
    from pipeline.embed import CachedEmbedder
    from pipeline.embed.response import AnswerEmbedder
    from pipeline.sentiment import load_sentiment, sentiment_for_run
    from pipeline.tagging.workflow import encoder_spec

    settings = config.sentiment.options.get("learn_from_scores")
    if not settings:
        return {"status": "skipped", "reason": "sentiment.options.learn_from_scores is not set"}
    settings = dict(settings) if isinstance(settings, dict) else {}
    min_rows = int(settings.pop("min_rows", DEFAULT_MIN_ROWS))
    rows = stored_scores(wh, config)
    if len(rows) < min_rows:
        log.info("sentiment: %d scored answers stored, fewer than %d: nothing trained", len(rows), min_rows)
        return {"status": "skipped", "rows": len(rows), "reason": f"fewer than {min_rows} scored answers"}
    store = store or open_store(config, "sentiment", wh)
    answers = AnswerEmbedder(CachedEmbedder(embedder, wh), config.response_vector)
    emb = answers.embed(rows["text"].astype(str).tolist(), languages=rows["language"].astype(str).tolist())
    held = np.random.default_rng(seed).random(len(rows)) < eval_fraction
    train, test = rows[~held], rows[held]
    model = EmbeddingSentiment(**settings).fit_scores(
        emb[~held],
        train["score"].astype(float).tolist(),
        train["survey_type"].astype(str).tolist(),
        train["text"].astype(str).tolist(),
        embedder_id=embedder.model_id,
    )
    model.embedder_spec_ = encoder_spec(config.embedder.name, config.embedder.options, answers)
    current_dir = store.promoted_path()
    current = (
        load_sentiment(current_dir)
        if current_dir is not None
        else sentiment_for_run(config.sentiment.name, {}, embedder, config.response_vector)
    )
    reports = {"candidate": _evaluate(model, test, emb[held]), "current": _evaluate(current, test, emb[held])}
    with tempfile.TemporaryDirectory(prefix="sentiment-") as tmp:
        folder = model.save(Path(tmp) / model.version)
        store.add(folder)  # kept even when refused: listed, and promotable with --force
        decision = store.promote(
            folder,
            reports["candidate"],
            reports["current"],
            force=force,
            max_drop=max_drop,
            evaluation={"held_out_rows": int(held.sum()), "seed": seed, "against": current.version},
        )
    return {
        "status": "promoted" if decision.promoted else "refused",
        "rows": len(rows),
        "train_rows": int((~held).sum()),
        "eval_rows": int(held.sum()),
        "version": model.version,
        "current_version": current.version,
        "decision": decision.as_dict(),
        **{f"{k}_report": v for k, v in reports.items()},
    }
