"""Codeframes a CX lead can write without a data scientist: a draft from the discovered topics, and what
each tag of a codeframe catches before a night runs on it.

* :func:`draft_tags` / :func:`draft_yaml`: a draft taxonomy from the topics stored in the warehouse (tag
  names and descriptions from each topic's keywords, examples from its most central answers in each of
  its languages, a suggested parent from groups of close topics). A draft to edit, never to trust.
* :func:`check_codeframe`: for each tag, how many answers it catches and a few of them, its nearest
  other tag and how many answers carry both, the tags that never fire and the answers that get no tag.

Tagging itself is the project's: the configured tagger built by :mod:`pipeline.tagging` and applied as
the nightly run applies it (:func:`pipeline.tagging.evaluation.with_sentence_tags`). This module holds no
I/O beyond the warehouse reads of :func:`read_topic_answers` and :func:`read_answers`; the command line is
:mod:`pipeline.cli.taxonomy`.
"""

from __future__ import annotations

import logging
import re
import unicodedata
from collections import Counter
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from pipeline.errors import ConfigError, FeedbackError
from pipeline.tagging.taxonomy import Taxonomy

log = logging.getLogger(__name__)

DRAFT_HEADER = """\
# DRAFT codeframe written by `feedback taxonomy draft` from {n_topics} topics discovered in
# {source} ({n_answers} answers), {when}.
#
# Edit it, do not trust it. The topics are clusters of similar answers, not themes chosen by a person:
#   - rename each tag to the theme you report on (lower_snake_case; never rename a tag later, add one);
#   - rewrite each description as one plain sentence saying what the tag covers;
#   - keep only the examples that clearly belong to the tag, add your own (short phrases, in every
#     language your customers write in); merge tags that are one theme, delete what you do not report on;
#   - check the suggested parents (groups of close topics) and set `polarity` where a tag is a complaint
#     or praise.
# Then see what each tag catches before a night runs on it:
#   feedback taxonomy check --taxonomy THIS_FILE --warehouse ...
# and bump `version` at every edit: it is stored with every tagged answer.
"""

_NAME_DROP_RE = re.compile(r"[^a-z0-9]+")


# --------------------------------------------------------------------------------------------------------
# Draft
# --------------------------------------------------------------------------------------------------------


@dataclass
class DraftTag:
    """One tag of a draft codeframe and where it came from.

    Attributes:
        name: The tag name (from the topic's first keywords).
        description: One sentence built from the keywords.
        examples: Central answers of the topic, a few per language, shortened to their first sentence.
        parent: The suggested parent tag (a group of close topics), or None.
        topic_ids: The topics behind the tag (the group's topics for a parent).
        size: Answers in those topics.
        keywords: The topic's keywords.
        nearest_current_tag: The configured taxonomy's tag most common among the topic's answers.
        group: Whether the tag is a suggested parent (a group of topics).
    """

    name: str
    description: str
    examples: list[str] = field(default_factory=list)
    parent: str | None = None
    topic_ids: list[int] = field(default_factory=list)
    size: int = 0
    keywords: list[str] = field(default_factory=list)
    nearest_current_tag: str | None = None
    group: bool = False


def tag_name(words: Sequence[str], taken: set[str], fallback: str) -> str:
    """A valid, unused tag name from keywords: ``["Entrega", "prazo"]`` -> ``entrega_prazo``.

    Accents are dropped and anything but letters and digits becomes ``_``; a name that starts with a
    digit or is taken gets a prefix or a numeric suffix.
    """
    folded = [
        _NAME_DROP_RE.sub(
            "_", unicodedata.normalize("NFKD", str(w).casefold()).encode("ascii", "ignore").decode()
        )
        for w in words
    ]
    base = "_".join(p.strip("_") for p in folded if p.strip("_"))[:40].strip("_") or fallback
    if not base[0].isalpha():
        base = f"t_{base}"
    name, k = base, 2
    while name in taken:
        name, k = f"{base}_{k}", k + 1
    taken.add(name)
    return name


