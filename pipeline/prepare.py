"""Prepare text: the stage that runs before any model sees a survey answer.

For every answer it normalises the text, truncates overlong answers, redacts personal data (PII), flags
non-answers ("n/a", "nada", "rien à dire"...), detects the language and splits the answer into sentences.
Models downstream only ever see ``text_redacted`` and ``sentences``.

This is a plain library module: no Prefect, no I/O. spaCy and lingua are imported lazily by the parts that
need them, so ``import pipeline.prepare`` stays cheap.

Example:
    >>> from pipeline.prepare import PrepareConfig, prepare
    >>> out = prepare(df, PrepareConfig(languages=("en", "pt")), text_column="comment")
"""

from __future__ import annotations

import logging
import math
import re
import threading
import time
import unicodedata
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from pipeline.errors import ConfigError, MissingDependencyError, SchemaError, missing_columns
from pipeline.pii import PII_KINDS, PLACEHOLDERS, redact_pii
from pipeline.pii import PLACEHOLDER_RE as _PLACEHOLDER_RE

if TYPE_CHECKING:  # pragma: no cover - typing only; the real imports are lazy
    from spacy.language import Language as SpacyLanguage

logger = logging.getLogger(__name__)

__all__ = [
    "LINGUA_LANGUAGES",
    "OUTPUT_COLUMNS",
    "PII_KINDS",
    "PLACEHOLDERS",
    "LanguageDetector",
    "PrepareConfig",
    "detect_languages",
    "is_non_answer",
    "normalise_text",
    "prepare",
    "redact_and_truncate",
    "redact_pii",
    "split_sentences",
]

#: Language returned when the language cannot be told (too short, no letters, low confidence, or a
#: language outside the configured set).
UNDETERMINED = "und"

#: Columns returned by :func:`prepare`, in order.
OUTPUT_COLUMNS: tuple[str, ...] = (
    "text_clean",
    "text_redacted",
    "text_truncated",
    "pii_found",
    "language",
    "language_confidence",
    "is_non_answer",
    "sentences",
)

#: ISO 639-1 codes of the 75 languages lingua 2.x knows. Kept here so that a config can be validated
#: without importing lingua (a test checks it against the installed lingua).
# fmt: off
LINGUA_LANGUAGES: frozenset[str] = frozenset((
    "af", "ar", "az", "be", "bg", "bn", "bs", "ca", "cs", "cy", "da", "de", "el", "en", "eo", "es", "et",
    "eu", "fa", "fi", "fr", "ga", "gu", "he", "hi", "hr", "hu", "hy", "id", "is", "it", "ja", "ka", "kk",
    "ko", "la", "lg", "lt", "lv", "mi", "mk", "mn", "mr", "ms", "nb", "nl", "nn", "pa", "pl", "pt", "ro",
    "ru", "sk", "sl", "sn", "so", "sq", "sr", "st", "sv", "sw", "ta", "te", "th", "tl", "tn", "tr", "ts",
    "uk", "ur", "vi", "xh", "yo", "zh", "zu",
))
# fmt: on

#: Languages that are scored *besides* the configured ones, only to reject them. Restricted to the five
#: default languages, lingua calls 96% of German answers Dutch (often with confidence > 0.9) and two thirds
#: of Turkish ones Spanish/Dutch/English, so these would reach models as the wrong language. When one of
#: these wins, the answer is "und". Measured on 5,000 mixed dev texts, this leaves the accuracy on the
#: configured languages unchanged (confidences among configured languages are renormalised) and rejects
#: 100% of German and Turkish, at about 2.4x the detection time. Cyrillic, CJK, Arabic... texts need no
#: guard: lingua gives every Latin-script language a confidence of 0 for them.
DEFAULT_REJECT_LANGUAGES: tuple[str, ...] = ("de", "it", "pl", "tr")

# Only the first characters of an answer are used to detect its language: plenty for lingua, and it keeps
# the detection time of a 5,000-character answer bounded.
_DETECT_MAX_CHARS = 1000


# --------------------------------------------------------------------------------------------------------
# Configuration
# --------------------------------------------------------------------------------------------------------


