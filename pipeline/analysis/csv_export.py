"""CSV files people open in a spreadsheet: text that a spreadsheet would run as a formula is made inert.

Answers are written by customers, notes by anyone with dashboard access: a cell such as
``=HYPERLINK("http://x", "click")`` or ``@SUM(...)`` would otherwise be evaluated when the file is opened
in Excel, LibreOffice or Google Sheets (CSV injection, OWASP). Every text cell that starts with ``=``,
``+``, ``-``, ``@``, a tab or a carriage return gets a leading apostrophe, the marker spreadsheets read
as "this is text"; numbers, dates and other cells are written unchanged.
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd

FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")


def inert(value: object) -> object:
    """A text cell a spreadsheet shows as text (see the module docstring); anything else unchanged."""
    if isinstance(value, str) and value.startswith(FORMULA_STARTS):
        return "'" + value
    return value


def safe_frame(frame: pd.DataFrame) -> pd.DataFrame:
    """A copy of ``frame`` with every text cell made inert (the input is not changed)."""
    out = frame.copy()
    for col in out.columns:
        if out[col].dtype == object or pd.api.types.is_string_dtype(out[col]):
            out[col] = out[col].map(inert)
    return out


def write_csv(frame: pd.DataFrame, path: str | Path | None = None) -> bytes | None:
    """Write ``frame`` as UTF-8 CSV, spreadsheet-safe; to ``path``, or returned as bytes when None."""
    text = safe_frame(frame).to_csv(index=False)
    if path is None:
        return text.encode("utf-8")
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    Path(path).write_text(text, encoding="utf-8")
    return None
