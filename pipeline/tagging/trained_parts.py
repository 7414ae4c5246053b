"""The parts of the trained tagger (:mod:`pipeline.tagging.trained`): its parameters (:class:`TaggerParams`,
checked when built), the n-gram SVM, the ridge and nearest-neighbour members on the vectors, the stacking
logistic regressions, threshold tuning and the cross-validation folds."""

from __future__ import annotations

import logging
import warnings
from collections.abc import Sequence
from typing import Any, Literal

import numpy as np
import scipy.sparse as sp
from pydantic import BaseModel, ConfigDict, Field, field_validator
from scipy.optimize import minimize
from scipy.special import expit

log = logging.getLogger(__name__)

_GRID = np.round(np.arange(0.02, 0.981, 0.02), 4)


class TaggerParams(BaseModel):
    """Hyper-parameters of :class:`EmbeddingTfidfTagger` (validated on creation).

    The defaults were chosen by cross-validation on the SemEval-2016 restaurant sentences (six languages)
    and the airline complaint tweets; see bench/README.md ("Tagger").
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    cv: int = Field(5, ge=2, le=20, description="folds of the internal cross-validation")
    use_tfidf: bool = Field(True, description="the TF-IDF n-gram scorer (needs the texts at predict time)")
    word_ngrams: tuple[int, int] = (1, 2)
    char_ngrams: tuple[int, int] = (2, 5)
    min_df: int = Field(2, ge=1)
    max_features: int | None = Field(None, ge=100, description="cap per vectorizer (None: no cap)")
    svm_c: float = Field(0.3, gt=0)
    ridge_alpha: float = Field(1.0, gt=0)
    embedding_scorer: Literal["ridge", "raw"] = Field(
        "ridge",
        description="ridge: ridge-regression scores of the embedding feed the stacker; raw: the "
        "embedding itself does (the stacker is then a logistic regression on the embedding)",
    )
    threshold: float | None = Field(
        None, gt=0, lt=1, description="one fixed decision threshold for every tag (None: tuned per tag)"
    )
    knn_k: int = Field(30, ge=0, description="neighbours of the kNN vote; 0 switches it off")
    knn_temperature: float = Field(0.05, gt=0)
    stack_c: float = Field(1.0, gt=0)
    stacker: Literal["auto", "sigmoid", "softmax"] = Field(
        "auto", description="auto: softmax when every training row has exactly one tag, else sigmoid per tag"
    )
    min_tags: int | None = Field(None, ge=0, description="None: 1 when every row has exactly one tag")
    max_tags: int | None = Field(None, ge=1, description="None: 1 when every row has exactly one tag")
    rollup: bool = Field(True, description="labels and predictions roll up to parent tags")
    few_shot_below: int = Field(
        30, ge=0, description="median examples per tag below which the few-shot recipe is used"
    )
    few_shot_c: float = Field(3.0, gt=0, description="inverse L2 penalty of the few-shot logistic recipe")
    few_shot_margin: float = Field(
        0.05, ge=0, description="internal micro F1 by which the stack must beat the few-shot logistic recipe"
    )
    few_shot_threshold: float = Field(
        0.3, gt=0, lt=1, description="fixed decision threshold of the few-shot logistic recipe"
    )
    seed: int = 0

    @field_validator("word_ngrams", "char_ngrams")
    @classmethod
    def _ngram_range(cls, value: tuple[int, int]) -> tuple[int, int]:
        if value[0] < 1 or value[1] < value[0]:
            raise ValueError(f"an n-gram range is (min, max) with 1 <= min <= max, got {value}")
        return value


# ---------------------------------------------------------------------------------------------------------
# Base scorers (plain functions over arrays; no state beyond what they return)
# ---------------------------------------------------------------------------------------------------------


def _vectorizers(params: TaggerParams) -> list[Any]:
    from sklearn.feature_extraction.text import TfidfVectorizer

    common = dict(sublinear_tf=True, min_df=params.min_df, max_features=params.max_features, dtype=np.float32)
    return [
        TfidfVectorizer(analyzer="word", ngram_range=params.word_ngrams, **common),
        TfidfVectorizer(analyzer="char_wb", ngram_range=params.char_ngrams, **common),
    ]


def _tfidf(vectorizers: Sequence[Any], texts: Sequence[str]) -> sp.csr_matrix:
    from pipeline.ngrams import tfidf_transform

    return sp.hstack([tfidf_transform(v, texts) for v in vectorizers]).tocsr()


def _fit_svm(x: sp.csr_matrix, y: np.ndarray, c: float) -> tuple[np.ndarray, np.ndarray]:
    """One linear SVM per tag; returns (coef (d, L), intercept (L,))."""
    from sklearn.exceptions import ConvergenceWarning
    from sklearn.svm import LinearSVC

    coef = np.zeros((x.shape[1], y.shape[1]), dtype=np.float32)
    intercept = np.zeros(y.shape[1], dtype=np.float32)
    for j in range(y.shape[1]):
        col = y[:, j]
        if col.min() == col.max():  # one class only (a tag absent from this fold): a constant score
            intercept[j] = 1.0 if col[0] else -1.0
            continue
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", ConvergenceWarning)
            m = LinearSVC(C=c, max_iter=2000).fit(x, col)
        coef[:, j] = m.coef_[0]
        intercept[j] = m.intercept_[0]
    return coef, intercept


def _with_bias(e: np.ndarray) -> np.ndarray:
    return np.hstack([e, np.ones((len(e), 1), dtype=e.dtype)])


def _one_blas_thread() -> Any:
    """Small linear-algebra steps run on one BLAS thread: on a busy machine, waking a thread pool for a
    512 x 512 solve or the L-BFGS updates costs far more than the arithmetic (seconds instead of ms)."""
    from threadpoolctl import threadpool_limits

    return threadpool_limits(limits=1, user_api="blas")


def _ridge_solve(gram: np.ndarray, xy: np.ndarray, alpha: float) -> np.ndarray:
    with _one_blas_thread():
        return np.linalg.solve(gram + alpha * np.eye(len(gram), dtype=gram.dtype), xy)


def _knn_vote(
    queries: np.ndarray,
    ref: np.ndarray,
    ref_y: np.ndarray,
    k: int,
    temperature: float,
    query_fold: np.ndarray | None = None,
    ref_fold: np.ndarray | None = None,
    chunk: int = 1024,
) -> np.ndarray:
    """Similarity-weighted label vote of each query's ``k`` nearest references.

    With folds, a query never sees references of its own fold (out-of-fold scores for the stacker).
    """
    out = np.zeros((len(queries), ref_y.shape[1]), dtype=np.float32)
    if len(ref) == 0 or k == 0:
        return out
    ref_y = ref_y.astype(np.float32)
    for s in range(0, len(queries), chunk):
        sims = queries[s : s + chunk] @ ref.T
        if query_fold is not None and ref_fold is not None:
            sims[query_fold[s : s + chunk, None] == ref_fold[None, :]] = -np.inf
        kk = min(k, sims.shape[1])
        idx = np.argpartition(-sims, kk - 1, axis=1)[:, :kk]
        top = np.take_along_axis(sims, idx, axis=1)
        top = np.where(np.isfinite(top), top, -1e9)
        w = np.exp((top - top.max(axis=1, keepdims=True)) / temperature)
        w /= w.sum(axis=1, keepdims=True)
        out[s : s + chunk] = np.einsum("ik,ikl->il", w, ref_y[idx])
    return out


def _fit_logreg(f: np.ndarray, y: np.ndarray, c: float) -> tuple[np.ndarray, np.ndarray]:
    """Independent L2 logistic regressions for every column of ``y`` at once (L-BFGS on the joint,
    separable objective); returns (coef (d, L), intercept (L,)). Constant columns get a constant."""
    n, d = f.shape
    n_tags = y.shape[1]
    coef = np.zeros((d, n_tags))
    intercept = np.zeros(n_tags)
    rate = (y.sum(0) + 0.5) / (n + 1.0)
    varying = np.flatnonzero(y.min(0) != y.max(0))
    intercept[:] = np.log(rate / (1 - rate))
    if len(varying) == 0:
        return coef, intercept
    yv = y[:, varying].astype(np.float64)
    m = len(varying)

    def objective(theta: np.ndarray) -> tuple[float, np.ndarray]:
        w, b = theta[: d * m].reshape(d, m), theta[d * m :]
        z = f @ w + b
        loss = np.logaddexp(0.0, np.where(yv > 0, -z, z)).sum()
        g = expit(z) - yv
        grad_w = c * (f.T @ g) + w
        return c * loss + 0.5 * float((w * w).sum()), np.concatenate([grad_w.ravel(), c * g.sum(0)])

    theta0 = np.concatenate([np.zeros(d * m), intercept[varying]])
    with _one_blas_thread():
        res = minimize(objective, theta0, jac=True, method="L-BFGS-B", options={"maxiter": 500})
    coef[:, varying] = res.x[: d * m].reshape(d, m)
    intercept[varying] = res.x[d * m :]
    return coef, intercept


def _fit_softmax(f: np.ndarray, y: np.ndarray, c: float) -> tuple[np.ndarray, np.ndarray]:
    """Multinomial L2 logistic regression for one-tag-per-row data; returns (coef (d, L), intercept (L,))."""
    n, d = f.shape
    n_tags = y.shape[1]
    yf = y.astype(np.float64)

    def objective(theta: np.ndarray) -> tuple[float, np.ndarray]:
        w, b = theta[: d * n_tags].reshape(d, n_tags), theta[d * n_tags :]
        z = f @ w + b
        z -= z.max(axis=1, keepdims=True)
        log_p = z - np.log(np.exp(z).sum(axis=1, keepdims=True))
        g = np.exp(log_p) - yf
        loss = -float((yf * log_p).sum())
        return c * loss + 0.5 * float((w * w).sum()), np.concatenate(
            [(c * (f.T @ g) + w).ravel(), c * g.sum(0)]
        )

    prior = np.log((y.sum(0) + 0.5) / (n + 0.5 * n_tags))
    theta0 = np.concatenate([np.zeros(d * n_tags), prior])
    with _one_blas_thread():
        res = minimize(objective, theta0, jac=True, method="L-BFGS-B", options={"maxiter": 500})
    return res.x[: d * n_tags].reshape(d, n_tags), res.x[d * n_tags :]


def _softmax(z: np.ndarray) -> np.ndarray:
    z = z - z.max(axis=1, keepdims=True)
    e = np.exp(z)
    return e / e.sum(axis=1, keepdims=True)


def _tune_thresholds(p: np.ndarray, y: np.ndarray, rounds: int = 2) -> np.ndarray:
    """Per-tag thresholds that maximise micro F1 on (out-of-fold) probabilities.

    Starts from each tag's own best-F1 threshold, then moves one tag at a time to the threshold that
    maximises the micro F1 of all tags together (coordinate ascent; the micro F1 never decreases).
    """
    yb = y.astype(bool)
    n_tags = y.shape[1]
    # tp/fp of each tag at each grid threshold: (G, L)
    above = p[None, :, :] >= _GRID[:, None, None]
    tp = (above & yb[None]).sum(1).astype(float)
    fp = (above & ~yb[None]).sum(1).astype(float)
    pos = yb.sum(0).astype(float)
    f1 = np.where(tp > 0, 2 * tp / np.maximum(2 * tp + fp + (pos - tp), 1), 0.0)
    k = f1.argmax(0)
    for _ in range(rounds):
        for j in range(n_tags):
            others = np.arange(n_tags) != j
            tp_o = tp[k[others], np.flatnonzero(others)].sum()
            fp_o = fp[k[others], np.flatnonzero(others)].sum()
            fn_o = (pos[others] - tp[k[others], np.flatnonzero(others)]).sum()
            a, b, c = tp_o + tp[:, j], fp_o + fp[:, j], fn_o + pos[j] - tp[:, j]
            k[j] = int(np.argmax(2 * a / np.maximum(2 * a + b + c, 1)))
    return _GRID[k].astype(np.float32)


def _folds(y: np.ndarray, groups: Sequence[str] | None, n_splits: int, seed: int) -> tuple[np.ndarray, int]:
    """A fold number per row: stratified on each row's rarest tag, grouped when groups are given."""
    from sklearn.model_selection import StratifiedGroupKFold, StratifiedKFold

    n = len(y)
    counts = y.sum(0)
    rarest = np.where(
        y.any(1), np.argmin(np.where(y > 0, counts[None, :], np.iinfo(np.int64).max), axis=1), -1
    )
    # Strata with fewer members than folds cannot be spread: merge them into one "rare" stratum.
    values, inverse, sizes = np.unique(rarest, return_inverse=True, return_counts=True)
    strata = np.where(sizes[inverse] >= n_splits, inverse, -2)
    n_splits = max(2, min(n_splits, n if groups is None else len(set(groups))))
    fold = np.zeros(n, dtype=int)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)  # "least populated class" notices
        if groups is not None:
            splitter = StratifiedGroupKFold(n_splits=n_splits, shuffle=True, random_state=seed)
            splits = splitter.split(np.zeros(n), strata, groups)
        else:
            ok = np.unique(strata, return_counts=True)[1].min() >= n_splits
            splitter = StratifiedKFold(n_splits=n_splits, shuffle=True, random_state=seed)
            splits = splitter.split(np.zeros(n), strata if ok else np.zeros(n))
        for k, (_, test) in enumerate(splits):
            fold[test] = k
    return fold, n_splits