def first_sentence(text: str, max_chars: int = 120) -> str:
    """The first sentence of a quote, cut at a word boundary to at most ``max_chars`` characters."""
    text = " ".join(str(text).split())
    match = re.search(r"(?<=[.!?…])\s", text)
    if match and match.start() >= 12:
        text = text[: match.start()]
    if len(text) > max_chars:
        cut = text.rfind(" ", 0, max_chars)
        text = text[: cut if cut > 20 else max_chars].rstrip(" ,;:") + "…"
    return text


def quotes_by_language(
    answers: pd.DataFrame, vectors: np.ndarray | None, per_language: int = 2, max_languages: int = 5
) -> dict[int, list[str]]:
    """The most central answers of each topic, ``per_language`` in each of its main languages.

    Args:
        answers: Rows with ``topic_id``, ``language`` and ``text`` (redacted answers).
        vectors: Their answer vectors (row-aligned, L2-normalised), or None: then the shortest distinct
            answers stand in for the most central ones.
        per_language: Quotes kept per language.
        max_languages: Languages kept per topic, the most frequent first.

    Returns:
        ``{topic_id: [quote, ...]}``, grouped by language.
    """
    out: dict[int, list[str]] = {}
    for topic, rows in answers.groupby("topic_id", sort=True):
        picked: list[str] = []
        langs = rows["language"].fillna("und").astype(str)
        for lang, _ in Counter(langs).most_common(max_languages):
            idx = rows.index[(langs == lang).to_numpy()].to_numpy()
            if vectors is not None:
                x = vectors[idx]
                centre = x.mean(axis=0)
                order = idx[np.argsort(-(x @ centre), kind="stable")]
            else:
                order = idx[np.argsort(answers.loc[idx, "text"].str.len().to_numpy(), kind="stable")]
            kept = 0
            for i in order:
                quote = first_sentence(answers.at[i, "text"])
                if len(quote) >= 3 and quote not in picked:
                    picked.append(quote)
                    kept += 1
                if kept >= per_language:
                    break
        out[int(topic)] = picked
    return out


def group_topics(centroids: np.ndarray, n_groups: int | None = None) -> np.ndarray:
    """Group close topics (average linkage on cosine distance) into about a third as many groups.

    The number of groups, not a distance threshold, is fixed, so the grouping does not depend on the
    encoder's similarity scale. Returns a group label per topic.
    """
    n = len(centroids)
    if n < 3:
        return np.arange(n)
    from scipy.cluster.hierarchy import fcluster, linkage

    k = n_groups or max(2, round(n / 3))
    tree = linkage(np.asarray(centroids, dtype=np.float64), method="average", metric="cosine")
    return fcluster(tree, t=k, criterion="maxclust")


def draft_tags(
    topics: pd.DataFrame,
    quotes: dict[int, list[str]] | None = None,
    centroids: dict[int, np.ndarray] | None = None,
    min_size: int = 5,
    max_examples: int = 8,
) -> list[DraftTag]:
    """Draft tags from the stored topics.

    Args:
        topics: The ``topics`` table (``topic_id``, ``keywords``, ``representative_quotes``, ``size``,
            ``suggested_tag``, optionally ``status``); retired topics and the outlier topic (-1) are
            left out, and so are topics of fewer than ``min_size`` answers.
        quotes: Central quotes per topic in its languages (:func:`quotes_by_language`); the stored
            representative quotes when None or missing for a topic.
        centroids: Each topic's mean answer vector, to suggest parents (:func:`group_topics`); no
            parents when None.
        min_size: Smallest topic drafted as a tag.
        max_examples: Most examples per tag.

    Returns:
        Parent tags first (one per group of at least two topics), then one tag per topic, largest first.

    Raises:
        FeedbackError: When no topic is left to draft from.
    """
    rows = topics.copy()
    if "status" in rows.columns:
        rows = rows[rows["status"].fillna("active").astype(str) != "retired"]
    rows = rows[(rows["topic_id"].astype(int) >= 0) & (rows["size"].fillna(0).astype(int) >= min_size)]
    if rows.empty:
        raise FeedbackError(
            f"no topic of at least {min_size} answers to draft from ({len(topics)} stored): run `feedback "
            "enrich` on more answers first (topics are fitted on the last topics.window_days of answers)."
        )
    rows = rows.sort_values(["size", "topic_id"], ascending=[False, True]).reset_index(drop=True)
    taken: set[str] = set()
    tags: list[DraftTag] = []
    for _, row in rows.iterrows():
        topic = int(row["topic_id"])
        words = [str(w) for w in _as_list(row.get("keywords"))]
        examples = (quotes or {}).get(topic) or [
            first_sentence(q) for q in _as_list(row.get("representative_quotes"))
        ]
        tags.append(
            DraftTag(
                name=tag_name(words[:2], taken, f"topic_{topic}"),
                description=_description(words, examples),
                examples=list(dict.fromkeys(examples))[:max_examples],
                topic_ids=[topic],
                size=int(row["size"]),
                keywords=words,
                nearest_current_tag=_none_if_missing(row.get("suggested_tag")),
            )
        )
    return _with_parents(tags, centroids, taken) if centroids else tags


