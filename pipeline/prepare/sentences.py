"""Sentence splitting with spaCy's rule-based sentencizer (loaded lazily, one per language)."""

from __future__ import annotations

import logging
import re
from collections.abc import Sequence
from functools import lru_cache
from typing import TYPE_CHECKING

from pipeline.errors import MissingDependencyError
from pipeline.prepare.language import detect_languages
from pipeline.prepare.options import UNDETERMINED, PrepareConfig
from pipeline.prepare.text import normalise_text

if TYPE_CHECKING:  # pragma: no cover - typing only; the real imports are lazy
    from spacy.language import Language as SpacyLanguage

logger = logging.getLogger(__name__)


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


def release_sentencizers() -> None:
    """Drop the cached spaCy pipelines (their vocabularies grow with every new word they tokenise)."""
    _sentencizer.cache_clear()


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
