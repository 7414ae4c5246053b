"""PII redaction (pipeline.prepare.pii): recall per kind and false positives on the test set of tests/pii_cases.py,
plus the checksums, the decisions documented in pipeline/prepare/pii/ and the wiring into pipeline.prepare.

A positive counts as found when the output is the answer with the kind's placeholder exactly in the
secret's place: the placeholder is there, no character of the secret survives, and nothing else changed.
A hard negative is a false positive when the output differs from the input in any way.
"""

from __future__ import annotations

import time
from collections import defaultdict

import pandas as pd
import pytest

import pipeline.prepare as prepare_module
import pipeline.prepare.pii as pii
from pipeline.prepare import PrepareConfig, model_texts, prepare
from pipeline.prepare.pii import (
    PII_KINDS,
    PLACEHOLDERS,
    cnpj_ok,
    cpf_ok,
    iban_ok,
    portuguese_nif_ok,
    redact_pii,
    spanish_id_ok,
)
from tests.pii_cases import LANGS, NEGATIVES, POSITIVES, Positive

PROMISED = ("email", "url", "phone", "card", "handle", "iban", "tax_id")
MIN_RECALL = 0.98
MAX_FALSE_POSITIVE_RATE = 0.02


def _redacted(case: Positive) -> str:
    return redact_pii(case.text)[0]


# --------------------------------------------------------------------------------------------------------
# The test set itself
# --------------------------------------------------------------------------------------------------------


def test_the_test_set_covers_every_kind_language_and_negative_category() -> None:
    by_kind: dict[str, list[Positive]] = defaultdict(list)
    for case in POSITIVES:
        by_kind[case.kind].append(case)
    assert set(by_kind) == set(PROMISED)
    for kind in PROMISED:
        assert len(by_kind[kind]) >= 40, (kind, len(by_kind[kind]))
        assert {c.lang for c in by_kind[kind]} == set(LANGS), kind
    subs = {c.sub for c in by_kind["tax_id"]}
    assert {"cpf", "cnpj", "dni", "nie", "nif_es", "nif_pt"} <= subs
    assert len([c for c in by_kind["url"] if c.sub == "scheme-less"]) >= 30
    assert len(NEGATIVES) >= 150
    categories = {n.category for n in NEGATIVES}
    assert {"order", "tracking", "postcode", "price", "date", "version", "flight", "time"} <= categories
    assert {"quantity", "percentage", "product", "year"} <= categories
    assert len({n.text for n in NEGATIVES}) == len(NEGATIVES)  # no duplicates inflating the rate


# --------------------------------------------------------------------------------------------------------
# Recall and false positives
# --------------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("kind", PROMISED)
def test_recall_per_kind(kind: str) -> None:
    cases = [c for c in POSITIVES if c.kind == kind]
    placeholder = PLACEHOLDERS[kind]
    missed = [(c.sub, c.text, out) for c in cases if (out := _redacted(c)) != c.expected(placeholder)]
    recall = 1 - len(missed) / len(cases)
    assert recall >= MIN_RECALL, f"{kind}: recall {recall:.3f} < {MIN_RECALL}; missed:\n" + "\n".join(
        f"  [{sub}] {text!r} -> {out!r}" for sub, text, out in missed
    )


def test_false_positive_rate_over_hard_negatives() -> None:
    changed = [(n.category, n.text, out) for n in NEGATIVES if (out := redact_pii(n.text)[0]) != n.text]
    rate = len(changed) / len(NEGATIVES)
    assert rate <= MAX_FALSE_POSITIVE_RATE, (
        f"false-positive rate {rate:.3f} > {MAX_FALSE_POSITIVE_RATE}; changed:\n"
        + "\n".join(f"  [{cat}] {text!r} -> {out!r}" for cat, text, out in changed)
    )


def test_counts_name_the_kind_found_and_redaction_is_idempotent() -> None:
    wrong = []
    for case in POSITIVES:
        out, counts = redact_pii(case.text)
        if counts[case.kind] != 1 or redact_pii(out)[0] != out:
            wrong.append((case.kind, case.text, out, counts))
    assert not wrong, "\n".join(f"  [{k}] {t!r} -> {o!r} {c}" for k, t, o, c in wrong)


# --------------------------------------------------------------------------------------------------------
# What the probe found, and the documented decisions
# --------------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("link: bit.ly/3xYzAb", "link: [URL]"),
        ("see example.org/account/jsmith.", "see [URL]."),
        ("(see goo.gl/maps/abc)", "(see [URL])"),
        ("CPF 123.456.789-09", "CPF [TAX_ID]"),
        ("meu cpf 12345678909", "meu cpf [TAX_ID]"),
        ("CNPJ 12.345.678/0001-95", "CNPJ [TAX_ID]"),
        ("DNI 12345678Z", "DNI [TAX_ID]"),  # was "[PHONE]Z"
        ("NIE X1234567L", "NIE [TAX_ID]"),
        ("NIF K1234567L", "NIF [TAX_ID]"),
        ("NIF B12345674", "NIF [TAX_ID]"),
        ("NIF 123456789", "NIF [TAX_ID]"),
        ("IBAN NL91 ABNA 0417 1643 00.", "IBAN [IBAN]."),
        ("IBAN GB82WEST12345698765432", "IBAN [IBAN]"),
        ("IBAN BE68 5390 0754 7034 fine", "IBAN [IBAN] fine"),  # the next word is not part of it
        ("CEP 01310-100", "CEP 01310-100"),  # was "[PHONE]"
    ],
)
def test_probe_cases(text: str, expected: str) -> None:
    assert redact_pii(text)[0] == expected


