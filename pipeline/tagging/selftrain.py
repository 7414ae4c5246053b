"""Self-training on the unlabelled window: the zero-shot tagger labels the answers it is surest of, a
trained tagger learns from them (and from the taxonomy's example phrases), then tags every answer.

The classic zero-shot-then-self-train recipe (Gera et al., 2022, "Zero-Shot Text Classification with
Self-Training"): the student (:class:`pipeline.tagging.EmbeddingTfidfTagger`) sees the texts' words as well
as their vectors, so it learns the vocabulary of a team's own answers that the taxonomy's few phrases never
named, and it generalises past the teacher's mistakes on the answers it was not shown. On taxonomies
written from label names alone it gains 4-10 points of micro F1 over the zero-shot tagger
(bench/README.md, "Codeframe").

How the teacher's confident decisions are chosen (measured on the dev halves of bench/bench_codeframe.py):
each answer's best tag by calibrated score (:meth:`pipeline.tagging.ZeroShotTagger.calibrated`), ranked by
its margin over the second best tag; the top ``share`` of the window get their best tag, the ``none_share``
whose best tag scores lowest get none, and every tag gets at least ``min_per_tag`` answers.

With no labels there is no F1 to gate on, so the version carries a label-free gate, stated in its manifest
(``self_training.gate``):

* agreement: the student's out-of-fold decisions agree with the teacher's confident labels (micro F1 of
  the internal cross-validation on them) at least ``min_agreement``;
* coverage: the student tags at least ``min_coverage`` of the window;
* stability: a student trained on a ``resample`` share of the same labels tags the window alike (mean
  Jaccard of the two tag sets per answer) at least ``min_stability``.

A refused student is not used: the calibrated zero-shot tagger is returned instead, with the reason.
Labels, once they exist, take over (``feedback tagger train`` with labelled rows trains on them).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from pydantic import BaseModel, ConfigDict, Field

from pipeline.embed import Embedder
from pipeline.errors import FeedbackError
from pipeline.tagging.taxonomy import Taxonomy
from pipeline.tagging.trained import EmbeddingTfidfTagger
from pipeline.tagging.trained_parts import TaggerParams
from pipeline.tagging.zeroshot import ZeroShotTagger

log = logging.getLogger(__name__)

MODE = "self-trained"
"""The mode recorded in the manifest (and the lineage) of a self-trained version."""


NO_THEME_PHRASES = [
    # Answers that name no theme of any codeframe: overall verdicts, thanks, nothing to say. Written for
    # this project in the five configured languages; they only pick the teacher's "no tag" examples.
    "it was fine",
    "overall a good experience",
    "I would recommend it",
    "never again",
    "thank you",
    "nothing to add",
    "foi tudo bem",
    "recomendo",
    "nada a declarar",
    "todo bien",
    "lo recomiendo",
    "nada que añadir",
    "c'était bien",
    "je recommande",
    "rien à signaler",
    "het was prima",
    "aanrader",
    "geen opmerkingen",
]


class SelfTrainParams(BaseModel):
    """Settings of :func:`self_train` (validated on creation)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    min_rows: int = Field(100, ge=10, description="fewest window answers to self-train on (else zero-shot)")
    share: float = Field(0.4, gt=0, le=1, description="share of the window labelled with its best tag")
    none_share: float = Field(
        0.1, ge=0, lt=1, description="largest share of the window labelled 'no tag' (closest to no theme)"
    )
    pair_share: float = Field(
        0.05, ge=0, lt=1, description="share of the window labelled with its two best tags (two stand out)"
    )
    min_per_tag: int = Field(5, ge=1, description="fewest answers labelled with each tag")
    min_agreement: float = Field(0.6, ge=0, le=1, description="gate: out-of-fold agreement with the teacher")
    min_coverage: float = Field(0.2, ge=0, le=1, description="gate: share of the window tagged")
    min_stability: float = Field(0.6, ge=0, le=1, description="gate: agreement of two resampled students")
    resample: float = Field(0.8, gt=0, lt=1, description="share of the labels the second student sees")
    use_taxonomy_examples: bool = Field(True, description="the taxonomy's phrases join the training rows")
    seed: int = 0


