"""File-level sentiment work: read a labelled file, train, predict and evaluate (what the CLI runs).

Input files are Parquet or CSV with a ``text`` column and, as available, ``id``, ``lang``, ``sentiment``
(negative/neutral/positive/mixed), ``score`` with ``score_scale`` (or ``survey_type``), ``tags`` and
``aspect_sentiments`` (lists, or "|"-separated strings).
"""

from __future__ import annotations

import logging
import time
from collections import Counter
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from pipeline.embed import Embedder, build_embedder
from pipeline.errors import SchemaError, missing_columns
from pipeline.ingest.source import file_ids
from pipeline.prepare import is_missing
from pipeline.sentiment.base import POLARITIES, combine_sentences, label_from_score
from pipeline.sentiment.supervised import EmbeddingSentiment, parse_pairs

log = logging.getLogger(__name__)


def parse_list(value: object) -> list[str]:
    """A list column cell as a list of strings: list/array as is, "a|b" split, null as []."""
    if value is None or (isinstance(value, float) and np.isnan(value)):
        return []
    if isinstance(value, str):
        return [v.strip() for v in value.split("|") if v.strip()]
    return [str(v) for v in value]  # type: ignore[union-attr]


def read_labelled(path: str | Path, prepare: Any = None, text_column: str = "text") -> pd.DataFrame:
    """Read a CSV/Parquet file for sentiment work; checks that the text column exists.

    ``prepare``: the run's text options (a :class:`pipeline.prepare.PrepareConfig`, see
    :func:`pipeline.prepare.prepare_config_of`); the defaults when None. ``text_column``: the column
    holding the texts (it becomes ``text``; a ``text`` column it replaces is dropped).

    Returns:
        The frame with ``id`` (added as the row number when absent) and ``text`` as strings.
    """
    from pipeline.ingest.source import read_export
    from pipeline.prepare import model_texts

    df = read_export(path)
    if text_column not in df.columns:
        raise missing_columns(
            str(path), [text_column], list(df.columns), "Name the column of texts with --text-column."
        )
    if text_column != "text":
        df = df.drop(columns=["text"], errors="ignore").rename(columns={text_column: "text"})
    df = df.reset_index(drop=True)
    # What the nightly run's models see (normalised, PII-redacted): trained and measured on it.
    df["text"] = model_texts(df["text"].tolist(), prepare)
    df["id"] = file_ids(df)
    return df


def embedder_spec(name: str, options: Mapping[str, Any] | None = None) -> dict[str, Any]:
    """How a model's embedder is recorded in its manifest (to rebuild it at prediction time)."""
    return {"name": name, "options": dict(options or {})}


def embedder_for(model: object, default: tuple[str, Mapping[str, Any]] | None = None) -> Embedder | None:
    """The embedder a model was trained with (None for models that read texts only)."""
    if getattr(model, "name", "") == "sentiment.transformers.v1":
        return None
    spec = getattr(model, "embedder_spec_", None)
    if spec:
        return build_embedder(spec["name"], **spec.get("options", {}))
    if default is not None:
        return build_embedder(default[0], **dict(default[1]))
    raise SchemaError("the model does not record its embedder; pass the embedder explicitly.")