def _as_code_tuple(name: str, value: Any) -> tuple[str, ...]:
    """Coerce a list/tuple of codes to a lower-cased tuple; refuse a bare string with a fix-it message."""
    if isinstance(value, str):
        raise ConfigError(f"{name} must be a sequence of codes, e.g. ({value!r},), not the string {value!r}.")
    try:
        codes = tuple(str(code).strip().lower() for code in value)
    except TypeError as exc:
        raise ConfigError(f"{name} must be a sequence of codes; found {type(value).__name__}.") from exc
    return codes


def _check_languages(name: str, codes: tuple[str, ...], *, allow_empty: bool) -> None:
    if not codes and not allow_empty:
        raise ConfigError(f"{name} is empty; give at least one ISO 639-1 code, e.g. ('en',).")
    bad = [code for code in codes if code not in LINGUA_LANGUAGES]
    if bad:
        raise ConfigError(
            f"{name}: unknown ISO 639-1 code(s) {bad}. Valid options (languages lingua knows): "
            f"{sorted(LINGUA_LANGUAGES)}."
        )
    duplicates = sorted({code for code in codes if codes.count(code) > 1})
    if duplicates:
        raise ConfigError(f"{name}: duplicated code(s) {duplicates}; list each language once.")


def _check_kinds(name: str, kinds: tuple[str, ...]) -> None:
    bad = [kind for kind in kinds if kind not in PII_KINDS]
    if bad:
        raise ConfigError(f"{name}: unknown PII kind(s) {bad}. Valid options: {list(PII_KINDS)}.")


@dataclass(frozen=True)
class PrepareConfig:
    """Options of the prepare-text stage. Validates itself on creation.

    Attributes:
        languages: ISO 639-1 codes of the languages the survey is expected in. Answers in any other
            language get ``language == "und"``.
        min_language_confidence: Below this confidence (0..1, among the configured languages) the
            language is ``"und"``.
        min_chars_for_language: Answers with fewer letters than this get ``"und"`` without detection.
        max_chars: Longer answers are cut at a sentence (else word) boundary and flagged
            ``text_truncated``.
        redact: PII kinds to redact; any of :data:`PII_KINDS` (``"url", "email", "iban", "tax_id",
            "card", "phone", "handle"``), all of them by default.
        reject_languages: Languages scored besides ``languages`` only so that answers written in them come
            out ``"und"`` instead of being forced into the closest configured language (German into
            Dutch). Codes that are also in ``languages`` are ignored. ``()`` gives plain restricted
            detection.
        short_text_words: An answer of at most this many words whose detection is unsure (``"und"``, or
            a confidence below ``sure_confidence``) takes its row's declared language (a ``lang``
            column), else the language its batch makes most likely (see :func:`settle_short_answers`):
            "nada a declarar" is 57% Spanish to lingua, but in a Portuguese export it is Portuguese.
            0 switches this off.
        sure_confidence: At or above this confidence a short answer keeps its detected language.

    Raises:
        ConfigError: If a value is invalid; the message lists the valid options.
    """

    languages: tuple[str, ...] = ("en", "pt", "es", "fr", "nl")
    min_language_confidence: float = 0.5
    min_chars_for_language: int = 3
    max_chars: int = 5000
    redact: tuple[str, ...] = PII_KINDS
    reject_languages: tuple[str, ...] = DEFAULT_REJECT_LANGUAGES
    short_text_words: int = 5
    sure_confidence: float = 0.8

    def __post_init__(self) -> None:
        languages = _as_code_tuple("PrepareConfig.languages", self.languages)
        _check_languages("PrepareConfig.languages", languages, allow_empty=False)
        reject = _as_code_tuple("PrepareConfig.reject_languages", self.reject_languages)
        _check_languages("PrepareConfig.reject_languages", reject, allow_empty=True)
        redact = _as_code_tuple("PrepareConfig.redact", self.redact)
        _check_kinds("PrepareConfig.redact", redact)
        for name in ("min_language_confidence", "sure_confidence"):
            conf = getattr(self, name)
            if isinstance(conf, bool) or not isinstance(conf, int | float) or not 0.0 <= conf <= 1.0:
                raise ConfigError(f"PrepareConfig.{name} must be a number in [0, 1]; got {conf!r}.")
        for name in ("min_chars_for_language", "max_chars", "short_text_words"):
            value = getattr(self, name)
            low = 1 if name == "max_chars" else 0
            if isinstance(value, bool) or not isinstance(value, int) or value < low:
                raise ConfigError(f"PrepareConfig.{name} must be an integer >= {low}; got {value!r}.")
        # frozen dataclass: normalised values are written through object.__setattr__
        object.__setattr__(self, "languages", languages)
        object.__setattr__(self, "reject_languages", reject)
        object.__setattr__(self, "redact", redact)
        object.__setattr__(self, "min_language_confidence", float(self.min_language_confidence))
        object.__setattr__(self, "sure_confidence", float(self.sure_confidence))