@dataclass
class SelfTrainResult:
    """What :func:`self_train` gives back.

    Attributes:
        model: The self-trained tagger, or the calibrated zero-shot tagger when the gate refused it (or
            the window was too small).
        report: The manifest's ``self_training`` section: window, labels per tag, gate (criteria, values,
            passed, reason).
        mode: "self-trained", or "zero-shot" when the student was not used.
    """

    model: Any
    report: dict[str, Any] = field(default_factory=dict)
    mode: str = MODE

    @property
    def passed(self) -> bool:
        """Whether the self-trained student passed its gate."""
        return self.mode == MODE


def pseudo_labels(
    calibrated: np.ndarray,
    share: float,
    none_share: float,
    min_per_tag: int,
    no_theme: np.ndarray | None = None,
    pair_share: float = 0.0,
) -> dict[int, list[int]]:
    """The teacher's confident decisions: {row: [tag column]} (``[]``: no tag), see the module doc.

    Args:
        calibrated: The teacher's calibrated scores (n, n_tags).
        share: Share of rows labelled with their best tag (largest margins over the second best first).
        none_share: Largest share of rows labelled "no tag".
        min_per_tag: Fewest rows labelled with each tag.
        no_theme: Calibrated similarity of each row to :data:`NO_THEME_PHRASES` (n,), or None. With it, the
            "no tag" rows are those closer to no theme than to their best tag, by the largest margins;
            without it, the rows whose best tag scores lowest.
        pair_share: Share of rows labelled with their two best tags: those whose two best tags stand out
            furthest from the third, when they are closer to each other than to it.
    """
    z = np.asarray(calibrated, dtype=np.float64)
    n, n_tags = z.shape
    order = np.argsort(-z, axis=1, kind="stable")
    rows = np.arange(n)
    best = order[:, 0]
    top = z[rows, best]
    margin = top - (z[rows, order[:, 1]] if n_tags > 1 else 0.0)
    labels: dict[int, list[int]] = {}
    for i in np.argsort(-margin, kind="stable")[: int(round(share * n))]:
        labels[int(i)] = [int(best[i])]
    if pair_share > 0 and n_tags > 2:
        second, third = z[rows, order[:, 1]], z[rows, order[:, 2]]
        gap = second - third
        pairs = [i for i in np.argsort(-gap, kind="stable") if gap[i] > margin[i]][
            : int(round(pair_share * n))
        ]
        for i in pairs:
            labels[int(i)] = [int(best[i]), int(order[i, 1])]
    n_none = int(round(none_share * n))
    if no_theme is None:
        candidates = np.argsort(top, kind="stable")[:n_none]
    else:
        lead = np.asarray(no_theme, dtype=np.float64) - top
        candidates = [i for i in np.argsort(-lead, kind="stable")[:n_none] if lead[i] > 0]
    for i in candidates:
        labels[int(i)] = []  # closer to no theme than to any tag: overrides a best-tag label
    for j in range(n_tags):
        have = sum(1 for v in labels.values() if v == [j])
        if have >= min_per_tag:
            continue
        # A rare tag: its own best-scoring answers (where it is their best tag first).
        ranked = sorted(range(n), key=lambda i: (best[i] != j, -z[i, j]))
        for i in ranked:
            if have >= min_per_tag:
                break
            if i not in labels:
                labels[i] = [j]
                have += 1
    return labels


def _jaccard(a: Sequence[Sequence[str]], b: Sequence[Sequence[str]]) -> float:
    scores = [
        1.0 if not (set(x) | set(y)) else len(set(x) & set(y)) / len(set(x) | set(y))
        for x, y in zip(a, b, strict=True)
    ]
    return float(np.mean(scores)) if scores else 1.0