def train_on_frame(
    df: pd.DataFrame,
    embedder: Embedder,
    spec: Mapping[str, Any],
    from_score: bool = False,
    embeddings: np.ndarray | None = None,
    **params: Any,
) -> EmbeddingSentiment:
    """Train ``sentiment.embedding_lr.v1`` on a frame from :func:`read_labelled`.

    Args:
        df: Rows with ``text`` and ``sentiment`` (labels), or ``score`` + ``score_scale``/``survey_type``
            when ``from_score``; ``aspect_sentiments`` (if present) trains the aspect head.
        embedder: The embedder of the texts (also the run's embedder when the model is deployed).
        spec: :func:`embedder_spec` of that embedder, recorded in the manifest.
        from_score: Learn from the customers' scores instead of labels.
        embeddings: Precomputed embeddings of ``df["text"]`` (row-aligned), to skip encoding.
        **params: Constructor parameters of :class:`EmbeddingSentiment`.
    """
    texts = df["text"].tolist()
    if not any(str(t).strip() for t in texts):
        raise SchemaError(
            f"no text to learn from: {'the file has no rows' if not texts else f'all {len(texts)} texts are empty'}. "
            "Check the file (and --text-column)."
        )
    model = EmbeddingSentiment(**params)
    if from_score:
        if "score" not in df.columns:
            raise missing_columns(
                "--from-score training data", ["text", "score", "score_scale"], list(df.columns)
            )
        scale_col = next((c for c in ("score_scale", "survey_type") if c in df.columns), None)
        if scale_col is None:
            raise missing_columns(
                "--from-score training data (a scale: score_scale like '1-5', or survey_type nps/csat/ces)",
                ["text", "score", "score_scale"],
                list(df.columns),
            )
        score = pd.to_numeric(df["score"], errors="coerce")
        if (bad := int((score.isna() & df["score"].notna()).sum())) > 0:
            log.warning("--from-score: %d score(s) are not numbers and are left out", bad)
        usable = score.notna().to_numpy()
        rows = df.loc[usable].assign(score=score[usable])
        emb = _embed(
            embedder, rows["text"].tolist(), None if embeddings is None else embeddings[usable], _langs(rows)
        )
        model.fit_scores(
            emb,
            rows["score"].astype(float).tolist(),
            rows[scale_col].tolist(),
            rows["text"].tolist(),
            embedder_id=embedder.model_id,
        )
    else:
        if "sentiment" not in df.columns:
            raise missing_columns(
                "training data (or pass --from-score to learn from scores)",
                ["text", "sentiment"],
                list(df.columns),
            )
        has_aspects = "aspect_sentiments" in df.columns and df["aspect_sentiments"].notna().any()
        labelled = (
            df["sentiment"].notna() | (df["aspect_sentiments"].notna() if has_aspects else False)
        ).to_numpy()
        rows = df.loc[labelled]
        emb = _embed(
            embedder,
            rows["text"].tolist(),
            None if embeddings is None else embeddings[labelled],
            _langs(rows),
        )
        groups = rows["id"].astype(str).str.split(":").str[0].tolist() if has_aspects else None
        model.fit(
            emb,
            rows["sentiment"].tolist(),
            rows["text"].tolist(),
            embedder_id=embedder.model_id,
            aspects=rows["aspect_sentiments"].tolist() if has_aspects else None,
            groups=groups,
        )
    # How answers' vectors were made: the nightly run warns when it would feed the model other ones.
    model.embedder_spec_ = {"response_vector": getattr(embedder, "response_mode", None) or "whole", **spec}
    log.info("trained %s on %d rows", model.version, len(texts))
    return model


def _langs(df: pd.DataFrame) -> list[str | None] | None:
    """The ``lang`` column (for sentence splitting), or None (languages are then detected)."""
    if "lang" not in df.columns or not df["lang"].notna().any():
        return None
    return [None if pd.isna(v) else str(v) for v in df["lang"]]


def _embed(
    embedder: Embedder | None,
    texts: list[str],
    given: np.ndarray | None,
    langs: list[str | None] | None = None,
) -> np.ndarray:
    if given is not None:
        if len(given) != len(texts):
            raise SchemaError(f"{len(given)} precomputed embeddings for {len(texts)} texts.")
        return np.asarray(given, dtype=np.float32)
    if embedder is None:
        return np.zeros((len(texts), 0), dtype=np.float32)
    if getattr(embedder, "response_mode", None) is not None:  # answers: sentences split per language
        return embedder.embed(texts, languages=langs)  # type: ignore[call-arg]
    return embedder.embed(texts)