# --------------------------------------------------------------------------------------------------------
# Normalisation and truncation
# --------------------------------------------------------------------------------------------------------

# Control characters (Cc) that are not whitespace, the replacement character U+FFFD (left by bad decoding),
# and lone surrogates (they cannot be written as UTF-8, so they would break every writer downstream).
_JUNK_RE = re.compile("[\x00-\x08\x0e-\x1b\x7f-\x84\x86-\x9f\ufffd\ud800-\udfff]")
# Python's \s covers \t \n \r \v \f, \x1c-\x1f, NEL, NBSP, U+2028 and the other Unicode spaces.
_SPACE_RE = re.compile(r"\s+")


def is_missing(value: object) -> bool:
    """Whether a cell is missing: None, NaN or NA (a list or a string never is)."""
    if value is None:
        return True
    if isinstance(value, str | bytes | bytearray):
        return False
    if isinstance(value, float):
        return math.isnan(value)
    try:
        result = pd.isna(value)
    except (TypeError, ValueError):
        return False
    return isinstance(result, bool | np.bool_) and bool(result)


def normalise_text(text: object) -> str:
    """Normalise one raw answer into clean single-line text.

    None/NaN/NA become ``""``; bytes are decoded as UTF-8 (undecodable bytes dropped); other values go
    through ``str``. The text is NFC-normalised, control characters and U+FFFD are removed, line breaks
    and every run of whitespace become one space, and the ends are stripped. Nothing else is changed
    (no lower-casing, no spelling fixes).

    Args:
        text: The raw value of the answer cell, of any type.

    Returns:
        The normalised text, possibly empty.
    """
    if is_missing(text):
        return ""
    if isinstance(text, bytes | bytearray | memoryview):
        text = bytes(text).decode("utf-8", errors="replace")
    elif not isinstance(text, str):
        text = str(text)
    text = unicodedata.normalize("NFC", text)
    text = _JUNK_RE.sub("", text)
    return _SPACE_RE.sub(" ", text).strip()


_SENTENCE_END_RE = re.compile(r"[.!?…。！？](?=\s)")


def _truncate(text: str, max_chars: int) -> tuple[str, bool]:
    """Cut ``text`` to at most ``max_chars``, at the last sentence end, else the last space, in the window."""
    if len(text) <= max_chars:
        return text, False
    floor = max_chars // 2  # never throw away more than half of the allowed length to find a boundary
    cut = None
    for match in _SENTENCE_END_RE.finditer(text, floor, max_chars + 1):
        cut = match.end()
    if cut is None:
        space = text.rfind(" ", floor, max_chars + 1)
        cut = space if space > 0 else max_chars
    return text[:cut].rstrip(), True


# --------------------------------------------------------------------------------------------------------
# PII redaction
# --------------------------------------------------------------------------------------------------------

# The patterns, checksums and the phonenumbers-based phone rules live in pipeline.pii; every public name
# (PII_KINDS, PLACEHOLDERS, redact_pii) is re-exported here, where the stage and its callers import them.

#: How far past ``max_chars`` redaction reads before the cut is made: an e-mail, IBAN, tax id, phone or card
#: number that straddles the cut is then replaced whole (all of them are far shorter than this).
_REDACT_OVERLAP = 256


def redact_and_truncate(
    text: str, max_chars: int, kinds: Iterable[str] = PII_KINDS
) -> tuple[str, bool, dict[str, int]]:
    """Redact PII, then cut to at most ``max_chars`` (see :func:`_truncate` for where it cuts).

    Cutting first could split a number at the cut (the first groups of a card or phone number) into a
    piece that no pattern recognises any more, which would then be kept. Only the first
    ``max_chars + 256`` characters are read, so a 50,000-character answer costs no more than a short one.

    Returns:
        The redacted, cut text; whether it was cut; replacements per requested kind in what is kept.
    """
    if len(text) <= max_chars:
        safe, counts = redact_pii(text, kinds)
        return safe, False, counts
    head = text[: max_chars + _REDACT_OVERLAP]
    safe, counts = redact_pii(head, kinds)
    kept, _ = _truncate(safe, max_chars)
    for kind in counts:  # what was replaced beyond the cut is not in the kept text
        placeholder = PLACEHOLDERS[kind]
        counts[kind] = max(0, min(counts[kind], kept.count(placeholder) - head.count(placeholder)))
    return kept, True, counts


