"""The polarity ensemble of the supervised sentiment model: a logistic regression on the vectors, one on
word and character n-grams, one on both, stacked; plus macro F1 and the per-class bias tuning."""

from __future__ import annotations

import json
import logging
import re
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from pipeline.errors import ConfigError, NotFittedError, SchemaError

log = logging.getLogger(__name__)

MEMBERS = ("embedding", "text", "fused", "stack")
"""Members of the ensemble: LR on embeddings, LR on TF-IDF n-grams, LR on both, and the trained tagger's
stack (:class:`pipeline.tagging.EmbeddingTfidfTagger` with the classes as tags)."""

DEFAULT_MEMBERS = ("embedding", "fused", "stack")
"""The members used unless told otherwise (see bench/README.md, "Sentiment")."""

_STACK_MIN_ROWS = 10
"""Fewer training rows than this and the stack (which cross-validates itself) is left out."""

_URL = re.compile(r"https?://\S+|www\.\S+")
_HANDLE = re.compile(r"@\w+")
_DIGITS = re.compile(r"\d+")


def normalise_for_ngrams(text: str) -> str:
    """Lower-case, and fold URLs, @handles and digits, so n-grams generalise across answers."""
    text = _URL.sub(" url ", str(text))
    text = _HANDLE.sub(" @user ", text)
    return _DIGITS.sub("0", text).lower()


class TextFeatures:
    """Word (1-2) and character (2-5, within word boundaries) TF-IDF n-grams, sublinear tf.

    Args:
        max_char_features: Cap on the character n-gram vocabulary (memory and speed).
        min_df: Minimum document frequency of an n-gram.
    """

    def __init__(self, max_char_features: int = 100_000, min_df: int = 2) -> None:
        self.max_char_features = max_char_features
        self.min_df = min_df

    def fit_transform(self, texts: Sequence[str]) -> Any:
        """Fit the vocabularies on ``texts`` and return their sparse features."""
        docs = [normalise_for_ngrams(t) for t in texts]
        min_df = self.min_df if len(docs) >= 20 * self.min_df else 1
        self.word_, self.char_ = self._vectorizers(min_df)
        from scipy.sparse import hstack

        return hstack([self.word_.fit_transform(docs), self.char_.fit_transform(docs)]).tocsr()

    def _vectorizers(self, min_df: int = 1) -> tuple[Any, Any]:
        from sklearn.feature_extraction.text import TfidfVectorizer

        word = TfidfVectorizer(
            ngram_range=(1, 2), min_df=min_df, sublinear_tf=True, token_pattern=r"(?u)[\w@']+|[^\w\s]"
        )
        char = TfidfVectorizer(
            analyzer="char_wb",
            ngram_range=(2, 5),
            min_df=min_df,
            sublinear_tf=True,
            max_features=self.max_char_features,
        )
        return word, char

    def save(self, out: Path, prefix: str) -> dict[str, Any]:
        """Write the vocabularies (JSON) and idf weights (.npy); returns what :meth:`load` needs."""
        for name, vec in (("word", self.word_), ("char", self.char_)):
            vocab = {k: int(j) for k, j in vec.vocabulary_.items()}
            (out / f"{prefix}_{name}_vocabulary.json").write_text(
                json.dumps(vocab, ensure_ascii=False), "utf-8"
            )
            np.save(out / f"{prefix}_{name}_idf.npy", vec.idf_)
        return {"max_char_features": self.max_char_features, "min_df": self.min_df}

    @classmethod
    def load(cls, folder: Path, prefix: str, state: dict[str, Any]) -> TextFeatures:
        """Rebuild fitted features from :meth:`save`'s files."""
        features = cls(int(state["max_char_features"]), int(state["min_df"]))
        features.word_, features.char_ = features._vectorizers()
        for name, vec in (("word", features.word_), ("char", features.char_)):
            vec.vocabulary_ = json.loads((folder / f"{prefix}_{name}_vocabulary.json").read_text("utf-8"))
            vec.idf_ = np.load(folder / f"{prefix}_{name}_idf.npy", allow_pickle=False)
        return features

    def transform(self, texts: Sequence[str]) -> Any:
        """Sparse features of ``texts`` with the fitted vocabularies."""
        from scipy.sparse import hstack

        from pipeline.ngrams import tfidf_transform

        docs = [normalise_for_ngrams(t) for t in texts]
        return hstack([tfidf_transform(self.word_, docs), tfidf_transform(self.char_, docs)]).tocsr()