def _with_parents(tags: list[DraftTag], centroids: dict[int, np.ndarray], taken: set[str]) -> list[DraftTag]:
    """Parent tags for groups of close topics (topics without a centroid stay without a parent)."""
    have = [t for t in tags if t.topic_ids[0] in centroids]
    if len(have) < 3:
        return tags
    labels = group_topics(np.stack([centroids[t.topic_ids[0]] for t in have]))
    parents: list[DraftTag] = []
    for group in sorted(
        set(labels.tolist()),
        key=lambda g: -sum(t.size for t, lab in zip(have, labels, strict=True) if lab == g),
    ):
        members = [t for t, lab in zip(have, labels, strict=True) if lab == group]
        if len(members) < 2:
            continue
        counts: Counter[str] = Counter()
        for m in members:
            counts.update({w: m.size for w in m.keywords[:5]})
        words = [w for w, _ in counts.most_common(3)]
        parent = DraftTag(
            name=tag_name(words[:1] + ["group"], taken, "group"),
            description=f"Groups {', '.join(m.name for m in members)}: answers about {', '.join(words)}.",
            topic_ids=[tid for m in members for tid in m.topic_ids],
            size=sum(m.size for m in members),
            keywords=words,
            group=True,
        )
        for m in members:
            m.parent = parent.name
        parents.append(parent)
    return parents + tags


def _description(words: list[str], examples: list[str]) -> str:
    if words:
        return f"Answers about {', '.join(words[:5])}."
    return f"Answers like: {examples[0]}" if examples else "Answers of one discovered topic."


def _as_list(value: object) -> list[Any]:
    if value is None or (isinstance(value, float) and np.isnan(value)):
        return []
    if isinstance(value, str):
        return [v.strip() for v in value.split("|") if v.strip()]
    return list(value)  # type: ignore[call-overload]


def _none_if_missing(value: object) -> str | None:
    if value is None or (isinstance(value, float) and np.isnan(value)) or not str(value).strip():
        return None
    return str(value)


def draft_yaml(tags: Sequence[DraftTag], version: str, header: str) -> str:
    """The draft as taxonomy YAML (loadable by :func:`pipeline.tagging.taxonomy.load_taxonomy`), with a comment
    over each tag saying which topic it comes from."""
    import yaml

    lines = [
        header.rstrip("\n"),
        f"version: {yaml.safe_dump(version).strip().removesuffix('...').strip()}",
        "",
        "tags:",
    ]
    for tag in tags:
        kind = "suggested parent, a group of topics" if tag.group else "topic"
        note = f"  # {kind} {', '.join(map(str, tag.topic_ids))}: {tag.size} answers"
        if tag.keywords:
            note += f"; keywords: {', '.join(tag.keywords[:8])}"
        if tag.nearest_current_tag:
            note += f"; most common current tag: {tag.nearest_current_tag}"
        entry: dict[str, Any] = {"name": tag.name, "description": tag.description}
        if tag.parent:
            entry["parent"] = tag.parent
        entry["examples"] = list(tag.examples)
        body = yaml.safe_dump([entry], allow_unicode=True, sort_keys=False, width=110)
        lines += [note, *("  " + line for line in body.rstrip("\n").splitlines()), ""]
    return "\n".join(lines) + "\n"


