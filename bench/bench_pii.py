"""Cost of PII redaction (``pipeline.prepare.pii.redact_pii``) per 10,000 survey answers.

What it measures, median of ``--repeats`` runs (5 by default), each over the same 10,000 answers:

- ``all_kinds``: ``redact_pii`` with every kind (URLs, e-mails, IBANs, tax ids, cards, phones, handles),
  what the prepare stage runs on every answer;
- ``phone_only``: ``redact_pii(kinds=("phone",))``: the phonenumbers-based phone step alone (the
  candidate scan, phonenumbers' ``PhoneNumberMatcher`` on each candidate, the guards).

The answers: the bundled sample survey (``pipeline.demo.sample.generate_survey``, 10,000 rows, seed 0: about
4% with PII, about 29% with a digit, a few 50,000-character ones), and, when ``../shared/data`` is
there, 10,000 answers drawn from ``throughput_dev_texts.parquet`` (real reviews and tweets). Each answer
is normalised and cut to ``max_chars + 256`` (5,256) characters first, as ``prepare`` does before it
redacts. phonenumbers' caches (per candidate string) are cleared before every run, so a run does not
profit from the previous one; its metadata is loaded once before timing (a one-off per process, reported
as ``first_call_seconds``).

Example (from the repository root)::

    .venv/bin/python bench/bench_pii.py            # writes bench/results/pii.json
"""

from __future__ import annotations

import argparse
import json
import platform
import statistics
import sys
import time
from collections.abc import Callable
from datetime import UTC, datetime
from importlib.metadata import version
from pathlib import Path
from typing import Any

REPO_ROOT = Path(__file__).resolve().parents[1]
if str(REPO_ROOT) not in sys.path:  # run as a script from anywhere without installing the package
    sys.path.insert(0, str(REPO_ROOT))

from pipeline.demo.sample import generate_survey  # noqa: E402
from pipeline.prepare import normalise_text, pii  # noqa: E402
from pipeline.prepare.pii import phones as pii_phones  # noqa: E402

DEFAULT_OUT = REPO_ROOT / "bench" / "results" / "pii.json"
DEV_TEXTS = REPO_ROOT.parent / "shared" / "data" / "throughput_dev_texts.parquet"
N_ANSWERS = 10_000
MAX_CHARS = 5000 + 256  # what redact_and_truncate hands to redact_pii


def sample_answers(n: int) -> list[str]:
    """``n`` answers of the bundled sample survey, normalised and cut as prepare does."""
    comments = generate_survey(n=n, seed=0)["comment"].tolist()
    return [normalise_text(c)[:MAX_CHARS] for c in comments]


def dev_answers(n: int) -> list[str] | None:
    """``n`` answers from ../shared/data/throughput_dev_texts.parquet, or None when it is absent."""
    if not DEV_TEXTS.exists():
        return None
    import pandas as pd

    texts = pd.read_parquet(DEV_TEXTS, columns=["text"])["text"].sample(n=n, random_state=0)
    return [normalise_text(t)[:MAX_CHARS] for t in texts]


def clear_caches() -> None:
    pii_phones._valid_phones.cache_clear()
    pii_phones._possible_phone.cache_clear()


def time_runs(texts: list[str], redact: Callable[[str], Any], repeats: int) -> list[float]:
    """Seconds of each run of ``redact`` over every text, caches cleared before each."""
    seconds = []
    for _ in range(repeats):
        clear_caches()
        started = time.perf_counter()
        for text in texts:
            redact(text)
        seconds.append(time.perf_counter() - started)
    return seconds


def measure(texts: list[str], repeats: int) -> dict[str, Any]:
    """The figures of one corpus."""
    per_10k = N_ANSWERS / len(texts)
    found = [pii.redact_pii(t)[1] for t in texts]
    result: dict[str, Any] = {
        "answers": len(texts),
        "share_with_digit": sum(any(c.isdigit() for c in t) for t in texts) / len(texts),
        "share_with_pii": sum(any(counts.values()) for counts in found) / len(texts),
        "replacements": {k: sum(c[k] for c in found) for k in pii.PII_KINDS},
        "seconds_per_10k": {},
        "runs_seconds": {},
    }
    modes: dict[str, Callable[[str], Any]] = {
        "all_kinds": pii.redact_pii,
        "phone_only": lambda t: pii.redact_pii(t, kinds=("phone",)),
    }
    for name, redact in modes.items():
        runs = time_runs(texts, redact, repeats)
        result["runs_seconds"][name] = runs
        result["seconds_per_10k"][name] = statistics.median(runs) * per_10k
    return result


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--repeats", type=int, default=5, help="runs per mode (the median is reported)")
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT, help="JSON output file")
    args = parser.parse_args(argv)

    started = time.perf_counter()
    pii.redact_pii("call +33 6 12 34 56 78")  # loads phonenumbers and its metadata
    first_call = time.perf_counter() - started

    corpora = {"sample_survey": sample_answers(N_ANSWERS)}
    dev = dev_answers(N_ANSWERS)
    if dev is not None:
        corpora["dev_texts"] = dev
    results: dict[str, Any] = {
        "date": datetime.now(UTC).isoformat(timespec="seconds"),
        "python": platform.python_version(),
        "machine": platform.machine(),
        "phonenumbers": version("phonenumbers"),
        "repeats": args.repeats,
        "first_call_seconds": first_call,
        "corpora": {name: measure(texts, args.repeats) for name, texts in corpora.items()},
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(results, indent=2) + "\n")
    for name, figures in results["corpora"].items():
        s = figures["seconds_per_10k"]
        print(
            f"{name}: {s['all_kinds']:.2f} s per 10k answers (all kinds), {s['phone_only']:.2f} s (phones "
            f"alone); {figures['share_with_pii']:.1%} with PII, {figures['share_with_digit']:.1%} with a digit"
        )
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