class PolarityEnsemble:
    """Average of logistic regressions over embeddings, TF-IDF n-grams and both, and of the tagger's
    stack (one "head").

    Args:
        members: Which of :data:`MEMBERS` to use; the LR members on text are skipped when no texts are
            given, and the stack then reads the embeddings alone.
        C: Inverse regularisation of the embedding member.
        text_C: Of the TF-IDF member.
        fused_C: Of the member on both.
        max_char_features: See :class:`TextFeatures`.
        max_iter: Iterations of the solver.
    """

    def __init__(
        self,
        members: Sequence[str] = DEFAULT_MEMBERS,
        C: float = 1.0,
        text_C: float = 8.0,
        fused_C: float = 4.0,
        max_char_features: int = 100_000,
        max_iter: int = 2000,
    ) -> None:
        self.members = tuple(members)
        self.C = C
        self.text_C = text_C
        self.fused_C = fused_C
        self.max_char_features = max_char_features
        self.max_iter = max_iter

    def _design(self, member: str, emb: np.ndarray, sparse: Any, extra: np.ndarray | None) -> Any:
        from scipy.sparse import csr_matrix, hstack

        dense = emb if extra is None else np.hstack([emb, extra])
        if member in ("embedding", "stack"):
            return dense
        if member == "text":
            return sparse if extra is None else hstack([sparse, csr_matrix(extra)]).tocsr()
        return hstack([sparse, csr_matrix(dense)]).tocsr()

    def fit(
        self,
        emb: np.ndarray,
        y: np.ndarray,
        texts: Sequence[str] | None = None,
        extra: np.ndarray | None = None,
        groups: Sequence[object] | None = None,
    ) -> PolarityEnsemble:
        """Fit every member on the same rows; ``y`` holds class names.

        Args:
            emb: (n, dim) embeddings.
            y: Class name per row.
            texts: The texts (TF-IDF members), or None.
            extra: Optional dense features appended to the embedding (e.g. a tag one-hot).
            groups: Optional group per row, kept together by the stack's internal cross-validation.
        """
        from sklearn.linear_model import LogisticRegression
        from threadpoolctl import threadpool_limits

        bad = [m for m in self.members if m not in MEMBERS]
        if bad:
            raise ConfigError(f"unknown ensemble member(s) {bad}; valid: {list(MEMBERS)}")
        use = [m for m in self.members if m in ("embedding", "stack") or texts is not None]
        if "stack" in use and len(y) < _STACK_MIN_ROWS:
            log.info("stack member skipped: %d rows, it needs %d", len(y), _STACK_MIN_ROWS)
            use.remove("stack")
        use = use or ["embedding"]
        self.classes_ = np.array(sorted(set(np.asarray(y, dtype=object).tolist())), dtype=object)
        wants_ngrams = any(m in ("text", "fused") for m in use)
        self.text_ = TextFeatures(self.max_char_features) if wants_ngrams else None
        sparse = self.text_.fit_transform(texts) if self.text_ is not None and texts is not None else None
        c_of = {"embedding": self.C, "text": self.text_C, "fused": self.fused_C}
        self.models_: dict[str, Any] = {}
        # One BLAS/OpenMP thread: these fits are small, and threads fighting over shared cores made them
        # 10-20x slower in measurements on a busy machine.
        with threadpool_limits(limits=1):
            for member in use:
                design = self._design(member, emb, sparse, extra)
                if member == "stack":
                    self.models_[member] = self._fit_stack(design, y, texts, groups)
                    continue
                lr = LogisticRegression(C=c_of[member], max_iter=self.max_iter).fit(design, y)
                self.models_[member] = LinearProba(lr.coef_, lr.intercept_, lr.classes_)
        return self

    def save(self, out: Path, prefix: str) -> dict[str, Any]:
        """Write the members as plain files (arrays, JSON; the stack in the tagger's format)."""
        members: dict[str, Any] = {}
        for member, model in self.models_.items():
            if member == "stack":
                sub = "stack" if prefix == "head" else f"{prefix}_stack"
                model.save(out / sub)
                members[member] = {"kind": "stack", "folder": sub}
            else:
                np.save(out / f"{prefix}_{member}_coef.npy", model.coef_)
                np.save(out / f"{prefix}_{member}_intercept.npy", model.intercept_)
                members[member] = {"kind": "linear", "classes": [str(c) for c in model.classes_]}
        return {
            "params": {
                "members": list(self.members),
                "C": self.C,
                "text_C": self.text_C,
                "fused_C": self.fused_C,
                "max_char_features": self.max_char_features,
                "max_iter": self.max_iter,
            },
            "classes": [str(c) for c in self.classes_],
            "text": None if self.text_ is None else self.text_.save(out, f"{prefix}_text"),
            "models": members,
        }

    @classmethod
    def load(cls, folder: Path, prefix: str, state: dict[str, Any]) -> PolarityEnsemble:
        """Rebuild a fitted ensemble from :meth:`save`'s files."""
        from pipeline.tagging.trained import EmbeddingTfidfTagger

        head = cls(**state["params"])
        head.classes_ = np.array(state["classes"], dtype=object)
        text = state.get("text")
        head.text_ = None if text is None else TextFeatures.load(folder, f"{prefix}_text", text)
        head.models_ = {}
        for member, spec in state["models"].items():
            if spec["kind"] == "stack":
                sub = folder / spec["folder"]
                if not (sub / "model.json").exists():
                    raise ConfigError(f"{sub}/ is missing: the model's stack member was not saved with it.")
                head.models_[member] = EmbeddingTfidfTagger.load(sub)
            else:
                head.models_[member] = LinearProba(
                    np.load(folder / f"{prefix}_{member}_coef.npy", allow_pickle=False),
                    np.load(folder / f"{prefix}_{member}_intercept.npy", allow_pickle=False),
                    np.array(spec["classes"], dtype=object),
                )
        return head

    def _fit_stack(
        self, dense: np.ndarray, y: np.ndarray, texts: Sequence[str] | None, groups: Sequence[object] | None
    ) -> Any:
        """The tagger's stack with one tag per row (its softmax stacker gives class probabilities)."""
        from pipeline.tagging.trained import EmbeddingTfidfTagger

        tagger = EmbeddingTfidfTagger(use_tfidf=texts is not None)
        tagger.fit(
            list(texts) if texts is not None else [""] * len(dense),
            dense,
            [[str(v)] for v in y],
            groups=None if groups is None else [str(g) for g in groups],
            tag_names=[str(c) for c in self.classes_],
            embedder_id="sentiment",
            version="member",
        )
        # Training-only state (out-of-fold scores and their report) would only bloat the saved model.
        for name in ("cv_probabilities_", "cv_folds_", "cv_report_"):
            tagger.__dict__.pop(name, None)
        return tagger

    @property
    def needs_texts(self) -> bool:
        """True when some member reads the texts (TF-IDF n-grams)."""
        if not hasattr(self, "models_"):
            raise NotFittedError("PolarityEnsemble is not fitted: call fit first.")
        stack = self.models_.get("stack")
        return self.text_ is not None or (stack is not None and stack.needs_texts)

    def predict_proba(
        self, emb: np.ndarray, texts: Sequence[str] | None = None, extra: np.ndarray | None = None
    ) -> np.ndarray:
        """Averaged class probabilities, columns in ``classes_`` order."""
        if not hasattr(self, "models_"):
            raise NotFittedError("PolarityEnsemble is not fitted: call fit first.")
        if len(emb) == 0:
            return np.zeros((0, len(self.classes_)))
        return np.mean(list(self.member_proba(emb, texts, extra).values()), axis=0)

    def member_proba(
        self, emb: np.ndarray, texts: Sequence[str] | None = None, extra: np.ndarray | None = None
    ) -> dict[str, np.ndarray]:
        """Each member's class probabilities (columns in ``classes_`` order), by member name."""
        if not hasattr(self, "models_"):
            raise NotFittedError("PolarityEnsemble is not fitted: call fit first.")
        if self.needs_texts and texts is None:
            raise SchemaError(
                "this sentiment model uses the texts as well as the embeddings: pass texts=[...] "
                "(the same texts, in the same order, as the embedding rows)."
            )
        emb = np.asarray(emb, dtype=np.float32)
        sparse = self.text_.transform(texts) if self.text_ is not None and texts is not None else None
        out: dict[str, np.ndarray] = {}
        for member, model in self.models_.items():
            if member == "fused":
                # Its design is [n-grams | embedding]: scored block by block, without building it.
                dense = emb if extra is None else np.hstack([emb, extra])
                out[member] = _proba_of_blocks(model, sparse, dense)
                continue
            design = self._design(member, emb, sparse, extra)
            if member == "stack":
                # The tagger's columns are in the order of the tag names given to it: ``classes_``.
                out[member] = model.score(design, texts if model.needs_texts else None).astype(float)
            else:
                out[member] = model.predict_proba(design)
        return out


