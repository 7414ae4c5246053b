"""Keyword rules of the codeframe: a CX lead pins a theme to words, phrases or patterns.

A tag of the taxonomy may carry ``keywords`` (words or phrases) and ``patterns`` (regular expressions),
each per language (``{pt: [estorno, reembolso], en: [chargeback]}``; a plain list applies to every
language). A rule hit is a strong vote for its tag, combined with the model's score, never the only path:
the model still tags answers that match no rule, and every tagger (zero-shot, trained, self-trained)
combines the same way (:meth:`KeywordRules.vote`).

Keywords match whole words, case- and accent-insensitively ("reembolso" matches "Reembolso" and
"reémbolso"; "refund" does not match "refunded": list the forms you mean, or use a pattern). Patterns are
Python regular expressions matched case-insensitively on the text as it is. Taggers see texts without
their language, so the rules of every language are matched against every text; the per-language lists
keep the codeframe readable and say which words belong to which language.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

ANY_LANGUAGE = "*"
"""The key of rules that apply to every language (a plain list in the YAML means this)."""

DEFAULT_WEIGHT = 0.8
"""How strong a rule hit's vote is: a tag's probability p becomes 1 - (1 - p)(1 - weight)."""


def fold(text: str) -> str:
    """Lower-case and strip accents (the form keywords are matched in)."""
    decomposed = unicodedata.normalize("NFKD", text.casefold())
    return "".join(c for c in decomposed if not unicodedata.combining(c))


def keyword_regex(words: Sequence[str]) -> re.Pattern[str] | None:
    """One regex matching any of ``words`` as whole words in folded text (None when there are none)."""
    parts = sorted({r"\s+".join(map(re.escape, fold(w).split())) for w in words if w.strip()}, key=len)
    if not parts:
        return None
    return re.compile(r"(?<!\w)(?:" + "|".join(reversed(parts)) + r")(?!\w)")


class KeywordRules:
    """The keyword and pattern rules of some tags, in a fixed tag order.

    Args:
        tag_names: The tagger's score columns, in order.
        keywords: ``{tag: {language: [word, ...]}}``.
        patterns: ``{tag: {language: [regex, ...]}}``.
        weight: Strength of a hit's vote (0..1, see :data:`DEFAULT_WEIGHT`).
    """

    def __init__(
        self,
        tag_names: Sequence[str],
        keywords: Mapping[str, Mapping[str, Sequence[str]]] | None = None,
        patterns: Mapping[str, Mapping[str, Sequence[str]]] | None = None,
        weight: float = DEFAULT_WEIGHT,
    ) -> None:
        self.tag_names = list(tag_names)
        self.keywords = {t: {k: list(v) for k, v in m.items()} for t, m in (keywords or {}).items() if m}
        self.patterns = {t: {k: list(v) for k, v in m.items()} for t, m in (patterns or {}).items() if m}
        self.weight = float(weight)
        self._compiled = [self._compile(t) for t in self.tag_names]

    def _compile(self, tag: str) -> tuple[re.Pattern[str] | None, list[re.Pattern[str]]]:
        words = [w for ws in self.keywords.get(tag, {}).values() for w in ws]
        regexes = [re.compile(p, re.IGNORECASE) for ps in self.patterns.get(tag, {}).values() for p in ps]
        return keyword_regex(words), regexes

    @classmethod
    def from_taxonomy(cls, taxonomy: Any, tag_names: Sequence[str] | None = None) -> KeywordRules | None:
        """The rules of a taxonomy's tags (None when no tag has any)."""
        names = list(tag_names) if tag_names is not None else taxonomy.names
        by_name = {t.name: t for t in taxonomy.tags}
        keywords = {n: dict(by_name[n].keywords) for n in names if n in by_name and by_name[n].keywords}
        patterns = {n: dict(by_name[n].patterns) for n in names if n in by_name and by_name[n].patterns}
        if not keywords and not patterns:
            return None
        return cls(names, keywords, patterns)

    def __bool__(self) -> bool:
        return bool(self.keywords or self.patterns)

    def hits(self, texts: Sequence[str]) -> np.ndarray:
        """Boolean matrix (n_texts, n_tags): which tags' rules each text matches."""
        out = np.zeros((len(texts), len(self.tag_names)), dtype=bool)
        for i, text in enumerate(texts):
            raw = str(text or "")
            folded = fold(raw)
            for j, (words, regexes) in enumerate(self._compiled):
                word_hit = words is not None and words.search(folded) is not None
                out[i, j] = word_hit or any(r.search(raw) for r in regexes)
        return out

    def vote(self, probabilities: np.ndarray, texts: Sequence[str] | None) -> np.ndarray:
        """Probabilities with each rule hit's vote: p -> 1 - (1 - p)(1 - weight) where a rule matches.

        A hit lifts a tag to at least ``weight`` (above any usual threshold), while the model's own
        scores decide every tag without a hit.
        """
        p = np.asarray(probabilities, dtype=np.float32)
        if texts is None or not len(p):
            return p
        hit = self.hits(texts)
        return np.where(hit, 1.0 - (1.0 - p) * (1.0 - self.weight), p).astype(np.float32)

    def to_dict(self) -> dict[str, Any]:
        """Plain data for a model folder (read back with :meth:`from_dict`)."""
        return {
            "tag_names": self.tag_names,
            "keywords": self.keywords,
            "patterns": self.patterns,
            "weight": self.weight,
        }

    @classmethod
    def from_dict(cls, state: Mapping[str, Any]) -> KeywordRules:
        """Rules written by :meth:`to_dict`."""
        return cls(state["tag_names"], state.get("keywords"), state.get("patterns"), state.get("weight", 0.8))