def read_topic_answers(wh: Any, config: Any) -> tuple[pd.DataFrame, pd.DataFrame, np.ndarray | None]:
    """The stored topics, the answered rows that carry a topic, and those rows' cached answer vectors.

    Returns:
        ``(topics, answers, vectors)``: ``answers`` has ``topic_id``, ``language``, ``text`` and
        ``tags``; ``vectors`` is None when any answer's vector is missing from the cache (nothing is
        encoded here).

    Raises:
        FeedbackError: When the warehouse holds no topics yet.
    """
    from pipeline.embed.base import text_hash
    from pipeline.embed.response import SUFFIX

    t = config.tables
    if not wh.table_exists(t.topics) or wh.count(t.topics) == 0:
        raise FeedbackError(
            f"no topics in {wh.describe()} (table {t.topics!r}): run `feedback enrich` first; topics are "
            "fitted once there are topics.min_docs answers."
        )
    topics = wh.read(t.topics)
    cols = ["topic_id", "language", "text_redacted", "is_non_answer", "tags"]
    enriched = wh.read(t.enriched, columns=cols)
    enriched = enriched[~enriched["is_non_answer"].astype(bool) & enriched["topic_id"].notna()]
    answers = (
        enriched.assign(topic_id=enriched["topic_id"].astype(int), text=enriched["text_redacted"].fillna(""))
        .loc[lambda d: d["topic_id"] >= 0, ["topic_id", "language", "text", "tags"]]
        .reset_index(drop=True)
    )
    model_id = _embedder_id(wh, config)
    vectors = None
    if model_id and len(answers):
        rid = model_id + (SUFFIX if config.response_vector == "sentence_mean" else "")
        hashes = [text_hash(x) for x in answers["text"]]
        found = wh.read_vectors(rid, list(dict.fromkeys(hashes)))
        if all(h in found for h in hashes):
            vectors = np.stack([found[h] for h in hashes]).astype(np.float32)
        else:
            log.info("some answer vectors are not cached: quotes are chosen without them, no parents")
    return topics, answers, vectors


def _embedder_id(wh: Any, config: Any) -> str | None:
    """The encoder id of the last enrichment (lineage), to read its cached vectors."""
    t = config.tables
    if not wh.table_exists(t.runs) or "embedder_id" not in wh.columns(t.runs):
        return None
    runs = wh.read(t.runs, columns=["embedder_id", "started_at"]).dropna(subset=["embedder_id"])
    return str(runs.sort_values("started_at").iloc[-1]["embedder_id"]) if len(runs) else None


def topic_centroids(answers: pd.DataFrame, vectors: np.ndarray) -> dict[int, np.ndarray]:
    """Each topic's mean answer vector, after removing each language's mean (themes, not languages, as
    the topic model does)."""
    x = np.asarray(vectors, dtype=np.float64).copy()
    langs = answers["language"].fillna("und").astype(str).to_numpy()
    for lang in np.unique(langs):
        x[langs == lang] -= x[langs == lang].mean(axis=0)
    out: dict[int, np.ndarray] = {}
    for topic in np.unique(answers["topic_id"].to_numpy()):
        c = x[answers["topic_id"].to_numpy() == topic].mean(axis=0)
        out[int(topic)] = c / (np.linalg.norm(c) or 1.0)
    return out


# --------------------------------------------------------------------------------------------------------
# Check
# --------------------------------------------------------------------------------------------------------


