"""Prepare text: the stage that runs before any model sees a survey answer.

For every answer it normalises the text , truncates overlong answers, redacts personal data (PII), flags
non-answers ("n/a", "nada", "rien à dire"...), detects the language and splits the answer into sentences.
Models downstream only ever see ``text_redacted`` and ``sentences``.

Modules: ``options`` (the stage's config), ``text`` (normalise, truncate, redact), ``non_answers``,
``language``, ``sentences``, ``stage`` (:func:`prepare`, every step on a frame).

A plain library package: no Prefect, no I/O. spaCy and lingua are imported lazily by the parts that
need them, so ``import pipeline.prepare`` stays cheap.

Example:
    >>> from pipeline.prepare import PrepareConfig, prepare
    >>> out = prepare(df, PrepareConfig(languages=("en", "pt")), text_column="comment")
"""

from pipeline.prepare.language import LanguageDetector, detect_languages
from pipeline.prepare.non_answers import NON_ANSWERS_FILE, NonAnswerList, is_non_answer, load_non_answers
from pipeline.prepare.options import LINGUA_LANGUAGES, UNDETERMINED, PrepareConfig, prepare_config_of
from pipeline.prepare.pii import PII_KINDS, PLACEHOLDERS, redact_pii
from pipeline.prepare.sentences import split_sentences, split_sentences_many
from pipeline.prepare.stage import OUTPUT_COLUMNS, prepare, release_prepare_models
from pipeline.prepare.text import is_missing, model_texts, normalise_text, redact_and_truncate

__all__ = [
    "LINGUA_LANGUAGES",
    "NON_ANSWERS_FILE",
    "OUTPUT_COLUMNS",
    "PII_KINDS",
    "PLACEHOLDERS",
    "UNDETERMINED",
    "LanguageDetector",
    "NonAnswerList",
    "PrepareConfig",
    "detect_languages",
    "is_missing",
    "is_non_answer",
    "load_non_answers",
    "model_texts",
    "normalise_text",
    "prepare",
    "prepare_config_of",
    "redact_and_truncate",
    "redact_pii",
    "release_prepare_models",
    "split_sentences",
    "split_sentences_many",
]
