"""Language detection with lingua, restricted to the configured languages; short answers settled by
their words."""

from __future__ import annotations

import re
import threading
import weakref
from collections import Counter
from collections.abc import Sequence
from functools import lru_cache
from typing import TYPE_CHECKING, Any

from pipeline.errors import optional_import
from pipeline.prepare.options import DEFAULT_REJECT_LANGUAGES, UNDETERMINED, PrepareConfig
from pipeline.prepare.pii import PLACEHOLDER_RE as _PLACEHOLDER_RE
from pipeline.prepare.text import is_missing, normalise_text

if TYPE_CHECKING:  # pragma: no cover - typing only; the real imports are lazy
    pass

# Only the first characters of an answer are used to detect its language: plenty for lingua, and it keeps
# the detection time of a 5,000-character answer bounded.
_DETECT_MAX_CHARS = 1000


# --------------------------------------------------------------------------------------------------------
# Language detection
# --------------------------------------------------------------------------------------------------------

_NON_LETTERS_RE = re.compile(r"[\W\d_]+")


def _import_lingua() -> Any:
    return optional_import(
        "lingua",
        "Language detection needs lingua: pip install 'lingua-language-detector>=2.0'.",
    )


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

    def unload(self) -> None:
        """Drop lingua's n-gram models (loaded again, lazily, by the next detection)."""
        with self._lock:
            if self._detector is not None:
                self._detector.unload_language_models()
                self._detector = None

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
    detector = LanguageDetector(languages, min_confidence, min_chars, reject_languages=reject)
    _BUILT.add(detector)
    return detector


#: The detectors :func:`_cached_detector` built (weakly: a detector the cache drops is gone).
_BUILT: weakref.WeakSet[LanguageDetector] = weakref.WeakSet()


def release_language_models() -> None:
    """Unload the n-gram models of the detectors the prepare stage built: about 280 MB for the default
    languages (measured); the next detection loads them again. The run calls this once its pages are
    done, before the topic stage needs the memory."""
    for detector in list(_BUILT):
        detector.unload()


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