# --------------------------------------------------------------------------------------------------------
# Non-answers
# --------------------------------------------------------------------------------------------------------

# Whole answers that say nothing, per language, in pipeline/resources/non_answers.yaml. They are compared
# after folding: lower case, accents removed, and everything that is not a letter or digit removed (so
# "N/A", "n.a.", "No comments!!" and "nocomment" all match); long enough phrases also with one typo.
NON_ANSWERS_FILE = Path(__file__).resolve().parent / "resources" / "non_answers.yaml"
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


# --------------------------------------------------------------------------------------------------------
# Language detection
# --------------------------------------------------------------------------------------------------------

_NON_LETTERS_RE = re.compile(r"[\W\d_]+")


def _import_lingua() -> Any:
    try:
        import lingua
    except ImportError as exc:  # pragma: no cover - depends on the environment
        raise MissingDependencyError(
            "Language detection needs lingua: pip install 'lingua-language-detector>=2.0'."
        ) from exc
    return lingua


def _detection_text(text: str) -> str:
    """What lingua sees: no placeholders (English words), at most the first ~1,000 characters."""
    text = _PLACEHOLDER_RE.sub(" ", text)
    if len(text) > _DETECT_MAX_CHARS:
        cut = text.rfind(" ", 0, _DETECT_MAX_CHARS)
        text = text[: cut if cut > 0 else _DETECT_MAX_CHARS]
    return text