def predict_frame(
    model: Any,
    df: pd.DataFrame,
    embedder: Embedder | None,
    embeddings: np.ndarray | None = None,
    mixed: bool = True,
) -> pd.DataFrame:
    """``id``, ``sentiment_label``, ``sentiment_score`` (and ``tag_sentiments`` when ``df`` has ``tags``).

    ``tag_sentiments`` lists "TAG=polarity" for each given tag: from the model's aspect head when it has
    one, else the text's own polarity.

    Args:
        model: A fitted sentiment model.
        df: Rows with ``text`` (and optionally ``id``, ``lang``, ``tags``).
        embedder: The model's embedder (None for models that read texts only).
        embeddings: Precomputed embeddings of ``df["text"]`` (row-aligned), to skip encoding.
        mixed: Label a text "mixed" when its sentences clearly disagree, exactly as the nightly run does
            (:func:`~pipeline.sentiment.base.combine_sentences`); sentences are split per ``lang`` (``und``
            when absent) and embedded with ``embedder``. False gives every text its own polarity.

    An empty text gets no label (null), no score (NaN) and no tag sentiments.
    """
    texts = df["text"].tolist()
    emb = _embed(embedder, texts, embeddings, _langs(df))
    kwargs = {"texts": texts} if getattr(model, "needs_texts", False) else {}
    labels, scores = model.predict(emb, **kwargs)
    if mixed:
        langs = df["lang"].fillna("und").astype(str).tolist() if "lang" in df.columns else None
        labels = _with_mixed(
            model, texts, langs, np.asarray(scores, dtype=float), labels, embedder, embeddings
        )
    # An empty answer says nothing: no sentiment (as in the nightly run), not the polarity of "".
    empty = np.array([not t.strip() for t in texts], dtype=bool)
    labels = np.where(empty, None, np.asarray(labels, dtype=object))
    scores = np.where(empty, np.nan, np.asarray(scores, dtype=float))
    out = pd.DataFrame({"id": file_ids(df).to_numpy(), "sentiment_label": labels, "sentiment_score": scores})
    if "tags" in df.columns:
        tags = [[] if empty[i] else parse_list(v) for i, v in enumerate(df["tags"])]
        if hasattr(model, "score_tags"):
            tag_scores = model.score_tags(emb, texts if getattr(model, "needs_texts", False) else None, tags)
        else:
            tag_scores = [[float(scores[i])] * len(t) for i, t in enumerate(tags)]
        out["tag_sentiments"] = [
            [
                f"{t}={label_from_score(np.array([s]), model.neutral_band)[0]}"
                for t, s in zip(ts, ss, strict=True)
            ]
            for ts, ss in zip(tags, tag_scores, strict=True)
        ]
    return out


def _with_mixed(
    model: Any,
    texts: list[str],
    langs: list[str] | None,
    scores: np.ndarray,
    labels: np.ndarray,
    embedder: Embedder | None,
    embeddings: np.ndarray | None,
) -> np.ndarray:
    """The labels with "mixed" where a text's sentences clearly disagree (the nightly run's rule)."""
    from pipeline.prepare import split_sentences

    sentences = [
        split_sentences(t, lang) for t, lang in zip(texts, langs or ["und"] * len(texts), strict=True)
    ]
    # One sentence never makes a response mixed: only longer texts cost a second scoring pass.
    multi = [i for i, s in enumerate(sentences) if len(s) > 1]
    out = np.asarray(labels, dtype=object).copy()
    if not multi:
        return out
    if embedder is None and embeddings is not None:
        raise SchemaError(
            "telling mixed answers apart embeds their sentences: pass the embedder along with the "
            "precomputed embeddings, or mixed=False."
        )
    unique = list(dict.fromkeys(s for i in multi for s in sentences[i]))
    kwargs = {"texts": unique} if getattr(model, "needs_texts", False) else {}
    # Sentences get the encoder's own vectors, as in the nightly run.
    sentence_embedder = getattr(embedder, "base", embedder)
    score_of = dict(zip(unique, model.score(_embed(sentence_embedder, unique, None), **kwargs), strict=True))
    for i in multi:
        out[i], _ = combine_sentences(
            float(scores[i]), [score_of[s] for s in sentences[i]], model.neutral_band, model.mixed_band
        )
    return out


def _label_metrics(gold: Sequence[object], pred: Sequence[object]) -> dict[str, Any]:
    from sklearn.metrics import f1_score

    g = np.asarray([_gold_label(v) for v in gold], dtype=object)
    keep = np.array([v in POLARITIES for v in g])
    # Gold values that are not a polarity are not scored, but counted (a typo must not vanish).
    skipped = Counter("(missing)" if v is None else str(v) for v in g[~keep])
    if not keep.any():
        return {"labels_not_scored": dict(skipped)} if skipped else {}
    # A text with no prediction (an empty answer) counts as wrong.
    g, p = g[keep], np.asarray([v if isinstance(v, str) else "(none)" for v in pred], dtype=object)[keep]
    classes = sorted(set(g.tolist()))
    out = {
        "n": int(keep.sum()),
        "accuracy": round(float((g == p).mean()), 4),
        "macro_f1": round(float(f1_score(g, p, labels=classes, average="macro", zero_division=0)), 4),
    }
    if skipped:
        out["labels_not_scored"] = dict(skipped)
    return out