def self_train(
    texts: Sequence[str],
    embeddings: np.ndarray,
    taxonomy: Taxonomy,
    embedder: Embedder,
    *,
    langs: Sequence[str | None] | None = None,
    params: SelfTrainParams | dict[str, Any] | None = None,
    tagger_params: TaggerParams | dict[str, Any] | None = None,
    version: str | None = None,
) -> SelfTrainResult:
    """Self-train a tagger on an unlabelled window of answers (see the module doc).

    Args:
        texts: The window's answers, prepared as the nightly run prepares them
            (:func:`pipeline.prepare.model_texts`; the warehouse's ``text_redacted``).
        embeddings: Their answer vectors (the cached ones of the nightly run), row-aligned.
        taxonomy: The codeframe (descriptions, examples, keyword rules).
        embedder: The run's encoder (embeds the taxonomy's phrases; its model id is recorded).
        langs: Each answer's language (for the per-language report), or None.
        params: Self-training settings.
        tagger_params: Hyper-parameters of the student.
        version: Version id to record (default: the tagger's own).

    Returns:
        The model to save (self-trained, or the calibrated zero-shot tagger), its report and mode.
    """
    t0 = time.perf_counter()
    p = params if isinstance(params, SelfTrainParams) else SelfTrainParams.model_validate(params or {})
    texts = [str(t) for t in texts]
    emb = np.asarray(embeddings, dtype=np.float32)
    if emb.ndim != 2 or len(emb) != len(texts):
        raise FeedbackError(f"self_train needs one vector per text: {len(texts)} texts, vectors {emb.shape}")
    teacher = ZeroShotTagger(taxonomy).fit(embedder)
    if len(texts) >= 2:
        teacher.calibrate(emb)
    report: dict[str, Any] = {"window_rows": len(texts), "params": p.model_dump(mode="json")}
    if len(texts) < p.min_rows:
        report["gate"] = {
            "passed": False,
            "reason": f"{len(texts)} answers, fewer than min_rows={p.min_rows}",
        }
        log.info("self-training skipped: %s", report["gate"]["reason"])
        return SelfTrainResult(teacher, report, "zero-shot")
    z, no_theme = _teacher_scores(teacher, embedder, emb, texts)
    labels = pseudo_labels(z, p.share, p.none_share, p.min_per_tag, no_theme, p.pair_share)
    names = taxonomy.names
    rows = sorted(labels)
    tags = [[names[j] for j in labels[i]] for i in rows]
    report["labelled_rows"] = len(rows)
    report["labels_per_tag"] = {t: sum(t in ts for ts in tags) for t in names}
    report["no_tag_rows"] = sum(not ts for ts in tags)
    student = _fit_student(texts, emb, rows, tags, taxonomy, embedder, langs, p, tagger_params, version)
    predicted, _ = student.predict(emb, texts=texts)
    gate = _gate(student, predicted, texts, emb, rows, tags, taxonomy, embedder, p, tagger_params)
    report["gate"] = gate
    report["seconds"] = round(time.perf_counter() - t0, 2)
    if not gate["passed"]:
        log.warning(
            "self-trained tagger refused by its label-free gate (%s): zero-shot instead", gate["reason"]
        )
        return SelfTrainResult(teacher, report, "zero-shot")
    student.self_training_ = report
    return SelfTrainResult(student, report, MODE)


def _teacher_scores(
    teacher: ZeroShotTagger, embedder: Embedder, emb: np.ndarray, texts: list[str]
) -> tuple[np.ndarray, np.ndarray]:
    """The teacher's calibrated tag scores and each answer's calibrated closeness to no theme.

    "No theme" is one more prototype set (:data:`NO_THEME_PHRASES`), scored and calibrated like a tag
    (median and pooled spread over the window): the answers closest to it, ahead of their best tag, are the
    teacher's "no tag" examples (2-3 points of micro F1 over taking the answers whose best tag scores
    lowest, on the dev halves; bench/README.md, "Codeframe").
    """
    from pipeline.tagging.zeroshot import robust_calibration

    raw = teacher.score(emb, texts)
    phrases = np.asarray(embedder.embed(NO_THEME_PHRASES), dtype=np.float32)
    sims = np.sort(emb @ phrases.T, axis=1)[:, -teacher.top_k :].mean(axis=1, keepdims=True)
    both = np.hstack([teacher._similarity(emb), sims])
    centre, scale = robust_calibration(both)
    z = (np.hstack([raw, sims]) - centre) / scale
    return z[:, :-1], z[:, -1]


def _fit_student(
    texts: list[str],
    emb: np.ndarray,
    rows: list[int],
    tags: list[list[str]],
    taxonomy: Taxonomy,
    embedder: Embedder,
    langs: Sequence[str | None] | None,
    p: SelfTrainParams,
    tagger_params: TaggerParams | dict[str, Any] | None,
    version: str | None,
) -> EmbeddingTfidfTagger:
    from pipeline.tagging.lifecycle import taxonomy_seeds
    from pipeline.tagging.rules import KeywordRules

    tp = (
        tagger_params
        if isinstance(tagger_params, TaggerParams)
        else TaggerParams.model_validate(tagger_params or {})
    )
    # Pseudo-labels are plentiful: the full stack, never the few-shot recipe.
    student = EmbeddingTfidfTagger(tp.model_copy(update={"few_shot_below": 0, "seed": p.seed})).fit(
        [texts[i] for i in rows],
        emb[rows],
        tags,
        langs=[langs[i] for i in rows] if langs is not None else None,
        parents={t.name: t.parent for t in taxonomy.tags},
        tag_names=taxonomy.names,
        seeds=taxonomy_seeds(taxonomy, embedder) if p.use_taxonomy_examples else None,
        embedder_id=embedder.model_id,
        version=version,
    )
    student.rules_ = KeywordRules.from_taxonomy(taxonomy, student.tag_names_)
    return student