class LanguageDetector:
    """Language identification with lingua, restricted to the configured languages.

    The lingua detector is built lazily, once, and reused. Detection runs in bulk (lingua's parallel
    API) over the distinct texts only.

    Answers with fewer than ``min_chars`` letters (after removing redaction placeholders) are
    ``("und", 0.0)`` without detection. Otherwise lingua scores the configured languages plus
    ``reject_languages``. If a reject language wins, the answer is ``("und", 0.0)``. If not, the
    confidence is the winner's share among the configured languages (the value restricted detection
    would give), and below ``min_confidence`` the answer is ``("und", confidence)``.

    Args:
        languages: ISO 639-1 codes to detect.
        min_confidence: Minimum confidence (0..1) for a language to be returned.
        min_chars: Minimum number of letters for detection to be tried.
        reject_languages: Languages scored only to be rejected; ``None`` means
            :data:`DEFAULT_REJECT_LANGUAGES`. Codes in ``languages`` are ignored here.

    Raises:
        ConfigError: If a language code is unknown to lingua or a threshold is out of range.
    """

    def __init__(
        self,
        languages: Sequence[str],
        min_confidence: float = 0.5,
        min_chars: int = 3,
        *,
        reject_languages: Sequence[str] | None = None,
    ) -> None:
        config = PrepareConfig(
            languages=tuple(languages) if not isinstance(languages, str) else languages,  # type: ignore[arg-type]
            min_language_confidence=min_confidence,
            min_chars_for_language=min_chars,
            reject_languages=DEFAULT_REJECT_LANGUAGES if reject_languages is None else reject_languages,  # type: ignore[arg-type]
        )
        self.languages = config.languages
        self.min_confidence = config.min_language_confidence
        self.min_chars = config.min_chars_for_language
        self.reject_languages = tuple(c for c in config.reject_languages if c not in config.languages)
        self._detector: Any = None
        self._lock = threading.Lock()

    def __repr__(self) -> str:
        return (
            f"LanguageDetector(languages={self.languages!r}, min_confidence={self.min_confidence}, "
            f"min_chars={self.min_chars}, reject_languages={self.reject_languages!r})"
        )

    def _lingua(self) -> Any:
        if self._detector is None:
            with self._lock:
                if self._detector is None:
                    lingua = _import_lingua()
                    codes = [getattr(lingua.IsoCode639_1, c.upper()) for c in self.languages]
                    codes += [getattr(lingua.IsoCode639_1, c.upper()) for c in self.reject_languages]
                    # lingua refuses a detector of one language; a reject language makes it two
                    if len(codes) == 1:
                        codes.append(
                            lingua.IsoCode639_1.DE if self.languages[0] != "de" else lingua.IsoCode639_1.EN
                        )
                    self._detector = lingua.LanguageDetectorBuilder.from_iso_codes_639_1(*codes).build()
        return self._detector

    def _decide(self, values: Sequence[Any]) -> tuple[str, float, dict[str, float]]:
        if not values:
            return UNDETERMINED, 0.0, {}
        configured = set(self.languages)
        shares = {
            code: float(v.value)
            for v in values
            if (code := v.language.iso_code_639_1.name.lower()) in configured
        }
        total = sum(shares.values())
        shares = {code: value / total for code, value in shares.items()} if total > 0 else {}
        top = values[0]
        top_code = top.language.iso_code_639_1.name.lower()
        if top_code not in configured or top.value <= 0.0:
            return UNDETERMINED, 0.0, {}  # a rejected language: no configured one is plausible
        confidence = shares.get(top_code, 0.0)
        if confidence < self.min_confidence:
            return UNDETERMINED, confidence, shares
        return top_code, confidence, shares

    def detect(self, texts: Sequence[str]) -> list[tuple[str, float]]:
        """Detect the language of each text.

        Args:
            texts: The texts (normalised/redacted), as a list (or any sequence) of strings.

        Returns:
            One ``(iso_code or "und", confidence)`` per text, in order.

        Raises:
            TypeError: If given a single string instead of a list of strings.
        """
        return [(lang, confidence) for lang, confidence, _ in self.detect_with_shares(texts)]

    def detect_with_shares(self, texts: Sequence[str]) -> list[tuple[str, float, dict[str, float]]]:
        """Like :meth:`detect`, plus each configured language's share of lingua's confidence for the text
        (``{}`` when the text is too short to try, or written in a rejected language)."""
        if isinstance(texts, str):
            raise TypeError(
                "LanguageDetector.detect expects a list of strings, not a single string: use [text]."
            )
        texts = ["" if t is None else (t if isinstance(t, str) else normalise_text(t)) for t in texts]
        results: list[tuple[str, float, dict[str, float]]] = [(UNDETERMINED, 0.0, {})] * len(texts)
        todo: dict[str, list[int]] = {}
        for i, text in enumerate(texts):
            candidate = _detection_text(text)
            if len(_NON_LETTERS_RE.sub("", candidate)) < max(self.min_chars, 1):
                continue
            todo.setdefault(candidate, []).append(i)
        if not todo:
            return results
        unique = list(todo)
        values = self._lingua().compute_language_confidence_values_in_parallel(unique)
        for candidate, confidence_values in zip(unique, values, strict=True):
            decided = self._decide(confidence_values)
            for i in todo[candidate]:
                results[i] = decided
        return results


# lingua keeps its language models in process-wide caches, so a few cached detectors cost little extra
@lru_cache(maxsize=4)
def _cached_detector(
    languages: tuple[str, ...], min_confidence: float, min_chars: int, reject: tuple[str, ...]
) -> LanguageDetector:
    return LanguageDetector(languages, min_confidence, min_chars, reject_languages=reject)


_WORD_RE = re.compile(r"[^\W\d_]+")
#: A short answer takes the language its batch makes most likely only at this weighed share or above
#: (in a mixed batch "Correcto." is 51% English once weighed: it stays undetermined).
_SETTLED_MIN = 0.6


def _declared(value: object, configured: Sequence[str]) -> str | None:
    """A declared language cell as a configured ISO code, else None ("PT " -> "pt", "de" -> None)."""
    if is_missing(value):
        return None
    code = str(value).strip().lower()
    return code if code in configured else None


