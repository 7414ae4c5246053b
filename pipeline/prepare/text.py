"""Normalisation, truncation and PII redaction of one answer's text (the patterns live in :mod:`pipeline.prepare.pii`)."""

from __future__ import annotations

import math
import re
import unicodedata
from collections.abc import Iterable
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

from pipeline.prepare.options import PrepareConfig
from pipeline.prepare.pii import PII_KINDS, PLACEHOLDERS, redact_pii

if TYPE_CHECKING:  # pragma: no cover - typing only; the real imports are lazy
    pass


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

# The patterns, checksums and the phonenumbers-based phone rules live in pipeline.prepare.pii; every public name
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