class LinearProba:
    """A fitted logistic regression reduced to its arrays: ``predict_proba`` as scikit-learn's (softmax of
    the decision function; the logistic of its one column for two classes). Saved as plain arrays, so a
    model folder holds no pickle.
    """

    def __init__(self, coef: np.ndarray, intercept: np.ndarray, classes: np.ndarray) -> None:
        self.coef_ = np.asarray(coef, dtype=np.float64)
        self.intercept_ = np.asarray(intercept, dtype=np.float64)
        self.classes_ = np.asarray(classes, dtype=object)

    def predict_proba(self, x: Any) -> np.ndarray:
        """Class probabilities, columns in ``classes_`` order."""
        from scipy.special import expit, softmax

        z = np.asarray(x @ self.coef_.T) + self.intercept_
        if z.shape[1] == 1:
            p = expit(z[:, 0])
            return np.column_stack([1.0 - p, p])
        return softmax(z, axis=1)


def _proba_of_blocks(lr: Any, sparse: Any, dense: np.ndarray) -> np.ndarray:
    """``lr.predict_proba(hstack([sparse, dense]))`` of a fitted ``LogisticRegression``, computed as the
    sum of each block's share of the decision function (stacking a dense block into a sparse matrix costs
    more than the model itself)."""
    from scipy.special import expit, softmax

    k = sparse.shape[1]
    coef = lr.coef_
    z = np.asarray(sparse @ coef[:, :k].T) + dense @ coef[:, k:].T + lr.intercept_
    if z.shape[1] == 1:  # two classes: one decision column, for the second class
        p = expit(z[:, 0])
        return np.column_stack([1.0 - p, p])
    return softmax(z, axis=1)