@dataclass
class TagCheck:
    """What one tag catches.

    Attributes:
        name: The tag.
        answers: How many answers carry it.
        share: ``answers`` over all answers checked.
        examples: Answers it catches with its highest scores.
        borderline: Answers it catches with its lowest scores (where false hits hide).
        nearest: The other tag whose description and examples are most similar to its own.
        similarity: Cosine similarity of the two tags' prototypes (description and examples).
        overlap: Answers that carry both.
        overlap_share: ``overlap`` over the smaller of the two tags' answers (0 when either never fires).
        relation: ``"parent"`` or ``"child"`` when the nearest tag is this tag's parent or child (an
            overlap is then expected), else None.
    """

    name: str
    answers: int
    share: float
    examples: list[str]
    borderline: list[str]
    nearest: str | None
    similarity: float | None
    overlap: int
    overlap_share: float
    relation: str | None = None


@dataclass
class CodeframeCheck:
    """What a codeframe catches on a set of answers (see :func:`check_codeframe`)."""

    taxonomy_version: str
    tagger_version: str
    answers: int
    tagged: int
    non_answers_left_out: int
    tags: list[TagCheck]
    never_fire: list[str]
    untagged: int
    untagged_examples: list[str]

    def to_dict(self) -> dict[str, Any]:
        """The check as plain JSON-able data."""
        return asdict(self)


def tag_prototypes(taxonomy: Taxonomy, embedder: Any) -> np.ndarray:
    """One L2-normalised vector per tag: the mean of its description's and examples' vectors."""
    texts: list[str] = []
    owner: list[int] = []
    for j, tag in enumerate(taxonomy.tags):
        for text in [tag.description, *tag.examples]:
            texts.append(text)
            owner.append(j)
    vecs = np.asarray(embedder.embed(texts), dtype=np.float64)
    own = np.asarray(owner)
    out = np.stack([vecs[own == j].mean(axis=0) for j in range(len(taxonomy.tags))])
    return out / np.maximum(np.linalg.norm(out, axis=1, keepdims=True), 1e-12)


