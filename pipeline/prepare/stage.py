"""The prepare stage: :func:`prepare` runs every step on a frame of answers and returns new columns."""

from __future__ import annotations

import ctypes
import gc
import logging
import time
from collections import Counter
from typing import TYPE_CHECKING

import pandas as pd

from pipeline.errors import ConfigError, SchemaError, missing_columns
from pipeline.prepare.language import detect_languages, release_language_models
from pipeline.prepare.non_answers import is_non_answer
from pipeline.prepare.options import PrepareConfig
from pipeline.prepare.pii import PII_KINDS
from pipeline.prepare.sentences import release_sentencizers, split_sentences_many
from pipeline.prepare.text import _truncate, normalise_text, redact_and_truncate

if TYPE_CHECKING:  # pragma: no cover - typing only; the real imports are lazy
    pass

logger = logging.getLogger(__name__)


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


def release_prepare_models() -> None:
    """Free what the prepare stage keeps between batches (lingua's n-gram models, spaCy's pipelines and
    their vocabularies) and hand the freed heap back to the system.

    A run calls this when its pages are done, so that the topic stage starts from the encoder's
    footprint rather than the encoder's plus prepare's (bench/README.md, streamed batches: the peak of a
    20,000-row first run falls from 1.74 GB to the figure given there). The next batch loads the models
    again, lazily.
    """
    release_language_models()
    release_sentencizers()
    gc.collect()
    _trim_heap()


def _trim_heap() -> None:
    """glibc keeps freed memory in its arenas until ``malloc_trim`` returns it (nothing to do elsewhere)."""
    try:
        libc = ctypes.CDLL("libc.so.6")
    except OSError:  # pragma: no cover - not glibc (macOS, musl, Windows)
        return
    libc.malloc_trim(0)