def _gate(
    student: EmbeddingTfidfTagger,
    predicted: list[list[str]],
    texts: list[str],
    emb: np.ndarray,
    rows: list[int],
    tags: list[list[str]],
    taxonomy: Taxonomy,
    embedder: Embedder,
    p: SelfTrainParams,
    tagger_params: TaggerParams | dict[str, Any] | None,
) -> dict[str, Any]:
    """The label-free gate (see the module doc)."""
    agreement = float(student.cv_report_["micro_f1"])
    coverage = float(np.mean([bool(t) for t in predicted]))
    rng = np.random.default_rng(p.seed)
    keep = np.sort(rng.choice(len(rows), size=max(2, int(p.resample * len(rows))), replace=False))
    other = _fit_student(
        texts,
        emb,
        [rows[k] for k in keep],
        [tags[k] for k in keep],
        taxonomy,
        embedder,
        None,
        p,
        tagger_params,
        None,
    )
    stability = _jaccard(predicted, other.predict(emb, texts=texts)[0])
    failed = [
        f"{name} {value:.2f} < {least:.2f}"
        for name, value, least in (
            ("agreement", agreement, p.min_agreement),
            ("coverage", coverage, p.min_coverage),
            ("stability", stability, p.min_stability),
        )
        if value < least
    ]
    return {
        "criteria": {
            "agreement": "micro F1 of the student's out-of-fold decisions against the zero-shot tagger's "
            f"confident labels >= {p.min_agreement}",
            "coverage": f"share of the window's answers given a tag >= {p.min_coverage}",
            "stability": f"mean Jaccard agreement with a student trained on {p.resample:.0%} of the labels "
            f">= {p.min_stability}",
        },
        "agreement": round(agreement, 4),
        "coverage": round(coverage, 4),
        "stability": round(stability, 4),
        "passed": not failed,
        "reason": "; ".join(failed) or "all criteria met",
    }


def train_without_labels(
    window: Any,
    embedder: Embedder,
    taxonomy: Taxonomy,
    *,
    params: SelfTrainParams | dict[str, Any] | None = None,
    tagger_params: TaggerParams | dict[str, Any] | None = None,
) -> tuple[Any, Any]:
    """``feedback tagger train`` on rows without tags: self-train on them (:func:`self_train`).

    Args:
        window: The unlabelled rows (:class:`pipeline.tagging.data.LabelledData` with ``tags`` null),
            embedded or not.
        embedder: The run's (answer) encoder.
        taxonomy: The codeframe.
        params: Self-training settings.
        tagger_params: Hyper-parameters of the student.

    Returns:
        The model and its :class:`pipeline.tagging.lifecycle.TrainInfo` (mode "self-trained", or
        "zero-shot" when the window is too small or the gate refused the student).
    """
    from pipeline.embed.base import texts_digest
    from pipeline.tagging.data import embed_labelled
    from pipeline.tagging.lifecycle import TrainInfo

    t0 = time.perf_counter()
    if window.embeddings is None or window.embedder_id != embedder.model_id:
        window = embed_labelled(window, embedder)
    langs = window.langs if any(window.langs) else None
    result = self_train(
        window.texts,
        window.embeddings,
        taxonomy,
        embedder,
        langs=langs,
        params=params,
        tagger_params=tagger_params,
    )
    seeds = sum(1 + len(t.examples) for t in taxonomy.tags) if result.passed else 0
    counts = result.report.get("labels_per_tag", {}) if result.passed else {}
    lang_counts: dict[str, int] = {}
    for lang in langs or []:
        if lang:
            lang_counts[str(lang)] = lang_counts.get(str(lang), 0) + 1
    info = TrainInfo(
        result.mode,
        "taxonomy",
        taxonomy.version_id,
        texts_digest(window.texts),
        len(window),
        window.sources,
        counts,
        round(time.perf_counter() - t0, 2),
        seeds=seeds,
        langs=lang_counts,
    )
    result.model.self_training_ = result.report
    return result.model, info
