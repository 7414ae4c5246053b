"""Non-answers ("n/a", "nada", "rien à dire"...): the per-language list in
``pipeline/resources/non_answers.yaml`` and the check, with one typo allowed in longer phrases."""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import TYPE_CHECKING

from pipeline.errors import ConfigError
from pipeline.prepare.pii import PLACEHOLDER_RE as _PLACEHOLDER_RE
from pipeline.prepare.text import normalise_text

if TYPE_CHECKING:  # pragma: no cover - typing only; the real imports are lazy
    pass


# --------------------------------------------------------------------------------------------------------
# Non-answers
# --------------------------------------------------------------------------------------------------------

# Whole answers that say nothing, per language, in pipeline/resources/non_answers.yaml. They are compared
# after folding: lower case, accents removed, and everything that is not a letter or digit removed (so
# "N/A", "n.a.", "No comments!!" and "nocomment" all match); long enough phrases also with one typo.
NON_ANSWERS_FILE = Path(__file__).resolve().parent.parent / "resources" / "non_answers.yaml"
_FOLD_DROP_RE = re.compile(r"[\W_]+")
_LETTER_RE = re.compile(r"[^\W\d_]")
# Courtesy words around a non-answer ("Nada a declarar, obrigado", "No comment, thanks"), folded.
_COURTESY: tuple[str, ...] = (
    "obrigado", "obrigada", "grato", "grata", "thanks", "thankyou", "merci", "gracias", "bedankt",
    "dankje", "danku", "dankuwel",
)  # fmt: skip


def _fold(text: str) -> str:
    """Lower-case, strip accents, keep only letters and digits ("Sem comentários!" -> "semcomentarios")."""
    decomposed = unicodedata.normalize("NFKD", text.casefold())
    no_marks = "".join(c for c in decomposed if not unicodedata.combining(c))
    return _FOLD_DROP_RE.sub("", no_marks)


def _deletions(word: str) -> set[str]:
    """``word`` and every string one letter shorter (the keys of a one-typo lookup)."""
    return {word} | {word[:i] + word[i + 1 :] for i in range(len(word))}


def _one_typo_apart(a: str, b: str) -> bool:
    """Whether two strings differ by at most one edit: a letter changed, added, removed, or two swapped."""
    if a == b:
        return True
    if abs(len(a) - len(b)) > 1:
        return False
    if len(a) == len(b):
        diff = [i for i, (x, y) in enumerate(zip(a, b, strict=True)) if x != y]
        return len(diff) == 1 or (
            len(diff) == 2
            and diff[1] == diff[0] + 1
            and a[diff[0]] == b[diff[1]]
            and a[diff[1]] == b[diff[0]]
        )
    short, long = (a, b) if len(a) < len(b) else (b, a)
    i = next((k for k in range(len(short)) if short[k] != long[k]), len(short))
    return short[i:] == long[i + 1 :]


@dataclass(frozen=True)
class NonAnswerList:
    """Folded non-answer phrases and the index that finds them with one typo.

    Attributes:
        exact: Every folded phrase.
        fuzzy: Deletion key -> the folded phrases (of at least ``typo_min_chars``) it comes from.
        typo_min_chars: Shortest folded phrase matched with a typo.
    """

    exact: frozenset[str]
    fuzzy: dict[str, tuple[str, ...]]
    typo_min_chars: int

    def matches(self, folded: str) -> bool:
        """Whether a folded answer is a listed phrase, or one typo away from a long enough one."""
        if folded in self.exact:
            return True
        if len(folded) + 1 < self.typo_min_chars:
            return False
        return any(
            _one_typo_apart(folded, phrase)
            for key in _deletions(folded)
            for phrase in self.fuzzy.get(key, ())
        )


@lru_cache(maxsize=4)
def load_non_answers(path: str | Path = NON_ANSWERS_FILE) -> NonAnswerList:
    """Read the non-answer phrases (``phrases: {lang: [...]}``, ``typo_min_chars``, ``exact_only``).

    Raises:
        ConfigError: When the file is not shaped like ``pipeline/resources/non_answers.yaml``.
    """
    import yaml

    raw = yaml.safe_load(Path(path).read_text(encoding="utf-8")) or {}
    phrases = raw.get("phrases")
    if not isinstance(phrases, dict) or not all(isinstance(v, list) for v in phrases.values()):
        raise ConfigError(f"{path}: expected 'phrases:' mapping each language to a list of phrases.")
    typo_min = int(raw.get("typo_min_chars", 8))
    exact_only = {_fold(str(p)) for p in raw.get("exact_only") or []}
    folded = {_fold(str(p)) for texts in phrases.values() for p in texts} - {""}
    fuzzy: dict[str, list[str]] = {}
    for phrase in sorted(folded - exact_only):
        if len(phrase) >= typo_min:
            for key in _deletions(phrase):
                fuzzy.setdefault(key, []).append(phrase)
    return NonAnswerList(frozenset(folded), {k: tuple(v) for k, v in fuzzy.items()}, typo_min)


def _without_courtesy(folded: str) -> str:
    """The folded answer without one courtesy word at its end or start ("nadaadeclararobrigado")."""
    for word in _COURTESY:
        if folded.endswith(word) and len(folded) > len(word):
            return folded[: -len(word)]
        if folded.startswith(word) and len(folded) > len(word):
            return folded[len(word) :]
    return folded


def is_non_answer(text: str) -> bool:
    """Tell whether an answer says nothing.

    True for an empty answer, one without any letter ("-", "...", "?", "0", "10", emoji only), one made
    only of redaction placeholders (``[URL]``), and a whole-answer match (ignoring case, accents,
    punctuation and spaces) with a known non-answer in en/pt/es/fr/nl: "n/a", "none", "no comment",
    "nada", "sem comentários", "sin comentarios", "rien à dire", "RAS", "geen opmerkingen", "n.v.t."
    (the list: ``pipeline/resources/non_answers.yaml``), also with one typo in a phrase of eight letters
    or more ("Mada a declarar") and with a courtesy word around it ("Nada a declarar, obrigado").
    Only whole answers match: "nothing works" is an answer.

    Args:
        text: The answer (normalised or redacted).

    Returns:
        Whether the answer is a non-answer.
    """
    if not isinstance(text, str):
        text = normalise_text(text)
    text = _PLACEHOLDER_RE.sub(" ", text)
    if _LETTER_RE.search(text) is None:
        return True
    if len(text) > 60:  # every listed phrase is short; skip the folding work on real answers
        return False
    listed = load_non_answers()
    folded = _fold(text)
    return listed.matches(folded) or listed.matches(_without_courtesy(folded))