def settle_short_answers(
    texts: Sequence[str],
    detected: Sequence[tuple[str, float, dict[str, float]]],
    config: PrepareConfig,
    declared: Sequence[object] | None = None,
) -> list[tuple[str, float]]:
    """Give short answers whose detection is unsure the language their batch is written in.

    An answer of at most ``config.short_text_words`` words that came out ``"und"`` or below
    ``config.sure_confidence`` takes its row's declared language when there is one among the configured
    languages. Otherwise lingua's shares for it are weighed by how common each language is among the
    batch's surely detected answers (add-one smoothed), and the answer takes the winner when its weighed
    share reaches ``config.min_language_confidence`` (and at least 0.6). In a Portuguese export "nada a declarar" (57%
    Spanish, 34% Portuguese to lingua) becomes Portuguese; in a mixed batch a short Spanish answer stays
    Spanish. Everything else keeps its detection.

    Args:
        texts: The answers.
        detected: :meth:`LanguageDetector.detect_with_shares` of ``texts``.
        config: The options (``languages``, ``short_text_words``, ``sure_confidence``,
            ``min_language_confidence``).
        declared: Each row's declared language (e.g. an export's ``lang`` column), or None.

    Returns:
        ``(language, confidence)`` per answer; a settled answer's confidence is its weighed share (1.0
        when its language was declared and lingua could not tell).
    """
    out = [(lang, confidence) for lang, confidence, _ in detected]
    if config.short_text_words <= 0 or not out:
        return out
    short = [len(_WORD_RE.findall(t or "")) <= config.short_text_words for t in texts]
    unsure = [lang == UNDETERMINED or conf < config.sure_confidence for lang, conf in out]
    sure = Counter(lang for (lang, _), s, u in zip(out, short, unsure, strict=True) if not (s and u))
    sure.pop(UNDETERMINED, None)
    total = sum(sure.values()) + len(config.languages)
    prior = {lang: (sure[lang] + 1) / total for lang in config.languages}
    for i, (_, _, shares) in enumerate(detected):
        if not (short[i] and unsure[i] and (texts[i] or "").strip()):
            continue
        own = _declared(declared[i], config.languages) if declared is not None else None
        if own is not None:
            out[i] = (own, shares.get(own, 1.0) if shares else 1.0)
            continue
        if not sure or not shares:
            continue
        weighed = {lang: share * prior.get(lang, 0.0) for lang, share in shares.items()}
        norm = sum(weighed.values())
        best = max(weighed, key=weighed.__getitem__) if norm > 0 else None
        if best is not None and weighed[best] / norm >= max(config.min_language_confidence, _SETTLED_MIN):
            out[i] = (best, weighed[best] / norm)
    return out


def detect_languages(
    texts: Sequence[str], config: PrepareConfig | None = None, declared: Sequence[object] | None = None
) -> list[tuple[str, float]]:
    """Each answer's language as the prepare stage decides it: lingua restricted to the configured
    languages (:class:`LanguageDetector`), then :func:`settle_short_answers` over the batch.

    Args:
        texts: The answers of one batch (normalised/redacted).
        config: Detection options; ``PrepareConfig()`` when None.
        declared: Each row's declared language (an export's ``lang`` column), or None.
    """
    config = config or PrepareConfig()
    if declared is not None and len(declared) != len(texts):
        raise ValueError(f"declared languages ({len(declared)}) and texts ({len(texts)}) differ in length")
    detector = _cached_detector(
        config.languages,
        config.min_language_confidence,
        config.min_chars_for_language,
        config.reject_languages,
    )
    texts = list(texts)
    return settle_short_answers(texts, detector.detect_with_shares(texts), config, declared)


# --------------------------------------------------------------------------------------------------------
# Sentences
# --------------------------------------------------------------------------------------------------------


@lru_cache(maxsize=32)
def _sentencizer(lang: str) -> tuple[SpacyLanguage, re.Pattern[str]]:
    """A blank spaCy pipeline with a sentencizer for ``lang`` (``xx`` if spaCy has no such language).

    Also returns a regex of the sentencizer's punctuation: a text without any of it (ignoring its end) is
    one sentence, and spaCy is skipped for it (same result, no tokenisation).
    """
    try:
        import spacy
    except ImportError as exc:  # pragma: no cover - depends on the environment
        raise MissingDependencyError("Sentence splitting needs spaCy: pip install 'spacy>=3.7,<4'.") from exc
    code = lang if lang and lang != UNDETERMINED else "xx"
    try:
        nlp = spacy.blank(code)
    except (ImportError, ValueError, KeyError) as exc:
        # unknown code, or a language whose tokenizer needs an extra package (ja, zh, ko, th...)
        logger.warning(
            "spaCy has no usable blank pipeline for %r (%s); splitting sentences with 'xx'.", lang, exc
        )
        nlp = spacy.blank("xx")
    nlp.add_pipe("sentencizer")
    nlp.max_length = 10_000_000  # only a tokenizer and a sentencizer: long texts cost time, not memory
    punct = nlp.get_pipe("sentencizer").punct_chars
    punct_re = re.compile("[" + re.escape("".join(sorted(punct))) + "]")
    return nlp, punct_re


