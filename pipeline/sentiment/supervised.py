"""Trained sentiment: logistic regressions on the pipeline's embeddings fused with TF-IDF n-grams.

One model class, two sources of supervision:

* labels from a data scientist (``fit``): negative / neutral / positive per text, optionally with
  "TAG=polarity" pairs that train an aspect head (the polarity of each theme a text mentions);
* the survey's own scores (``fit_scores``): NPS 0-10, CSAT 1-5, CES 1-7. A score is a noisy label of the
  text: it is turned into a bucket (detractor / passive / promoter), the model learns P(bucket | text)
  and the rows whose text clearly contradicts their bucket (a promoter who complains) are dropped before
  the final fit. At prediction time only the text counts, never the score.

The model is an average of up to four members (logistic regressions on the embeddings, on word and
character TF-IDF n-grams of the text, and on both; and the trained tagger's stack of a TF-IDF SVM, ridge
and kNN vote on the embedding, with the polarity classes as its tags), with per-class biases tuned by
cross-validation for macro F1.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np

from pipeline.embed.base import texts_digest
from pipeline.errors import ConfigError, NotFittedError, SchemaError
from pipeline.model_store import new_manifest, read_manifest, version_id, write_manifest
from pipeline.sentiment.base import POLARITIES, label_from_score, proba_to_scores
from pipeline.sentiment.ensemble import DEFAULT_MEMBERS, PolarityEnsemble, macro_f1, tune_bias

log = logging.getLogger(__name__)


# --------------------------------------------------------------------------------------------------------
# Scores as labels
# --------------------------------------------------------------------------------------------------------

SCALES: dict[str, tuple[float, float, float, float]] = {
    # scale: (low, high, negative at or below, positive at or above)
    "0-10": (0, 10, 6, 9),  # NPS: detractors 0-6, passives 7-8, promoters 9-10
    "1-5": (1, 5, 2, 4),  # CSAT / stars: 1-2 unhappy, 3 neutral, 4-5 happy
    "1-7": (1, 7, 3, 5),  # CES (agreement, 7 = easiest): 1-3 hard, 4 neutral, 5-7 easy
}
SURVEY_SCALES = {"nps": "0-10", "csat": "1-5", "ces": "1-7"}


def labels_from_scores(scores: Sequence[float], scales: Sequence[str]) -> np.ndarray:
    """Bucket each score into negative / neutral / positive by its scale ("0-10", "1-5", "1-7", or
    a survey type nps / csat / ces). Missing scores or unknown scales give None.

    Raises:
        SchemaError: when a scale is neither a known scale nor a survey type.
    """
    out = np.full(len(scores), None, dtype=object)
    for i, (s, scale) in enumerate(zip(scores, scales, strict=True)):
        if s is None or (isinstance(s, float) and np.isnan(s)) or scale is None:
            continue
        key = SURVEY_SCALES.get(str(scale).lower(), str(scale).replace(" ", ""))
        if key not in SCALES:
            raise SchemaError(
                f"unknown score scale {scale!r}; expected one of {sorted(SCALES)} or a survey type "
                f"{sorted(SURVEY_SCALES)} (column score_scale or survey_type)."
            )
        lo, hi, neg, pos = SCALES[key]
        if not lo <= float(s) <= hi:
            continue
        out[i] = "negative" if s <= neg else "positive" if s >= pos else "neutral"
    return out


# --------------------------------------------------------------------------------------------------------
# The model
# --------------------------------------------------------------------------------------------------------


class EmbeddingSentiment:
    """Trained sentiment over embeddings (+ TF-IDF n-grams of the text), with an optional aspect head.

    Args:
        members: Ensemble members (:data:`MEMBERS`, default :data:`DEFAULT_MEMBERS`); ``("embedding",)``
            and ``("embedding", "stack")`` trained without texts need no texts at all. In the aspect head
            the tag one-hot joins the embedding, for the stack as for the LR members.
        C: Inverse regularisation of the embedding LR.
        text_C: Of the TF-IDF LR.
        fused_C: Of the LR on both.
        max_char_features: Cap on the character n-gram vocabulary.
        tune_bias: Tune per-class biases for macro F1 on out-of-fold predictions (labelled data only).
        cv_folds: Folds of that cross-validation (and of the noise filter of ``fit_scores``).
        prune_below: ``fit_scores`` drops rows whose out-of-fold probability of their own score bucket is
            below this before the final fit (0 keeps every row).
        neutral_band: |score| below this is "neutral" (the model's decisions are mapped onto it).
        mixed_band: Sentence scores beyond +-this make a response "mixed" when they disagree.
        random_state: Seed of the cross-validation splits.
    """

    name = "sentiment.embedding_lr.v1"

    def __init__(
        self,
        members: Sequence[str] = DEFAULT_MEMBERS,
        C: float = 1.0,
        text_C: float = 8.0,
        fused_C: float = 4.0,
        max_char_features: int = 100_000,
        tune_bias: bool = True,
        cv_folds: int = 3,
        prune_below: float = 0.1,
        neutral_band: float = 0.25,
        mixed_band: float = 0.35,
        random_state: int = 0,
    ) -> None:
        self.members = tuple(members)
        self.C = C
        self.text_C = text_C
        self.fused_C = fused_C
        self.max_char_features = max_char_features
        self.tune_bias = tune_bias
        self.cv_folds = cv_folds
        self.prune_below = prune_below
        self.neutral_band = neutral_band
        self.mixed_band = mixed_band
        self.random_state = random_state

    # ---- interface ------------------------------------------------------------------------------------

    @property
    def needs_texts(self) -> bool:
        """True when the model reads TF-IDF n-grams of the texts."""
        self._check()
        return self.head_.needs_texts or (self.aspect_ is not None and self.aspect_.needs_texts)

    @property
    def version(self) -> str:
        """The model store's version id (``sentiment-labels|scores-<digest>``) of what was trained on what."""
        self._check()
        return version_id(
            "sentiment",
            self.source_,
            {
                "source": self.source_,
                "data": self.data_hash_,
                "embedder": self.embedder_id_,
                "params": self._params(),
                "aspects": list(self.aspect_tags_),
            },
        )

    @property
    def source(self) -> str:
        """Supervision source: "labels" or "scores"."""
        self._check()
        return self.source_

    def _check(self) -> None:
        if not hasattr(self, "head_"):
            raise NotFittedError(
                "EmbeddingSentiment is not fitted: call fit(...) / fit_scores(...), or load a trained "
                "model with pipeline.sentiment.load_sentiment(DIR)."
            )

    def _ensemble(self) -> PolarityEnsemble:
        return PolarityEnsemble(
            self.members, self.C, self.text_C, self.fused_C, self.max_char_features, max_iter=2000
        )

    def proba(self, embeddings: np.ndarray, texts: Sequence[str] | None = None) -> np.ndarray:
        """Class probabilities of the sentence head (columns: ``classes_``)."""
        self._check()
        return self.head_.predict_proba(np.asarray(embeddings, dtype=np.float32), _texts(texts))

    def score(self, embeddings: np.ndarray, texts: Sequence[str] | None = None) -> np.ndarray:
        """Scores in -1..1 whose band labels are the model's (bias-tuned) decisions."""
        return proba_to_scores(self.proba(embeddings, texts), self.classes_, self.bias_, self.neutral_band)

    def predict(
        self, embeddings: np.ndarray, texts: Sequence[str] | None = None
    ) -> tuple[np.ndarray, np.ndarray]:
        """Labels (negative/neutral/positive) and scores."""
        scores = self.score(embeddings, texts)
        return label_from_score(scores, self.neutral_band), scores

    def score_tags(
        self, embeddings: np.ndarray, texts: Sequence[str] | None, tags: Sequence[Sequence[str]]
    ) -> list[list[float]]:
        """A score per (text, tag): from the aspect head when trained, else the text's own score.

        Tags the aspect head never saw are scored without the tag feature (the text's polarity as the
        aspect head reads it).
        """
        self._check()
        if self.aspect_ is None:
            own = self.score(embeddings, texts)
            return [[float(own[i])] * len(t) for i, t in enumerate(tags)]
        rows = [i for i, ts in enumerate(tags) for _ in ts]
        flat = [t for ts in tags for t in ts]
        if not rows:
            return [[] for _ in tags]
        emb = np.asarray(embeddings, dtype=np.float32)[rows]
        txt = [texts[i] for i in rows] if texts is not None else None
        proba = self.aspect_.predict_proba(emb, txt, self._one_hot(flat))
        scores = proba_to_scores(proba, self.aspect_.classes_, None, self.neutral_band)
        out: list[list[float]] = []
        k = 0
        for ts in tags:
            out.append([float(s) for s in scores[k : k + len(ts)]])
            k += len(ts)
        return out

    # ---- training -------------------------------------------------------------------------------------

    def fit(
        self,
        embeddings: np.ndarray,
        labels: Sequence[object],
        texts: Sequence[str] | None = None,
        *,
        embedder_id: str,
        aspects: Sequence[Sequence[str]] | None = None,
        groups: Sequence[object] | None = None,
    ) -> EmbeddingSentiment:
        """Train on labelled texts.

        Args:
            embeddings: (n, dim) embeddings of the texts, from the embedder named by ``embedder_id``.
            labels: negative / neutral / positive per text; None and "mixed" rows train only the aspect
                head.
            texts: The texts (needed by the TF-IDF members; None trains on embeddings alone).
            embedder_id: ``model_id`` of the embedder; the model refuses other embedders' vectors.
            aspects: Optional "TAG=polarity" pairs per text, to train the aspect head.
            groups: Optional group per text (e.g. review id) kept together in the cross-validation.
        """
        emb, texts = self._validate(embeddings, texts)
        y = np.asarray([_polarity(v, allow_mixed=True) for v in labels], dtype=object)
        if len(y) != len(emb):
            raise SchemaError(f"{len(emb)} embedding rows but {len(y)} labels.")
        keep = np.array([v in POLARITIES for v in y])
        self._fit_head(emb[keep], y[keep], _subset(texts, keep), _subset(groups, keep), tune=self.tune_bias)
        self.aspect_, self.aspect_tags_ = None, []
        if aspects is not None:
            self._fit_aspects(emb, texts, aspects, groups)
        self.source_ = "labels"
        self._finish(embedder_id, texts, y, n_rows=len(emb))
        return self

    def fit_scores(
        self,
        embeddings: np.ndarray,
        scores: Sequence[float],
        scales: Sequence[str],
        texts: Sequence[str] | None = None,
        *,
        embedder_id: str,
    ) -> EmbeddingSentiment:
        """Learn sentiment from the survey's own scores (NPS, CSAT, CES) without copying them.

        Scores become buckets (:func:`labels_from_scores`); a first model gives every row an
        out-of-fold probability of its own bucket; rows below ``prune_below`` (text and score disagree)
        are dropped and the final model is fitted on the rest, with no bias tuning on the noisy buckets.
        """
        emb, texts = self._validate(embeddings, texts)
        y = labels_from_scores(scores, scales)
        keep = np.array([v is not None for v in y])
        if keep.sum() < 30:
            raise SchemaError(f"only {int(keep.sum())} rows have a usable score; need at least 30.")
        emb_k, y_k, texts_k = emb[keep], y[keep], _subset(texts, keep)
        self.n_pruned_ = 0
        if self.prune_below > 0 and self.cv_folds >= 2:
            oof, classes = self._oof(emb_k, y_k, texts_k, None)
            own = oof[np.arange(len(y_k)), np.searchsorted(classes, y_k)]
            ok = own >= self.prune_below
            self.n_pruned_ = int((~ok).sum())
            log.info(
                "from-score: %d of %d rows disagree with their score and are dropped", self.n_pruned_, len(ok)
            )
            emb_k, y_k, texts_k = emb_k[ok], y_k[ok], _subset(texts_k, ok)
        self._fit_head(emb_k, y_k, texts_k, None, tune=False)
        self.aspect_, self.aspect_tags_ = None, []
        self.source_ = "scores"
        self._finish(embedder_id, texts, y, n_rows=len(emb))
        return self

    # ---- internals ------------------------------------------------------------------------------------

    def _validate(
        self, embeddings: np.ndarray, texts: Sequence[str] | None
    ) -> tuple[np.ndarray, list[str] | None]:
        emb = np.asarray(embeddings, dtype=np.float32)
        if emb.ndim != 2:
            raise SchemaError(f"embeddings must be a 2-d array (n, dim), got shape {emb.shape}.")
        wants_text = any(m in ("text", "fused", "stack") for m in self.members)
        if texts is None and wants_text:
            log.info("no texts given: training on embeddings alone")
        texts_l = _texts(texts) if wants_text else None
        if texts_l is not None and len(texts_l) != len(emb):
            raise SchemaError(f"{len(emb)} embedding rows but {len(texts_l)} texts.")
        return emb, texts_l

    def _oof(
        self,
        emb: np.ndarray,
        y: np.ndarray,
        texts: list[str] | None,
        groups: np.ndarray | None,
    ) -> tuple[np.ndarray, np.ndarray]:
        from sklearn.model_selection import GroupKFold, StratifiedKFold

        classes = np.array(sorted(set(y.tolist())), dtype=object)
        folds = min(self.cv_folds, int(min(np.unique(y, return_counts=True)[1])))
        oof = np.full((len(y), len(classes)), 1.0 / len(classes))
        if folds < 2:
            return oof, classes
        if groups is not None:
            splits = GroupKFold(folds).split(emb, y, groups)
        else:
            splits = StratifiedKFold(folds, shuffle=True, random_state=self.random_state).split(emb, y)
        for tr, te in splits:
            if len(set(y[tr].tolist())) < len(classes):
                continue
            head = self._ensemble().fit(emb[tr], y[tr], _subset(texts, tr), groups=_subset(groups, tr))
            oof[te] = head.predict_proba(emb[te], _subset(texts, te))
        return oof, classes

    def _fit_head(
        self,
        emb: np.ndarray,
        y: np.ndarray,
        texts: list[str] | None,
        groups: np.ndarray | None,
        tune: bool,
    ) -> None:
        classes, counts = np.unique(y, return_counts=True)
        if len(classes) < 2:
            raise SchemaError(
                f"need at least two sentiment classes to train, found {dict(zip(classes, counts, strict=True))}."
            )
        self.metrics_: dict[str, Any] = {
            "n_train": int(len(y)),
            "class_counts": dict(zip(classes.tolist(), counts.tolist(), strict=True)),
        }
        self.bias_ = np.zeros(len(classes))
        if tune and self.cv_folds >= 2:
            oof, oof_classes = self._oof(emb, y, texts, groups)
            y_idx = np.searchsorted(oof_classes, y)
            self.bias_ = tune_bias(oof, y_idx)
            self.metrics_.update(
                cv_macro_f1=round(macro_f1(y_idx, oof.argmax(1), len(oof_classes)), 4),
                cv_macro_f1_tuned=round(
                    macro_f1(
                        y_idx, (np.log(np.clip(oof, 1e-12, 1)) + self.bias_).argmax(1), len(oof_classes)
                    ),
                    4,
                ),
                cv_folds=self.cv_folds,
            )
        self.head_ = self._ensemble().fit(emb, y, texts, groups=groups)
        self.classes_ = list(self.head_.classes_)

    def _one_hot(self, tags: Sequence[str]) -> np.ndarray:
        col = {t: j for j, t in enumerate(self.aspect_tags_)}
        out = np.zeros((len(tags), len(self.aspect_tags_)), dtype=np.float32)
        for i, t in enumerate(tags):
            if t in col:
                out[i, col[t]] = 1.0
        return out

    def _fit_aspects(
        self,
        emb: np.ndarray,
        texts: list[str] | None,
        aspects: Sequence[Sequence[str]],
        groups: Sequence[object] | None = None,
    ) -> None:
        rows, tags, pols = [], [], []
        for i, pairs in enumerate(aspects):
            for tag, pol in parse_pairs(pairs):
                if pol in POLARITIES:
                    rows.append(i)
                    tags.append(tag)
                    pols.append(pol)
        if len(set(pols)) < 2:
            log.info("aspect head skipped: %d usable TAG=polarity pairs", len(pols))
            return
        self.aspect_tags_ = sorted(set(tags))
        idx = np.asarray(rows)
        # The pairs of one text (or group) stay in one fold of the stack's internal cross-validation.
        pair_groups = [f"row{i}" for i in rows] if groups is None else [groups[i] for i in rows]
        self.aspect_ = self._ensemble().fit(
            emb[idx],
            np.asarray(pols, dtype=object),
            _subset(texts, idx),
            self._one_hot(tags),
            groups=pair_groups,
        )
        self.metrics_["n_aspect_pairs"] = len(pols)

    def _finish(self, embedder_id: str, texts: list[str] | None, y: np.ndarray, n_rows: int) -> None:
        self.embedder_id_ = embedder_id
        self.data_hash_ = texts_digest(texts if texts is not None else [str(i) for i in range(n_rows)], y)
        self.fitted_at_ = datetime.now(UTC).replace(tzinfo=None).isoformat(timespec="seconds")

    # ---- persistence ----------------------------------------------------------------------------------

    def _params(self) -> dict[str, Any]:
        return {
            "members": list(self.members),
            "C": self.C,
            "text_C": self.text_C,
            "fused_C": self.fused_C,
            "max_char_features": self.max_char_features,
            "tune_bias": self.tune_bias,
            "cv_folds": self.cv_folds,
            "prune_below": self.prune_below,
            "neutral_band": self.neutral_band,
            "mixed_band": self.mixed_band,
            "random_state": self.random_state,
        }

    def manifest(self) -> dict[str, Any]:
        """What the model folder says about the model (the model store's manifest; readable without
        loading the model)."""
        self._check()
        spec = dict(getattr(self, "embedder_spec_", None) or {})
        metrics = {**self.metrics_, **({"n_pruned": self.n_pruned_} if hasattr(self, "n_pruned_") else {})}
        if "cv_macro_f1_tuned" in metrics:
            metrics["macro_f1"] = metrics["cv_macro_f1_tuned"]
        return new_manifest(
            "sentiment",
            self.name,
            self.version,
            self.source_,
            created_at=self.fitted_at_,
            encoder={**spec, "model_id": self.embedder_id_},
            training_data={"sha256": self.data_hash_, "rows": int(self.metrics_.get("n_train", 0))},
            metrics=metrics,
            needs_texts=self.needs_texts,
            classes=list(self.classes_),
            aspect_tags=list(self.aspect_tags_),
            params=self._params(),
        )

    def save(self, path: str | Path) -> Path:
        """Write the model to the folder ``path`` as plain files: ``manifest.json``, ``model.json`` (the
        fitted state) and ``.npy`` arrays; stack members in the tagger's own format. No pickle."""
        self._check()
        out = Path(path)
        out.mkdir(parents=True, exist_ok=True)
        state = {
            "format": 2,
            "bias": [float(b) for b in self.bias_],
            "classes": list(self.classes_),
            "aspect_tags": list(self.aspect_tags_),
            "source": self.source_,
            "embedder_id": self.embedder_id_,
            "embedder_spec": getattr(self, "embedder_spec_", None),
            "data_hash": self.data_hash_,
            "fitted_at": self.fitted_at_,
            "metrics": self.metrics_,
            "n_pruned": getattr(self, "n_pruned_", None),
            "head": self.head_.save(out, "head"),
            "aspect": None if self.aspect_ is None else self.aspect_.save(out, "aspect"),
        }
        (out / "model.json").write_text(json.dumps(state, indent=2, default=str), encoding="utf-8")
        write_manifest(out, self.manifest())
        return out

    @classmethod
    def load(cls, path: str | Path) -> EmbeddingSentiment:
        """Read a model written by :meth:`save` (plain files: loading executes no code)."""
        folder = Path(path)
        file = folder / "model.json"
        if not file.exists():
            old = (
                " (a model.joblib from an older release: retrain it)"
                if (folder / "model.joblib").exists()
                else ""
            )
            raise ConfigError(f"{folder} holds no trained sentiment model (model.json missing){old}.")
        manifest = read_manifest(folder, "sentiment")
        state = json.loads(file.read_text(encoding="utf-8"))
        model = cls(**manifest["params"])
        model.bias_ = np.asarray(state["bias"], dtype=float)
        model.classes_ = list(state["classes"])
        model.aspect_tags_ = list(state["aspect_tags"])
        model.source_ = state["source"]
        model.embedder_id_ = state["embedder_id"]
        if state.get("embedder_spec") is not None:
            model.embedder_spec_ = state["embedder_spec"]
        model.data_hash_ = state["data_hash"]
        model.fitted_at_ = state["fitted_at"]
        model.metrics_ = dict(state["metrics"])
        if state.get("n_pruned") is not None:
            model.n_pruned_ = int(state["n_pruned"])
        model.head_ = PolarityEnsemble.load(folder, "head", state["head"])
        model.aspect_ = (
            None if state["aspect"] is None else PolarityEnsemble.load(folder, "aspect", state["aspect"])
        )
        return model


def parse_pairs(pairs: object) -> list[tuple[str, str]]:
    """Parse "TAG=polarity" pairs (a list, an array, or a "|"-separated string) into tuples."""
    if pairs is None or (isinstance(pairs, float) and np.isnan(pairs)):
        return []
    items = pairs.split("|") if isinstance(pairs, str) else list(pairs)  # type: ignore[call-overload]
    out = []
    for item in items:
        tag, sep, pol = str(item).strip().rpartition("=")
        if not sep or not tag:
            raise SchemaError(f"aspect pair {item!r} is not of the form 'TAG=polarity'.")
        out.append((tag, pol.strip().lower()))
    return out


def _polarity(value: object, allow_mixed: bool = False) -> str | None:
    if value is None or (isinstance(value, float) and np.isnan(value)):
        return None
    v = str(value).strip().lower()
    if v in POLARITIES or (allow_mixed and v == "mixed"):
        return v
    raise SchemaError(f"unknown sentiment label {value!r}; expected one of {[*POLARITIES, 'mixed']} or null.")


def _texts(texts: Sequence[str] | None) -> list[str] | None:
    if texts is None:
        return None
    if isinstance(texts, str):
        raise SchemaError("texts must be a list of strings, not a single string: wrap it as [text].")
    return ["" if t is None or (isinstance(t, float) and np.isnan(t)) else str(t) for t in texts]


def _subset(values: Sequence[Any] | np.ndarray | None, index: np.ndarray) -> Any:
    if values is None:
        return None
    index = np.asarray(index)
    if index.dtype == bool:
        index = np.flatnonzero(index)
    if isinstance(values, np.ndarray):
        return values[index]
    return [values[i] for i in index]