def macro_f1(y_true: np.ndarray, y_pred: np.ndarray, n_classes: int) -> float:
    """Macro F1 over the classes 0..n_classes-1 from integer labels (fast, no sklearn)."""
    cm = np.bincount(y_true * n_classes + y_pred, minlength=n_classes * n_classes).reshape(n_classes, -1)
    tp = np.diag(cm).astype(float)
    denom = cm.sum(0) + cm.sum(1)
    f1 = np.divide(2 * tp, denom, out=np.zeros(n_classes), where=denom > 0)
    return float(f1[cm.sum(1) > 0].mean())


def tune_bias(proba: np.ndarray, y_idx: np.ndarray, grid: np.ndarray | None = None) -> np.ndarray:
    """Per-class log-odds offsets (the first class fixed at 0) that maximise macro F1."""
    k = proba.shape[1]
    bias = np.zeros(k)
    if k < 2:
        return bias
    grid = np.round(np.arange(-1.5, 1.51, 0.1), 2) if grid is None else grid
    logp = np.log(np.clip(proba, 1e-12, 1.0))
    best = macro_f1(y_idx, logp.argmax(1), k)
    # Coordinate ascent, two passes: exhaustive grids over 2 free classes cost 31^2 evaluations anyway.
    for _ in range(2):
        for j in range(1, k):
            for value in grid:
                trial = bias.copy()
                trial[j] = value
                f1 = macro_f1(y_idx, (logp + trial).argmax(1), k)
                if f1 > best + 1e-9:
                    best, bias = f1, trial
    return bias