def _single_sentence(text: str, punct_re: re.Pattern[str]) -> bool:
    end = len(text)
    while end and (text[end - 1].isspace() or punct_re.match(text, end - 1)):
        end -= 1
    return punct_re.search(text, 0, end) is None


def _split_many(texts: Sequence[str], lang: str) -> list[list[str]]:
    """Split many texts of one language; spaCy runs (batched) only on texts that may hold several."""
    nlp, punct_re = _sentencizer(lang)
    out: list[list[str]] = [[] for _ in texts]
    todo: list[int] = []
    for i, text in enumerate(texts):
        text = text.strip()
        if not text:
            continue
        if _single_sentence(text, punct_re):
            out[i] = [text]
        else:
            todo.append(i)
    docs = nlp.pipe((texts[i] for i in todo), batch_size=256)
    for i, doc in zip(todo, docs, strict=True):
        sentences = [s.text.strip() for s in doc.sents]
        out[i] = [s for s in sentences if s] or [texts[i].strip()]
    return out


def split_sentences(text: str, lang: str) -> list[str]:
    """Split a text into sentences with spaCy's rule-based sentencizer.

    Uses ``spacy.blank(lang)`` (``"xx"`` for ``"und"`` or a language spaCy lacks), cached per language.

    Args:
        text: The text to split.
        lang: ISO 639-1 code of its language, or ``"und"``.

    Returns:
        The non-empty sentences, stripped; ``[]`` only for an empty text.
    """
    if not isinstance(text, str):
        text = normalise_text(text)
    return _split_many([text], lang)[0]


def prepare_config_of(config: Any) -> PrepareConfig:
    """The prepare stage's options from an enrichment config (:class:`pipeline.config.EnrichmentConfig`)."""
    return PrepareConfig(
        languages=tuple(config.languages),
        min_language_confidence=config.prepare.min_language_confidence,
        max_chars=config.prepare.max_chars,
    )


def model_texts(values: Iterable[object], config: PrepareConfig | None = None) -> list[str]:
    """Texts as the nightly run's models see them (``text_redacted`` of :func:`prepare`).

    Normalised, truncated at ``config.max_chars`` and PII-redacted, without language detection or
    sentence splitting. Labelled files go through this before training, evaluation and prediction, so
    that a model is trained and measured on the text it will be given in production (and never learns
    anyone's e-mail address).

    Args:
        values: Raw text cells of any type (None and NaN become ``""``).
        config: Options (``max_chars``, ``redact``); ``PrepareConfig()`` when None.
    """
    config = config or PrepareConfig()
    return [redact_and_truncate(normalise_text(v), config.max_chars, config.redact)[0] for v in values]


def split_sentences_many(
    texts: Sequence[str], languages: Sequence[str | None] | None = None, config: PrepareConfig | None = None
) -> list[list[str]]:
    """Sentences of many texts, each split with its language's sentencizer, as :func:`prepare` does.

    Args:
        texts: Prepared texts (see :func:`model_texts`).
        languages: The language of each text; None detects them as :func:`prepare` does (restricted to
            ``config.languages``). A missing or empty value splits with the multilingual ``xx`` rules.
        config: Detection options; ``PrepareConfig()`` when None.
    """
    texts = ["" if t is None else str(t) for t in texts]
    if languages is None:
        languages = [lang for lang, _ in detect_languages(texts, config)]
    elif len(languages) != len(texts):
        raise ValueError(f"languages ({len(languages)}) and texts ({len(texts)}) differ in length")
    out: list[list[str]] = [[] for _ in texts]
    by_lang: dict[str, list[int]] = {}
    for i, lang in enumerate(languages):
        code = str(lang).strip().lower() if lang is not None else ""
        by_lang.setdefault(code if code not in ("", "none", "nan") else UNDETERMINED, []).append(i)
    for lang, rows in by_lang.items():
        for i, split in zip(rows, _split_many([texts[i] for i in rows], lang), strict=True):
            out[i] = split
    return out


# --------------------------------------------------------------------------------------------------------
# The stage
# --------------------------------------------------------------------------------------------------------


