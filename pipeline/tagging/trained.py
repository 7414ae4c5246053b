"""The trained tagger: multi-label tags learned from labelled examples, over the cached embeddings and the
texts' word and character n-grams.

Three base scorers see each text, one score per tag each:

* a linear SVM on TF-IDF word (1-2) and character (2-5, within word boundaries) n-grams: strong where a
  language's surface words name the theme (on the SemEval restaurant data it beats frozen sentence
  embeddings for Spanish, French and Dutch);
* ridge regression on the sentence embedding (closed form, so cross-validation costs almost nothing);
* a k-nearest-neighbour label vote over the training embeddings (a non-linear view at the cost of one
  similarity matrix).

A logistic-regression stacker per tag reads all tags' base scores (so it also learns which tags go
together) from out-of-fold predictions, which makes its outputs calibrated probabilities. Each tag's
decision threshold is tuned on the stacker's own out-of-fold probabilities to maximise micro F1; the
number of tags per text is exactly one when every training row has exactly one tag (multi-class data),
else free. With a tag hierarchy, labels roll up to their parents
before training, and a parent applies whenever one of its children does.

One interface covers few-shot (8-16 examples per tag) and full training; with no labels at all use the
zero-shot tagger (:func:`pipeline.tagging.train_tagger` picks it). Example rows of a taxonomy (its tags'
descriptions and examples) can be passed as ``seeds``: they join every training fold but are never scored.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import scipy.sparse as sp
from scipy.special import expit

from pipeline.errors import FeedbackError, NotFittedError, SchemaError
from pipeline.model_store import version_id
from pipeline.tagging.metrics import binarize, rollup, tagging_report
from pipeline.tagging.trained_parts import (
    TaggerParams,
    _fit_logreg,
    _fit_softmax,
    _fit_svm,
    _folds,
    _knn_vote,
    _one_blas_thread,
    _ridge_solve,
    _softmax,
    _tfidf,
    _tune_thresholds,
    _vectorizers,
    _with_bias,
)

log = logging.getLogger(__name__)


# ---------------------------------------------------------------------------------------------------------
# The tagger
# ---------------------------------------------------------------------------------------------------------


class EmbeddingTfidfTagger:
    """Multi-label tagger trained on labelled texts (see the module doc for the method).

    Same interface as :class:`pipeline.tagging.ZeroShotTagger` at prediction time: ``score`` returns a
    matrix of calibrated probabilities in ``tag_names_`` order, ``decide`` turns it into tag lists,
    ``predict`` does both, and ``version`` is recorded on every enriched row.

    Args:
        params: Hyper-parameters; keyword overrides are applied on top (``EmbeddingTfidfTagger(cv=3)``).
    """

    name = "tagger.embedding_tfidf.v1"
    tags_from_sentences = False
    """An answer's tags are the answer-level decision, which is what it is trained and measured on. Adding
    every tag any single sentence gets (the zero-shot rule) costs 5 points of micro F1 on the airline root
    causes and 0.7 on restaurant reviews (bench/README.md, "Answer vectors")."""

    def __init__(self, params: TaggerParams | None = None, **overrides: Any) -> None:
        base = (params or TaggerParams()).model_dump()
        self.params = TaggerParams.model_validate({**base, **overrides})

    # ----------------------------------------------------------------------------------------- fitting
    def fit(
        self,
        texts: Sequence[str],
        embeddings: np.ndarray,
        tags: Sequence[Sequence[str]],
        *,
        langs: Sequence[str | None] | None = None,
        groups: Sequence[str] | None = None,
        parents: Mapping[str, str | None] | None = None,
        tag_names: Sequence[str] | None = None,
        seeds: tuple[Sequence[str], np.ndarray, Sequence[Sequence[str]]] | None = None,
        embedder_id: str = "unknown",
        version: str | None = None,
    ) -> EmbeddingTfidfTagger:
        """Learn the tags of labelled texts.

        Args:
            texts: The labelled texts.
            embeddings: Their embeddings (rows L2-normalised), shape (len(texts), dim).
            tags: Each text's tags; ``[]`` means none applies (a valid, informative example).
            langs: Optional language per text (for the per-language cross-validation report).
            groups: Optional group per text; a group never spans two folds (e.g. sentences of one review).
            parents: Optional hierarchy {tag: parent}; labels roll up to ancestors when ``rollup``.
            tag_names: Optional tag order (default: by frequency). Tags without any example are left out.
            seeds: Optional extra (texts, embeddings, tags) that join every training fold but are never
                scored, e.g. a taxonomy's example phrases.
            embedder_id: Model id of the encoder behind ``embeddings`` (checked when the model is used).
            version: Version id to record (default: a timestamp).

        Returns:
            self, fitted: ``tag_names_``, ``thresholds_``, ``cv_report_`` (micro/macro F1, per tag and per
            language on the internal out-of-fold predictions) and ``cv_probabilities_``.
        """
        t_start = time.perf_counter()
        p = self.params
        texts = [str(t) for t in texts]
        emb = np.ascontiguousarray(embeddings, dtype=np.float32)
        if emb.ndim != 2 or len(emb) != len(texts) or len(tags) != len(texts):
            raise FeedbackError(
                f"fit() needs as many embedding rows and tag lists as texts: {len(texts)} texts, "
                f"embeddings of shape {emb.shape}, {len(tags)} tag lists"
            )
        if texts and p.use_tfidf and not any(t.strip() for t in texts):
            raise SchemaError(
                f"no text to learn from: all {len(texts)} training texts are empty. Check the file's text "
                "column."
            )
        hierarchy = {k: v for k, v in (parents or {}).items() if v}
        gold = [rollup(list(t), hierarchy) if p.rollup else list(dict.fromkeys(t)) for t in tags]
        counts: dict[str, int] = {}
        for ts in gold:
            for t in ts:
                counts[t] = counts.get(t, 0) + 1
        order = list(tag_names) if tag_names is not None else sorted(counts, key=lambda t: (-counts[t], t))
        modelled = [t for t in order if counts.get(t, 0) > 0]
        unknown = sorted(set(counts) - set(order))
        if unknown:
            raise FeedbackError(
                f"labels use tags outside tag_names: {unknown[:10]}; valid: {list(order)[:20]}"
            )
        if not modelled:
            raise FeedbackError(
                "no tag has a labelled example: label some rows, or use the zero-shot tagger "
                "(tagger.zeroshot.v1) that needs only the taxonomy"
            )
        if float(np.median([counts[t] for t in modelled])) < p.few_shot_below:
            return self._fit_few_shot(
                texts,
                emb,
                tags,
                langs=langs,
                groups=groups,
                parents=parents,
                tag_names=tag_names,
                seeds=seeds,
                embedder_id=embedder_id,
                version=version,
            )
        self.params_ = p
        self.recipe_ = "full"
        missing = [t for t in order if counts.get(t, 0) == 0]
        if missing:
            log.warning("tags without any labelled example are not learned: %s", missing)
        y = binarize(gold, modelled)
        n, n_tags = y.shape
        if n < 2 * p.cv and n < 10:
            raise FeedbackError(f"{n} labelled rows are too few to train and cross-validate; label more")

        # Seeds join every training fold (fold -1) and are never scored.
        s_texts: list[str] = []
        s_emb = np.zeros((0, emb.shape[1]), dtype=np.float32)
        s_y = np.zeros((0, n_tags), dtype=np.int8)
        if seeds is not None and len(seeds[0]):
            s_texts = [str(t) for t in seeds[0]]
            s_emb = np.ascontiguousarray(seeds[1], dtype=np.float32)
            s_gold = [rollup(list(t), hierarchy) if p.rollup else list(t) for t in seeds[2]]
            s_y = binarize(s_gold, modelled)

        fold, n_folds = _folds(y, groups, p.cv, p.seed)
        timings: dict[str, float] = {}

        # ------------------------------------------------------------------ base scores, out of fold
        blocks_oof: list[np.ndarray] = []
        t0 = time.perf_counter()
        if p.use_tfidf:
            vecs = _vectorizers(p)
            for v in vecs:
                v.fit(texts + s_texts)
            x_all = _tfidf(vecs, texts)
            x_seed = _tfidf(vecs, s_texts) if s_texts else None
            oof = np.zeros((n, n_tags), dtype=np.float32)
            for k in range(n_folds):
                tr, te = fold != k, fold == k
                x_tr = sp.vstack([x_all[tr], x_seed]).tocsr() if x_seed is not None else x_all[tr]
                y_tr = np.vstack([y[tr], s_y]) if len(s_y) else y[tr]
                coef, b = _fit_svm(x_tr, y_tr, p.svm_c)
                oof[te] = x_all[te] @ coef + b
            x_fit = sp.vstack([x_all, x_seed]).tocsr() if x_seed is not None else x_all
            self.svm_coef_, self.svm_intercept_ = _fit_svm(x_fit, np.vstack([y, s_y]), p.svm_c)
            self.vectorizers_ = vecs
            blocks_oof.append(oof)
        timings["tfidf_svm"] = time.perf_counter() - t0

        t0 = time.perf_counter()
        if p.embedding_scorer == "raw":
            # The embedding itself is the block (nothing fitted): with few examples a logistic regression
            # on the embedding beats ridge scores fed to a stacker (bench/README.md, "Tagger").
            blocks_oof.append(emb)
        else:
            eb, sb = _with_bias(emb).astype(np.float64), _with_bias(s_emb).astype(np.float64)
            gram = eb.T @ eb + sb.T @ sb
            xy = eb.T @ y + sb.T @ s_y
            oof = np.zeros((n, n_tags), dtype=np.float32)
            for k in range(n_folds):
                te = fold == k
                # Fold models by subtracting the held-out rows from the Gram matrix: no refit from scratch.
                with _one_blas_thread():
                    g_k, xy_k = gram - eb[te].T @ eb[te], xy - eb[te].T @ y[te]
                w = _ridge_solve(g_k, xy_k, p.ridge_alpha)
                oof[te] = eb[te] @ w
            self.ridge_coef_ = _ridge_solve(gram, xy, p.ridge_alpha).astype(np.float32)
            blocks_oof.append(oof)
        timings["ridge"] = time.perf_counter() - t0

        t0 = time.perf_counter()
        if p.knn_k > 0:
            ref = np.vstack([emb, s_emb])
            ref_y = np.vstack([y, s_y])
            ref_fold = np.concatenate([fold, np.full(len(s_emb), -1)])
            blocks_oof.append(
                _knn_vote(emb, ref, ref_y, p.knn_k, p.knn_temperature, query_fold=fold, ref_fold=ref_fold)
            )
            self.knn_ref_ = ref.astype(np.float16)  # half precision halves the artifact; votes barely move
            self.knn_labels_ = ref_y.astype(np.uint8)
        timings["knn"] = time.perf_counter() - t0

        # ------------------------------------------------------------------ stacker, thresholds
        t0 = time.perf_counter()
        f_oof = np.hstack(blocks_oof).astype(np.float64)
        self.stack_mean_ = f_oof.mean(0)
        self.stack_scale_ = f_oof.std(0) + 1e-6
        if p.embedding_scorer == "raw":
            # Unit-length embeddings enter as they are: standardising their dimensions would amplify the
            # noisy ones (3 points of micro F1 lost on 16-shot SemEval samples).
            start = n_tags if p.use_tfidf else 0
            self.stack_mean_[start : start + emb.shape[1]] = 0.0
            self.stack_scale_[start : start + emb.shape[1]] = 1.0
        z = (f_oof - self.stack_mean_) / self.stack_scale_
        modelled_set = set(modelled)
        n_per_row = np.array([sum(t in modelled_set for t in ts) for ts in gold])
        # At most one tag per row (multi-class data, e.g. one complaint reason per tweet): one softmax
        # over the tags, plus a "no tag" class when some rows have none (softmax columns beyond the
        # tags are dropped when scoring); else one sigmoid per tag.
        at_most_one = bool((n_per_row <= 1).all()) and n_tags > 1
        self.stacker_ = "softmax" if p.stacker == "auto" and at_most_one else "sigmoid"
        if p.stacker != "auto":
            self.stacker_ = p.stacker
        fit_stack, link = (_fit_softmax, _softmax) if self.stacker_ == "softmax" else (_fit_logreg, expit)
        y_stack = y
        if self.stacker_ == "softmax" and (n_per_row == 0).any():
            y_stack = np.hstack([y, (n_per_row == 0)[:, None].astype(y.dtype)])
        prob_oof = np.zeros((n, n_tags), dtype=np.float32)
        for k in range(n_folds):
            tr, te = fold != k, fold == k
            w, b = fit_stack(z[tr], y_stack[tr], p.stack_c)
            prob_oof[te] = link(z[te] @ w + b)[:, :n_tags]
        self.stack_coef_, self.stack_intercept_ = fit_stack(z, y_stack, p.stack_c)
        timings["stack"] = time.perf_counter() - t0

        # At least one tag only for one-tag-per-row data: a sample drawn "16 per tag" has no empty rows
        # either, yet the texts it is applied to may well have none of the tags.
        self.min_tags_ = p.min_tags if p.min_tags is not None else int(bool((n_per_row >= 1).all()))
        self.max_tags_ = p.max_tags if p.max_tags is not None else (1 if at_most_one else None)
        self.thresholds_ = (
            _tune_thresholds(prob_oof, y)
            if p.threshold is None
            else np.full(n_tags, p.threshold, dtype=np.float32)
        )

        # ------------------------------------------------------------------ names, hierarchy, report
        self.modelled_ = modelled
        extra = (
            [a for t in modelled for a in rollup([t], hierarchy)[1:] if a not in modelled] if p.rollup else []
        )
        self.tag_names_ = modelled + list(dict.fromkeys(extra))
        self.parents_ = {t: hierarchy[t] for t in self.tag_names_ if t in hierarchy}
        self.embedder_id_ = embedder_id
        self.dim_ = int(emb.shape[1])
        # The model store's id format (pipeline.model_store.version_id); train_tagger passes its own.
        self.version_id_ = version or version_id(
            "tagger", "trained", {"fitted_ns": time.time_ns(), "rows": n}
        )
        self.cv_probabilities_ = prob_oof
        self.cv_folds_ = fold
        self.n_train_ = n
        self.label_counts_ = {t: int(counts.get(t, 0)) for t in order}
        full = np.zeros((n, len(self.tag_names_)), dtype=np.float32)
        full[:, :n_tags] = prob_oof
        predicted = self.decide(self._rolled(full))
        self.cv_report_ = tagging_report(gold, predicted, langs=langs, tag_names=self.tag_names_)
        timings["total"] = time.perf_counter() - t_start
        self.timings_ = {k: round(v, 2) for k, v in timings.items()}
        log.info(
            "tagger fitted on %d rows, %d tags in %.1fs: cross-validated micro F1 %.3f",
            n,
            n_tags,
            timings["total"],
            self.cv_report_["micro_f1"],
        )
        return self

    def _fit_few_shot(self, *args: Any, **kwargs: Any) -> EmbeddingTfidfTagger:
        """Few examples per tag: a logistic regression on the embedding with one fixed threshold, unless
        the full stack is clearly better in the internal cross-validation.

        With a handful of examples per tag, n-gram weights, neighbour votes and per-tag thresholds tuned
        on a few dozen rows add more noise than signal: on 16-shot samples the logistic recipe beats the
        stack by 6-7 points of micro F1 (SemEval 57.3 vs 50.7, airline 44.1 vs 38.3; bench/README.md,
        "Tagger"). The stack's internal estimate is optimistic (its thresholds are tuned on the same
        out-of-fold scores), so it must win by ``few_shot_margin``; where texts share templates and
        wording (the generated sample) n-grams do win by that much.
        """
        base = self.params.model_copy(update={"few_shot_below": 0})
        logistic = EmbeddingTfidfTagger(
            base.model_copy(
                update={
                    "use_tfidf": False,
                    "knn_k": 0,
                    "embedding_scorer": "raw",
                    "stack_c": base.few_shot_c,
                    "threshold": base.threshold or base.few_shot_threshold,
                }
            )
        ).fit(*args, **kwargs)
        stacked = EmbeddingTfidfTagger(base).fit(*args, **kwargs)
        f_log, f_stack = logistic.cv_report_["micro_f1"], stacked.cv_report_["micro_f1"]
        best = stacked if f_stack > f_log + base.few_shot_margin else logistic
        self.__dict__.update({k: v for k, v in best.__dict__.items() if k != "params"})
        self.recipe_ = "few-shot (logistic)" if best is logistic else "few-shot (stacked)"
        log.info(
            "few-shot: %s chosen (cross-validated micro F1 %.3f logistic vs %.3f stacked)",
            self.recipe_,
            f_log,
            f_stack,
        )
        return self

    # ----------------------------------------------------------------------------------------- using
    @property
    def needs_texts(self) -> bool:
        """Whether ``score`` needs the texts as well as their embeddings (the TF-IDF scorer does)."""
        if getattr(self, "encoder_", None) is not None:
            return True
        return bool(getattr(self, "params_", self.params).use_tfidf)

    @property
    def version(self) -> str:
        """Version id recorded on every tagged row (the model store's id, ``tagger-<kind>-<digest>``)."""
        self._check()
        return str(self.version_id_)

    def _check(self) -> None:
        if not hasattr(self, "stack_coef_"):
            raise NotFittedError(
                "EmbeddingTfidfTagger is not fitted: call fit(texts, embeddings, tags) or load a saved model "
                "(pipeline.tagging.load_tagger(DIR))."
            )

    def _rolled(self, probs: np.ndarray) -> np.ndarray:
        """Parents score at least as high as their best child (roll-up)."""
        if not self.params_.rollup or not self.parents_:
            return probs
        col = {t: j for j, t in enumerate(self.tag_names_)}
        out = probs.copy()
        # Deepest tags first, so that grandparents see their children's rolled-up scores.
        depth = {t: len(rollup([t], self.parents_)) for t in self.tag_names_}
        for t in sorted(self.tag_names_, key=lambda t: -depth[t]):
            parent = self.parents_.get(t)
            if parent in col:
                out[:, col[parent]] = np.maximum(out[:, col[parent]], out[:, col[t]])
        return out

    def base_scores(self, embeddings: np.ndarray, texts: Sequence[str] | None = None) -> np.ndarray:
        """The base scorers' outputs, standardised: the stacker's input (n, 2-3 x modelled tags).

        A tagger with a fine-tuned encoder of its own (``encoder_``, see :mod:`pipeline.embed.tunable`)
        embeds ``texts`` itself and ignores ``embeddings``.
        """
        self._check()
        emb = np.ascontiguousarray(self._own_vectors(embeddings, texts), dtype=np.float32)
        if emb.ndim != 2 or emb.shape[1] != self.dim_:
            raise FeedbackError(
                f"expected embeddings of dimension {self.dim_} (encoder {self.embedder_id_}), got shape "
                f"{emb.shape}: embed the texts with the encoder the tagger was trained on"
            )
        blocks = []
        if self.params_.use_tfidf:
            if texts is None:
                raise FeedbackError(
                    f"{self.name} reads the texts too (TF-IDF n-grams): call score(embeddings, texts=texts)"
                )
            texts = [str(t) for t in texts]
            if len(texts) != len(emb):
                raise FeedbackError(f"{len(texts)} texts for {len(emb)} embedding rows")
            blocks.append(_tfidf(self.vectorizers_, texts) @ self.svm_coef_ + self.svm_intercept_)
        if self.params_.embedding_scorer == "raw":
            blocks.append(emb)
        else:
            blocks.append(_with_bias(emb) @ self.ridge_coef_)
        if self.params_.knn_k > 0:
            ref = self.knn_ref_.astype(np.float32)
            blocks.append(
                _knn_vote(emb, ref, self.knn_labels_, self.params_.knn_k, self.params_.knn_temperature)
            )
        f = np.hstack(blocks).astype(np.float64)
        return (f - self.stack_mean_) / self.stack_scale_

    def _own_vectors(self, embeddings: np.ndarray | None, texts: Sequence[str] | None) -> np.ndarray:
        encoder = getattr(self, "encoder_", None)
        if encoder is None:
            if embeddings is None:
                raise FeedbackError(f"{self.name} needs the embeddings of the texts")
            return np.asarray(embeddings)
        if texts is None:
            raise FeedbackError(
                "this tagger fine-tuned its own encoder and embeds the texts itself: pass texts=..."
            )
        texts = [str(t) for t in texts]
        if embeddings is not None and len(embeddings) != len(texts):
            raise FeedbackError(f"{len(texts)} texts for {len(embeddings)} embedding rows")
        if not texts:
            return np.zeros((0, self.dim_), dtype=np.float32)
        return np.asarray(encoder.encode(texts), dtype=np.float32)

    def score(self, embeddings: np.ndarray | None, texts: Sequence[str] | None = None) -> np.ndarray:
        """Calibrated tag probabilities, shape (n_texts, n_tags), in ``tag_names_`` order."""
        self._check()
        n = len(texts) if embeddings is None and texts is not None else len(embeddings)  # type: ignore[arg-type]
        out = np.zeros((n, len(self.tag_names_)), dtype=np.float32)
        if n == 0:
            return out
        z = self.base_scores(embeddings, texts)
        link = _softmax if getattr(self, "stacker_", "sigmoid") == "softmax" else expit
        n_mod = len(self.modelled_)  # a softmax may carry a trailing "no tag" column: dropped
        out[:, :n_mod] = link(z @ self.stack_coef_ + self.stack_intercept_)[:, :n_mod]
        rules = getattr(self, "rules_", None)
        if rules:  # the codeframe's keyword rules: a hit is a strong vote (pipeline.tagging.rules)
            out = rules.vote(out, texts)
        return self._rolled(out)

    def decide(self, scores: np.ndarray) -> list[list[str]]:
        """Tag lists from a score matrix: tags at or above their threshold, best first, bounded by
        ``min_tags_``/``max_tags_``, plus the parents of the tags kept."""
        self._check()
        scores = np.asarray(scores, dtype=np.float32)
        n_mod = len(self.modelled_)
        result: list[list[str]] = []
        for row in scores:
            own = row[:n_mod]
            order = np.argsort(-own, kind="stable")
            keep = [j for j in order if own[j] >= self.thresholds_[j]]
            if self.max_tags_ is not None:
                keep = keep[: self.max_tags_]
            for j in order:
                if len(keep) >= self.min_tags_:
                    break
                if j not in keep:
                    keep.append(j)
            chosen = [self.modelled_[j] for j in keep]
            if self.params_.rollup and self.parents_:
                chosen = rollup(chosen, self.parents_)
            result.append(chosen)
        return result

    def predict(
        self, embeddings: np.ndarray | None, texts: Sequence[str] | None = None
    ) -> tuple[list[list[str]], np.ndarray]:
        """Tags and the score matrix for each row."""
        scores = self.score(embeddings, texts)
        return self.decide(scores), scores

    def parent_of(self, tag: str) -> str | None:
        """The parent of a tag in the model's hierarchy (None for top-level tags)."""
        return self.parents_.get(tag) if hasattr(self, "parents_") else None

    # ----------------------------------------------------------------------------------------- files
    _ARRAYS = (
        "ridge_coef_",
        "stack_coef_",
        "stack_intercept_",
        "stack_mean_",
        "stack_scale_",
        "thresholds_",
    )

    def save(self, path: str | Path) -> Path:
        """Write the fitted model as plain files (``model.json`` + ``.npy`` arrays) into ``path``."""
        self._check()
        out = Path(path)
        out.mkdir(parents=True, exist_ok=True)
        arrays = [a for a in self._ARRAYS if a != "ridge_coef_" or self.params_.embedding_scorer == "ridge"]
        if self.params_.use_tfidf:
            arrays += ["svm_coef_", "svm_intercept_"]
            for i, v in enumerate(self.vectorizers_):
                vocab = {k: int(j) for k, j in v.vocabulary_.items()}
                (out / f"tfidf_{i}_vocabulary.json").write_text(
                    json.dumps(vocab, ensure_ascii=False), encoding="utf-8"
                )
                np.save(out / f"tfidf_{i}_idf.npy", v.idf_.astype(np.float32))
        if self.params_.knn_k > 0:
            arrays += ["knn_ref_", "knn_labels_"]
        for name in arrays:
            np.save(out / f"{name.rstrip('_')}.npy", getattr(self, name))
        state = {
            "component": self.name,
            "params": self.params_.model_dump(mode="json"),
            "recipe": self.recipe_,
            "stacker": self.stacker_,
            "tag_names": self.tag_names_,
            "modelled": self.modelled_,
            "parents": self.parents_,
            "min_tags": self.min_tags_,
            "max_tags": self.max_tags_,
            "embedder_id": self.embedder_id_,
            "dim": self.dim_,
            "version_id": self.version_id_,
            "n_train": self.n_train_,
            "label_counts": self.label_counts_,
            "arrays": arrays,
        }
        if getattr(self, "rules_", None):
            state["rules"] = self.rules_.to_dict()
        encoder = getattr(self, "encoder_", None)
        if encoder is not None:
            from pipeline.embed.tunable import write_spec

            encoder.save(out / "encoder")
            write_spec(out / "encoder", self.fine_tune_)
            state["fine_tuned"] = self.fine_tune_.as_dict()
        (out / "model.json").write_text(json.dumps(state, indent=2, ensure_ascii=False), encoding="utf-8")
        return out

    @classmethod
    def load(cls, path: str | Path) -> EmbeddingTfidfTagger:
        """Read a model written by :meth:`save`."""
        src = Path(path)
        file = src / "model.json"
        if not file.exists():
            raise FeedbackError(
                f"{src} holds no tagger (model.json missing): train one with `feedback tagger train`"
            )
        state = json.loads(file.read_text(encoding="utf-8"))
        model = cls(TaggerParams.model_validate(state["params"]))
        model.params_ = model.params
        model.recipe_ = state.get("recipe", "full")
        model.stacker_ = state.get("stacker", "sigmoid")
        for name in state["arrays"]:
            setattr(model, name, np.load(src / f"{name.rstrip('_')}.npy"))
        if model.params.use_tfidf:
            vecs = _vectorizers(model.params)
            for i, v in enumerate(vecs):
                v.vocabulary_ = json.loads((src / f"tfidf_{i}_vocabulary.json").read_text(encoding="utf-8"))
                v.idf_ = np.load(src / f"tfidf_{i}_idf.npy")
            model.vectorizers_ = vecs
        model.tag_names_ = list(state["tag_names"])
        model.modelled_ = list(state["modelled"])
        model.parents_ = dict(state["parents"])
        model.min_tags_ = int(state["min_tags"])
        model.max_tags_ = state["max_tags"]
        model.embedder_id_ = state["embedder_id"]
        model.dim_ = int(state["dim"])
        model.version_id_ = state["version_id"]
        model.n_train_ = int(state["n_train"])
        model.label_counts_ = dict(state["label_counts"])
        if state.get("rules"):
            from pipeline.tagging.rules import KeywordRules

            model.rules_ = KeywordRules.from_dict(state["rules"])
        if state.get("fine_tuned"):
            from pipeline.embed.tunable import FineTuneReport, load_tunable

            model.fine_tune_ = FineTuneReport(**state["fine_tuned"])
            model.encoder_ = load_tunable(src / "encoder", state["fine_tuned"])
        return model