def _gold_label(value: object) -> str | None:
    return None if is_missing(value) else str(value).strip().lower()


def _aspect_metrics(aspects: Sequence[object], predicted: Sequence[Sequence[str]]) -> dict[str, Any]:
    hits = total = 0
    for gold, pred in zip(aspects, predicted, strict=True):
        guess = dict(p.rsplit("=", 1) for p in pred)
        for tag, pol in parse_pairs(gold):
            if pol in POLARITIES:
                total += 1
                hits += int(guess.get(tag) == pol)
    return {"aspect_n": total, "aspect_accuracy": round(hits / total, 4)} if total else {}


def _spearman(scores: np.ndarray, target: pd.Series) -> dict[str, Any]:
    from scipy.stats import spearmanr

    numeric = pd.to_numeric(target, errors="coerce")
    scored = np.asarray(scores, dtype=float)
    keep = (numeric.notna() & ~np.isnan(scored)).to_numpy()
    if keep.sum() < 3:
        return {}
    rho = spearmanr(scored[keep], numeric[keep].astype(float)).statistic
    return {"score_n": int(keep.sum()), "spearman_score": round(float(rho), 4)}


def evaluate_frame(
    model: Any,
    df: pd.DataFrame,
    embedder: Embedder | None,
    embeddings: np.ndarray | None = None,
) -> dict[str, Any]:
    """Metrics of ``model`` on a labelled frame (the JSON of ``feedback sentiment evaluate``).

    Returns:
        ``accuracy`` and ``macro_f1`` (over rows labelled negative/neutral/positive; macro over the
        classes present in the gold labels), ``aspect_accuracy`` where ``aspect_sentiments`` exist (the
        gold tags are given to the model), ``spearman_score`` where ``score`` exists, the same per
        ``lang`` under ``per_lang``, plus the model's version and supervision source and timings.
    """
    t0 = time.perf_counter()
    data = df.copy()
    has_aspects = "aspect_sentiments" in data.columns and data["aspect_sentiments"].notna().any()
    if has_aspects:
        data["tags"] = [[t for t, _ in parse_pairs(a)] for a in data["aspect_sentiments"]]
    # Each text's own polarity against the gold label ("mixed" gold rows are not scored).
    pred = predict_frame(model, data, embedder, embeddings, mixed=False)
    seconds = time.perf_counter() - t0

    def block(mask: np.ndarray) -> dict[str, Any]:
        out: dict[str, Any] = {"n_rows": int(mask.sum())}
        if "sentiment" in data.columns:
            out.update(
                _label_metrics(
                    data.loc[mask, "sentiment"].tolist(), pred.loc[mask, "sentiment_label"].tolist()
                )
            )
        if has_aspects:
            out.update(
                _aspect_metrics(
                    data.loc[mask, "aspect_sentiments"].tolist(), pred.loc[mask, "tag_sentiments"].tolist()
                )
            )
        if "score" in data.columns:
            out.update(_spearman(pred.loc[mask, "sentiment_score"].to_numpy(), data.loc[mask, "score"]))
        return out

    result = block(np.ones(len(data), dtype=bool))
    if not {"n", "aspect_n", "score_n"} & set(result):
        raise SchemaError(
            f"nothing to measure in {len(data)} rows: expected a sentiment column (negative/neutral/"
            f"positive), aspect_sentiments (TAG=polarity) or a numeric score; found columns "
            f"{list(df.columns)}"
            + (f", labels {result['labels_not_scored']}" if "labels_not_scored" in result else "")
        )
    if result.get("labels_not_scored"):
        log.warning(
            "sentiment labels not scored (not negative/neutral/positive): %s", result["labels_not_scored"]
        )
    if "lang" in data.columns:
        langs = data["lang"].fillna("und").astype(str)
        result["per_lang"] = {lang: block((langs == lang).to_numpy()) for lang in sorted(langs.unique())}
    result.update(
        model_version=model.version,
        sentiment_source=model.source,
        seconds=round(seconds, 3),
        rows_per_second=round(len(data) / max(seconds, 1e-9), 1),
    )
    return result