def prepare(
    df: pd.DataFrame,
    config: PrepareConfig | None = None,
    text_column: str = "comment",
    language_column: str = "lang",
) -> pd.DataFrame:
    """Prepare the answers in ``df[text_column]`` for the models.

    Never mutates ``df`` and never fails on a bad value (None, NaN, numbers, bytes, huge strings).

    Args:
        df: Input rows; only ``text_column`` (and ``language_column`` when present) is read.
        config: Options; ``PrepareConfig()`` when None.
        text_column: The column holding the free-text answer.
        language_column: A column declaring each answer's language (an export's ``lang``); used only
            for short answers whose detection is unsure (see :func:`settle_short_answers`). Optional.

    Returns:
        A new DataFrame with ``df``'s index and exactly these columns:
        ``text_clean`` (normalised, truncated), ``text_redacted`` (the normalised text PII-redacted,
        then truncated, so that nothing straddling the cut survives in part; what models see),
        ``text_truncated`` (bool), ``pii_found`` (list of PII kinds found),
        ``language`` (ISO 639-1 or ``"und"``; a short, unsure answer takes its batch's language, see
        :func:`detect_languages`), ``language_confidence`` (float), ``is_non_answer`` (bool),
        ``sentences`` (list of redacted sentences; ``[]`` for non-answers).

    Raises:
        SchemaError: If ``df`` is not a DataFrame or lacks ``text_column``.
        ConfigError: If ``config`` is not a PrepareConfig.
    """
    if not isinstance(df, pd.DataFrame):
        raise SchemaError(
            f"prepare() expects a pandas DataFrame with a {text_column!r} column; got {type(df).__name__}. "
            f"Wrap a list of texts as pd.DataFrame({{{text_column!r}: texts}})."
        )
    if config is None:
        config = PrepareConfig()
    elif not isinstance(config, PrepareConfig):
        raise ConfigError(f"prepare() expects a PrepareConfig; got {type(config).__name__}.")
    if text_column not in df.columns:
        raise missing_columns("prepare()", [text_column], [str(c) for c in df.columns])

    started = time.perf_counter()
    raw = df[text_column].tolist()  # a copy: nothing below can touch df
    clean: list[str] = []
    truncated: list[bool] = []
    redacted: list[str] = []
    pii_found: list[list[str]] = []
    pii_total: Counter[str] = Counter()
    for value in raw:
        normal = normalise_text(value)
        text, _ = _truncate(normal, config.max_chars)  # the text_clean column
        safe, was_cut, counts = redact_and_truncate(normal, config.max_chars, config.redact)
        clean.append(text)
        truncated.append(was_cut)
        redacted.append(safe)
        found = [kind for kind in PII_KINDS if counts.get(kind)]
        pii_found.append(found)
        pii_total.update({k: v for k, v in counts.items() if v})

    non_answer = [is_non_answer(t) for t in redacted]
    declared = df[language_column].tolist() if language_column in df.columns else None
    detected = detect_languages(redacted, config, declared)

    sentences: list[list[str]] = [[] for _ in redacted]
    rows = [i for i, text in enumerate(redacted) if text and not non_answer[i]]
    split = split_sentences_many([redacted[i] for i in rows], [detected[i][0] for i in rows])
    for i, parts in zip(rows, split, strict=True):
        sentences[i] = parts

    out = pd.DataFrame(
        {
            "text_clean": pd.Series(clean, index=df.index, dtype=object),
            "text_redacted": pd.Series(redacted, index=df.index, dtype=object),
            "text_truncated": pd.Series(truncated, index=df.index, dtype=bool),
            "pii_found": pd.Series(pii_found, index=df.index, dtype=object),
            "language": pd.Series([lang for lang, _ in detected], index=df.index, dtype=object),
            "language_confidence": pd.Series([c for _, c in detected], index=df.index, dtype=float),
            "is_non_answer": pd.Series(non_answer, index=df.index, dtype=bool),
            "sentences": pd.Series(sentences, index=df.index, dtype=object),
        },
        index=df.index,
        columns=list(OUTPUT_COLUMNS),
    )
    seconds = time.perf_counter() - started
    logger.info(
        "prepare: %d rows in %.2fs (%.0f rows/s); non-answers=%d, truncated=%d, pii=%s, languages=%s",
        len(out),
        seconds,
        len(out) / seconds if seconds > 0 else float("inf"),
        sum(non_answer),
        sum(truncated),
        dict(pii_total),
        dict(Counter(out["language"])),
    )
    return out