def check_codeframe(
    taxonomy: Taxonomy,
    tagger_version: str,
    texts: Sequence[str],
    tags: Sequence[Sequence[str]],
    scores: np.ndarray,
    score_names: Sequence[str],
    prototypes: np.ndarray,
    non_answers: int = 0,
    n_examples: int = 3,
    n_untagged: int = 8,
) -> CodeframeCheck:
    """What each tag of ``taxonomy`` catches, from the tags the tagger gave ``texts``.

    Args:
        taxonomy: The codeframe checked.
        tagger_version: The tagger that tagged them (recorded).
        texts: The answers (non-answers left out).
        tags: Each answer's tags, as the nightly run gives them.
        scores: The tagger's answer-level scores (rows: answers; columns: ``score_names``), to order
            examples.
        score_names: The tag of each score column.
        prototypes: :func:`tag_prototypes` of the taxonomy, for each tag's nearest other tag.
        non_answers: How many non-answers were left out (reported).
        n_examples: Examples (and borderline answers) shown per tag.
        n_untagged: Examples of answers without a tag.
    """
    names = taxonomy.names
    n = len(texts)
    if len(tags) != n:
        raise ValueError(f"{len(tags)} tag lists for {n} texts")
    member = np.array([[name in set(ts) for name in names] for ts in tags], dtype=bool).reshape(n, len(names))
    col = {name: j for j, name in enumerate(score_names)}
    sims = prototypes @ prototypes.T
    np.fill_diagonal(sims, -np.inf)
    checks: list[TagCheck] = []
    for j, name in enumerate(names):
        rows = np.flatnonzero(member[:, j])
        order = rows
        if name in col and len(rows):
            order = rows[np.argsort(-np.asarray(scores)[rows, col[name]], kind="stable")]
        shown = _distinct(texts, order)
        k = int(np.argmax(sims[j])) if len(names) > 1 else None
        both = int((member[:, j] & member[:, k]).sum()) if k is not None else 0
        smaller = min(len(rows), int(member[:, k].sum())) if k is not None else 0
        checks.append(
            TagCheck(
                name=name,
                answers=len(rows),
                share=round(len(rows) / n, 4) if n else 0.0,
                examples=shown[:n_examples],
                borderline=shown[n_examples:][-min(2, n_examples) :][::-1],
                nearest=names[k] if k is not None else None,
                similarity=round(float(sims[j, k]), 3) if k is not None else None,
                overlap=both,
                overlap_share=round(both / smaller, 3) if smaller else 0.0,
                relation=_relation(taxonomy, name, names[k]) if k is not None else None,
            )
        )
    untagged = _distinct(texts, np.flatnonzero(~member.any(axis=1)))
    step = max(1, len(untagged) // max(n_untagged, 1))
    return CodeframeCheck(
        taxonomy_version=taxonomy.version_id,
        tagger_version=tagger_version,
        answers=n,
        tagged=int(member.any(axis=1).sum()),
        non_answers_left_out=int(non_answers),
        tags=checks,
        never_fire=[c.name for c in checks if c.answers == 0],
        untagged=int((~member.any(axis=1)).sum()),
        untagged_examples=untagged[::step][:n_untagged],
    )


def _distinct(texts: Sequence[str], order: np.ndarray) -> list[str]:
    """The texts at ``order``, each distinct text once (the first time it comes)."""
    return list(dict.fromkeys(texts[i] for i in order))


def _relation(taxonomy: Taxonomy, name: str, other: str) -> str | None:
    if taxonomy.parent_of(name) == other:
        return "parent"
    return "child" if taxonomy.parent_of(other) == name else None


def checking_tagger(config: Any, taxonomy: Taxonomy, embedder: Any) -> Any:
    """The configured zero-shot tagger fitted on ``taxonomy`` (what a night would tag with before any
    labels exist). A trained tagger in the config is not what a new codeframe is checked with: the
    zero-shot one is used instead, with its default options."""
    from pipeline.tagging import TRAINED_TAGGERS, build_tagger

    name, options = config.tagger.name, dict(config.tagger.options)
    if name in TRAINED_TAGGERS:
        log.info("the config names the trained tagger %s: checking with tagger.zeroshot.v1", name)
        name, options = "tagger.zeroshot.v1", {}
    return build_tagger(name, taxonomy, **options).fit(embedder)


class ReadOnlyStore:
    """The warehouse's embedding cache, read but never written (a check changes nothing)."""

    def __init__(self, wh: Any) -> None:
        self.wh = wh

    def read_vectors(self, model_id: str, hashes: list[str]) -> dict[str, np.ndarray]:
        """Cached vectors of ``hashes`` (missing ones are absent)."""
        return self.wh.read_vectors(model_id, hashes) if self.wh.table_exists("embedding_cache") else {}

    def write_vectors(self, model_id: str, hashes: list[str], vectors: np.ndarray) -> int:
        """Nothing is written."""
        return 0


def read_answers(wh: Any, config: Any, limit: int | None = None) -> pd.DataFrame:
    """The stored answers to check a codeframe on: ``text`` (redacted), ``lang`` and ``is_non_answer``.

    Args:
        wh: Open warehouse.
        config: The enrichment config (table names).
        limit: Most recent answers kept (by ``submitted_at``), all when None.

    Raises:
        ConfigError: When nothing is enriched yet.
    """
    t = config.tables
    if not wh.table_exists(t.enriched) or wh.count(t.enriched) == 0:
        raise ConfigError(
            f"no enriched answers in {wh.describe()}: run `feedback enrich` first, or pass --data FILE."
        )
    cols = [
        c
        for c in ("text_redacted", "language", "is_non_answer", "submitted_at")
        if c in wh.columns(t.enriched)
    ]
    rows = wh.read(t.enriched, columns=cols)
    if limit and "submitted_at" in rows.columns:
        rows = rows.sort_values("submitted_at", ascending=False, kind="stable").head(limit)
    return pd.DataFrame(
        {
            "text": rows["text_redacted"].fillna("").astype(str).to_numpy(),
            "lang": rows["language"].to_numpy() if "language" in rows.columns else None,
            "is_non_answer": rows["is_non_answer"].astype(bool).to_numpy(),
        }
    )
