"""The prepare stage's options (:class:`PrepareConfig`): languages, PII kinds, limits; checked when built."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from pipeline.config import DEFAULT_LANGUAGES
from pipeline.errors import ConfigError
from pipeline.prepare.pii import PII_KINDS

if TYPE_CHECKING:  # pragma: no cover - typing only; the real imports are lazy
    pass

#: Language returned when the language cannot be told (too short, no letters, low confidence, or a
#: language outside the configured set).
UNDETERMINED = "und"

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

    languages: tuple[str, ...] = DEFAULT_LANGUAGES
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


def prepare_config_of(config: Any) -> PrepareConfig:
    """The prepare stage's options from an enrichment config (:class:`pipeline.config.EnrichmentConfig`)."""
    return PrepareConfig(
        languages=tuple(config.languages),
        min_language_confidence=config.prepare.min_language_confidence,
        max_chars=config.prepare.max_chars,
    )