@pytest.mark.parametrize(
    "text",
    [
        "e.g. etc. i.e. v2.3.1 17.4.1 invoice.pdf foto.jpg",  # dotted words: no path after a known TLD
        "I always order on booking.com and amazon.com.br",  # a bare domain names a company, not a person
        "24/7, and/or, km/h, TCP/IP, N/A, 3.5/5, São Paulo/SP",
        "order #123456789, pedido 612345678, bestelling 0612345678",  # order words: not phones
        "flight KL1234, TP 1023 at 14:30, 2019-2023, 12/03/2024, 12.03.2024",
        "R$ 1.299,90, €1,299.00, 49.99, 123 456 789 €",
        "12345678A 123.456.789-00 X1234567A NL00 ABNA 0417 1643 00",  # check digits fail
        "NIF 123456780",  # a Portuguese NIF with a wrong check digit
        "612345678 and 11987654321 on their own",  # bare digits without a phone word: ids, not phones
    ],
)
def test_documented_non_redactions(text: str) -> None:
    assert redact_pii(text)[0] == text


def test_bare_digits_need_a_phone_word_or_a_trunk_prefix() -> None:
    assert redact_pii("mi móvil 612345678")[0] == "mi móvil [PHONE]"
    assert redact_pii("bel 0612345678")[0] == "bel [PHONE]"
    assert redact_pii("ik ben op 0612345678")[0] == "ik ben op [PHONE]"  # trunk prefix: a phone anyway
    # an 11-digit run after a phone word is a Brazilian mobile, not a CPF
    assert redact_pii("whatsapp 11987654321")[0] == "whatsapp [PHONE]"


def test_international_numbers_of_any_country() -> None:
    for number in ("+49 151 23456789", "+39 347 123 4567", "+81 90-1234-5678", "+27 82 123 4567"):
        assert redact_pii(f"call {number} now")[0] == "call [PHONE] now", number


def test_two_numbers_in_one_run_are_both_redacted() -> None:
    assert redact_pii("Jorge 31 3488 8004 31 9 8802 0306")[0] == "Jorge [PHONE] [PHONE]"


# --------------------------------------------------------------------------------------------------------
# Checksums
# --------------------------------------------------------------------------------------------------------


def test_checksums_accept_known_valid_numbers_and_refuse_one_digit_off() -> None:
    assert iban_ok("NL91ABNA0417164300") and iban_ok("GB82WEST12345698765432")
    assert iban_ok("DE89370400440532013000") and not iban_ok("DE89370400440532013001")
    assert not iban_ok("NL91ABNA04171643000")  # wrong length for NL
    assert cpf_ok("12345678909") and not cpf_ok("12345678900") and not cpf_ok("11111111111")
    assert cnpj_ok("11222333000181") and not cnpj_ok("11222333000180")
    assert spanish_id_ok("12345678Z") and not spanish_id_ok("12345678A")
    assert spanish_id_ok("X1234567L") and spanish_id_ok("Y1234567X") and not spanish_id_ok("X1234567A")
    assert spanish_id_ok("K1234567L") and spanish_id_ok("B12345674") and not spanish_id_ok("B12345675")
    assert portuguese_nif_ok("123456789") and not portuguese_nif_ok("123456780")


# --------------------------------------------------------------------------------------------------------
# Wiring into prepare
# --------------------------------------------------------------------------------------------------------


def test_public_names_are_re_exported_by_prepare() -> None:
    assert prepare_module.PII_KINDS is PII_KINDS
    assert prepare_module.PLACEHOLDERS is PLACEHOLDERS
    assert prepare_module.redact_pii is pii.redact_pii
    assert callable(prepare_module.redact_and_truncate)
    assert set(PLACEHOLDERS) == set(PII_KINDS)
    assert PrepareConfig().redact == PII_KINDS  # every kind is redacted by default


def test_prepare_lists_new_kinds_in_pii_found_and_non_answers_ignore_them() -> None:
    df = pd.DataFrame(
        {"comment": ["Refund to NL91 ABNA 0417 1643 00 please, my DNI is 12345678Z.", "12345678Z", "ok"]}
    )
    out = prepare(df)
    assert out.text_redacted[0] == "Refund to [IBAN] please, my DNI is [TAX_ID]."
    assert out.pii_found[0] == ["iban", "tax_id"]
    assert out.is_non_answer[1]  # only a placeholder left: nothing said
    assert out.pii_found[2] == []


@pytest.mark.parametrize("secret", ["NL91 ABNA 0417 1643 00", "123.456.789-09", "bit.ly/3xYzAbCdEf"])
def test_pii_straddling_the_cut_is_not_kept_in_part(secret: str) -> None:
    config = PrepareConfig(max_chars=60)
    for lead in range(35, 61):
        text = "a" * (lead - 1) + " " + secret + " and the rest of a long answer."
        safe = model_texts([text], config)[0]
        assert len(safe) <= 60
        for piece in secret.replace(".", " ").replace("/", " ").replace("-", " ").split():
            if len(piece) >= 3:
                assert piece not in safe, (lead, safe)


def test_redaction_stays_fast_on_pathological_strings() -> None:
    texts = [
        "12 " * 16_000,
        "1/" * 25_000,
        "ab12 " * 10_000,
        "NL91 " * 10_000,
        "x.com/" * 8_000,
        "(1) " * 12_000,
    ]
    started = time.perf_counter()
    for text in texts:
        redact_pii(text)
    assert time.perf_counter() - started < 2.0
