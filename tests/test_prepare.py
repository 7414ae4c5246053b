"""Tests of the prepare-text stage (pipeline.prepare).

All texts below are written for these tests. The one test that reads ../shared/data skips without it.
"""

from __future__ import annotations

import copy
import math
import random
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from pipeline.errors import ConfigError, SchemaError
from pipeline.prepare import (
    LINGUA_LANGUAGES,
    OUTPUT_COLUMNS,
    PLACEHOLDERS,
    LanguageDetector,
    PrepareConfig,
    is_non_answer,
    model_texts,
    normalise_text,
    prepare,
    redact_pii,
    split_sentences,
)

LANGS = ("en", "pt", "es", "fr", "nl")
SHARED_DATA = Path(__file__).resolve().parents[2] / "shared" / "data"


@pytest.fixture(scope="module")
def detector() -> LanguageDetector:
    return LanguageDetector(LANGS)


# --------------------------------------------------------------------------------------------------------
# import hygiene
# --------------------------------------------------------------------------------------------------------


def test_import_does_not_load_spacy_or_lingua() -> None:
    code = (
        "import sys, pipeline.prepare; "
        "heavy = [m for m in ('spacy', 'lingua', 'torch') if m in sys.modules]; "
        "assert not heavy, heavy"
    )
    root = Path(__file__).resolve().parents[1]
    result = subprocess.run([sys.executable, "-c", code], cwd=root, capture_output=True, text=True)
    assert result.returncode == 0, result.stderr


def test_lingua_language_list_matches_installed_lingua() -> None:
    lingua = pytest.importorskip("lingua")
    installed = {lang.iso_code_639_1.name.lower() for lang in lingua.Language.all()}
    assert installed == LINGUA_LANGUAGES


# --------------------------------------------------------------------------------------------------------
# normalise_text
# --------------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        (None, ""),
        (float("nan"), ""),
        (np.nan, ""),
        (pd.NA, ""),
        (pd.NaT, ""),
        (np.float32("nan"), ""),
        (42, "42"),
        (b"caf\xc3\xa9 bom", "café bom"),
        (b"caf\xff bom", "caf bom"),  # undecodable byte -> U+FFFD -> removed
        (bytearray(b"ok"), "ok"),
        ("cafe\u0301", "café"),  # NFD -> NFC
        ("bad\ufffd char", "bad char"),
        ("a\x00b\x07c\x1bd\x7fe\x9f", "abcde"),
        ("line one\nline two\r\n\tline three", "line one line two line three"),
        ("  many   spaces\u00a0and\u2028separators  ", "many spaces and separators"),
        ("lone \ud800surrogate", "lone surrogate"),
        ("Keep  CAPS, typos & emoji 👍🏽", "Keep CAPS, typos & emoji 👍🏽"),  # nothing else is fixed
    ],
)
def test_normalise_text(raw: object, expected: str) -> None:
    assert normalise_text(raw) == expected


def test_normalise_text_output_is_encodable() -> None:
    out = normalise_text("x\ud83d y\x00\n")
    out.encode("utf-8")  # would raise on a lone surrogate
    assert out == "x y"


# --------------------------------------------------------------------------------------------------------
# redact_pii
# --------------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("Mail me at john.doe+survey@example.co.uk please", "Mail me at [EMAIL] please"),
        ("contato: maria_silva@empresa.com.br.", "contato: [EMAIL]."),
        ("écrivez à élodie.dupont@exemple.fr", "écrivez à [EMAIL]"),
        ("JAN.DE.VRIES@Bedrijf.NL stuurde niets", "[EMAIL] stuurde niets"),
    ],
)
def test_redacts_emails(text: str, expected: str) -> None:
    redacted, counts = redact_pii(text)
    assert redacted == expected
    assert counts["email"] == 1
    assert counts["handle"] == 0  # the @ of an e-mail is not a handle


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("see https://example.com/path?a=1&b=2, thanks", "see [URL], thanks"),
        ("site http://t.co/abc123.", "site [URL]."),
        ("(www.loja.com.br/produto)", "([URL])"),
        ("https://en.wikipedia.org/wiki/Foo_(bar) is fine", "[URL] is fine"),
        ("link https://shop.nl/?mail=jan@x.nl&tel=0612345678 ok", "link [URL] ok"),  # URL first
    ],
)
def test_redacts_urls(text: str, expected: str) -> None:
    redacted, counts = redact_pii(text)
    assert redacted == expected
    assert counts["url"] == 1
    assert counts["email"] == counts["phone"] == 0


# Published test card numbers: Visa, Mastercard, Amex, Discover, Visa 13 digits.
@pytest.mark.parametrize(
    "card",
    [
        "4111 1111 1111 1111",
        "4111-1111-1111-1111",
        "4111111111111111",
        "5555 5555 5555 4444",
        "3782 822463 10005",
        "378282246310005",
        "6011111111111117",
        "4222222222222",
    ],
)
def test_redacts_luhn_valid_cards(card: str) -> None:
    redacted, counts = redact_pii(f"my card {card} was charged twice")
    assert redacted == "my card [CARD] was charged twice"
    assert counts["card"] == 1
    assert counts["phone"] == 0  # cards are redacted before phones


def test_luhn_invalid_numbers_are_not_cards() -> None:
    """Decision: a number that fails the Luhn check is not a card (order numbers, tracking codes), and
    16+ digits are never a phone either, so it is left as it is."""
    rng = random.Random(1234)
    checked = 0
    while checked < 20:
        number = "4" + "".join(rng.choice("0123456789") for _ in range(15))
        digits = [int(d) for d in number[::-1]]
        luhn = sum(d if i % 2 == 0 else (d * 2 - 9 if d > 4 else d * 2) for i, d in enumerate(digits)) % 10
        if luhn == 0:
            continue
        checked += 1
        for shown in (number, " ".join(number[i : i + 4] for i in range(0, 16, 4))):
            text = f"order {shown} arrived"
            assert redact_pii(text) == (text, redact_pii("")[1]), shown


# Typical phone formats of each language's countries.
PHONES = {
    "en": ["+1 (555) 123-4567", "555-123-4567", "(555) 123-4567", "555.123.4567", "1-800-555-1234", "+44 20 7946 0958"],
    "pt": ["+55 11 98765-4321", "(11) 98765-4321", "11 98765-4321", "(11)9 9949-8838", "+351 912 345 678", "912 345 678"],
    "es": ["+34 612 34 56 78", "612 345 678", "612 34 56 78", "91 123 45 67", "0034 612345678"],
    "fr": ["+33 6 12 34 56 78", "06 12 34 56 78", "06.12.34.56.78", "0612345678", "01-23-45-67-89"],
    "nl": ["+31 6 12345678", "06-12345678", "06 12345678", "020-1234567", "0031612345678", "020 123 4567"],
}  # fmt: skip
SENTENCES = {
    "en": "Please call me on {} about my refund.",
    "pt": "Por favor me liguem no {} sobre o reembolso.",
    "es": "Por favor llámenme al {} por el reembolso.",
    "fr": "Merci de me rappeler au {} pour le remboursement.",
    "nl": "Bel me alstublieft op {} over mijn terugbetaling.",
}


@pytest.mark.parametrize(("lang", "phone"), [(lang, p) for lang, ps in PHONES.items() for p in ps])
def test_redacts_phones_in_all_languages(lang: str, phone: str) -> None:
    template = SENTENCES[lang]
    redacted, counts = redact_pii(template.format(phone))
    assert redacted == template.format("[PHONE]")
    assert counts["phone"] == 1


@pytest.mark.parametrize(
    "text",
    [
        "meu whatsapp é 11987654321",
        "mi móvil: 612345678",
        "telemóvel 912345678",
        "tel 5551234567",
    ],
)
def test_bare_digit_runs_are_phones_after_a_phone_word(text: str) -> None:
    assert redact_pii(text)[1]["phone"] == 1


@pytest.mark.parametrize(
    "text",
    [
        "It cost 49.90 and shipping 9,90",
        "Paguei R$ 1.299,90 em 10x de 129,99",
        "Precio 1.234.567 pesos, 12.345.678 en total",
        "123 456 789 €",
        "Customer since 2015, again in 2019 and 2020-2023",
        "2019 2020 2021 2022",
        "Delivered on 12/05/2023, ordered 01-05-2023, ISO 2023-05-12",
        "I rate it 10 10 10 10",
        "3 stars out of 5, 100% happy, waited 45 minutes",
        "order 123456789 and pedido 12345678 and protocolo 02-657610648",
        "at 10:30 on platform 9",
        "CPF 123.456.789-00",  # check digits fail: not a CPF (123.456.789-09 is one: tests/test_pii.py)
        "CEP 01310-100, 75008 Paris, 1012 AB Amsterdam",
        "Prijzen: 49.90 59.90 69.90 79.90",
    ],
)
def test_does_not_redact_prices_years_dates_or_small_numbers(text: str) -> None:
    redacted, counts = redact_pii(text)
    assert redacted == text
    assert sum(counts.values()) == 0


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("@united lost my bag", "[HANDLE] lost my bag"),
        ("thanks @john.doe.", "thanks [HANDLE]."),
        ("@Iberia @_Todd_Young gracias", "[HANDLE] [HANDLE] gracias"),
        ("meet @ 5pm or @10", "meet @ 5pm or @10"),  # no letters: not a handle
    ],
)
def test_redacts_handles(text: str, expected: str) -> None:
    assert redact_pii(text)[0] == expected


def test_redaction_order_and_counts() -> None:
    text = "jo@x.com @jo 4111 1111 1111 1111 +33 6 12 34 56 78 https://x.fr"
    redacted, counts = redact_pii(text)
    assert redacted == "[EMAIL] [HANDLE] [CARD] [PHONE] [URL]"
    assert counts == {"url": 1, "email": 1, "iban": 0, "tax_id": 0, "card": 1, "phone": 1, "handle": 1}
    assert redact_pii(redacted)[0] == redacted  # idempotent


def test_redact_only_requested_kinds() -> None:
    redacted, counts = redact_pii("jo@x.com or +33 6 12 34 56 78", kinds=("phone",))
    assert redacted == "jo@x.com or [PHONE]"
    assert counts == {"phone": 1}


def test_redact_unknown_kind_lists_valid_kinds() -> None:
    with pytest.raises(ConfigError, match=r"ssn.*Valid options.*email"):
        redact_pii("x", kinds=("ssn",))


def test_redaction_is_fast_on_huge_unspaced_strings() -> None:
    started = time.perf_counter()
    for text in ("a" * 50_000, "1" * 50_000, "a." * 25_000, "@a" * 25_000, "1 " * 25_000):
        redact_pii(text)
    assert time.perf_counter() - started < 2.0


# --------------------------------------------------------------------------------------------------------
# language detection
# --------------------------------------------------------------------------------------------------------

CLEAR = {
    "en": ["The delivery was late and nobody answered my emails.", "The staff were friendly but the checkout took forever."],
    "pt": ["A entrega atrasou e ninguém respondeu aos meus e-mails.", "O atendimento foi ótimo, mas o produto veio com defeito."],
    "es": ["El pedido llegó tarde y nadie contestó mis correos.", "La atención fue muy buena, pero el envío tardó demasiado."],
    "fr": ["La livraison était en retard et personne n'a répondu à mes courriels.", "Le personnel était aimable mais l'attente était trop longue."],
    "nl": ["De bezorging was te laat en niemand reageerde op mijn e-mails.", "Het personeel was vriendelijk, maar de wachttijd was veel te lang."],
}  # fmt: skip
GERMAN = [
    "Ich bin mit der Lieferung überhaupt nicht zufrieden.",
    "Das Essen war sehr gut, aber der Service war leider langsam.",
]


def test_detects_clear_sentences(detector: LanguageDetector) -> None:
    texts = [t for lang in LANGS for t in CLEAR[lang]]
    expected = [lang for lang in LANGS for _ in CLEAR[lang]]
    results = detector.detect(texts)
    assert [lang for lang, _ in results] == expected
    assert all(0.5 <= conf <= 1.0 for _, conf in results)


@pytest.mark.parametrize("text", ["", "ok", "-", "...", "12345", "?!", "[EMAIL] [URL]", "👍👍"])
def test_too_short_or_no_letters_is_und(detector: LanguageDetector, text: str) -> None:
    assert detector.detect([text]) == [("und", 0.0)]


def test_language_outside_the_configured_set_is_und(detector: LanguageDetector) -> None:
    """Documented behaviour: German (and Italian, Polish, Turkish: the reject languages) comes out "und",
    and so does Cyrillic text, which lingua scores 0 for every Latin-script language."""
    texts = [
        *GERMAN,
        "Il servizio è stato pessimo e nessuno mi ha risposto.",
        "Очень плохой сервис, никто не отвечает.",
    ]
    assert detector.detect(texts) == [("und", 0.0)] * 4


def test_plain_restricted_lingua_forces_german_into_a_configured_language() -> None:
    """Why reject languages exist: restricted to en/pt/es/fr/nl, lingua calls this German sentence a
    configured language (Dutch, confidence ~0.93, with lingua 2.1), so it would pass any threshold."""
    restricted = LanguageDetector(LANGS, reject_languages=())
    lang, confidence = restricted.detect([GERMAN[0]])[0]
    assert lang in LANGS
    assert confidence >= 0.5


def test_german_is_detected_when_configured() -> None:
    assert [lang for lang, _ in LanguageDetector((*LANGS, "de")).detect(GERMAN)] == ["de", "de"]


def test_low_confidence_is_und_with_its_confidence(detector: LanguageDetector) -> None:
    strict = LanguageDetector(LANGS, min_confidence=0.999)
    lang, confidence = strict.detect([CLEAR["es"][0]])[0]
    assert lang == "und"
    assert 0.5 < confidence < 0.999


def test_detector_is_lazy_reused_and_dedupes() -> None:
    det = LanguageDetector(["EN", "pt"])
    assert det.languages == ("en", "pt")
    assert det._detector is None  # nothing built until needed
    first = det.detect([CLEAR["en"][0]] * 3 + [CLEAR["pt"][0]])
    built = det._detector
    det.detect([CLEAR["pt"][1]])
    assert det._detector is built
    assert [lang for lang, _ in first] == ["en", "en", "en", "pt"]
    assert det.detect([]) == []


def test_detector_refuses_a_bare_string(detector: LanguageDetector) -> None:
    with pytest.raises(TypeError, match="list of strings"):
        detector.detect("a text")  # type: ignore[arg-type]


def test_detector_validates_languages() -> None:
    with pytest.raises(ConfigError, match=r"\['klingon'\].*Valid options.*'nl'"):
        LanguageDetector(["en", "klingon"])


# --------------------------------------------------------------------------------------------------------
# non-answers
# --------------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "text",
    [
        "", "-", "...", "?", "0", "10", "👍", "[URL]",
        # en
        "n/a", "N/A", "n.a.", "NA", "None", "nothing", "Nothing!", "No comment", "no comments.", "Nope",
        "idk", "Nothing to add", "nothing else to add",
        # pt
        "nada", "Nada.", "nenhum", "Sem comentários", "sem comentario", "Nada a declarar", "Não sei",
        # es
        "ninguno", "Sin comentarios", "nada que decir", "Nada más",
        # fr
        "rien", "Aucun", "pas de commentaire", "Rien à dire", "RAS", "Je ne sais pas",
        # nl
        "geen", "Niets", "Geen opmerkingen", "nvt", "n.v.t.", "Niet van toepassing", "Weet ik niet",
    ],
)  # fmt: skip
def test_non_answers(text: str) -> None:
    assert is_non_answer(text)


@pytest.mark.parametrize(
    "text",
    [
        "nothing works",
        "none of the staff helped",
        "No comment from the manager when I complained",
        "nada funciona",
        "nenhum atendente respondeu",
        "sin comentarios del vendedor, nada",
        "rien ne marche",
        "aucun suivi",
        "geen service",
        "niets werkt",
        "ok",
        "Good",
        "Nadal",
        "Rienzi restaurant was great",
    ],
)
def test_real_answers_are_not_non_answers(text: str) -> None:
    assert not is_non_answer(text)


# --------------------------------------------------------------------------------------------------------
# sentences
# --------------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "lang", "expected"),
    [
        ("Great service. Slow delivery! Will I buy again?", "en", ["Great service.", "Slow delivery!", "Will I buy again?"]),
        ("Produto ótimo. Entrega demorou muito!", "pt", ["Produto ótimo.", "Entrega demorou muito!"]),
        ("¿Por qué tardó tanto? La comida estaba fría.", "es", ["¿Por qué tardó tanto?", "La comida estaba fría."]),
        ("Très bon accueil. Le plat coûtait 49.90 euros !", "fr", ["Très bon accueil.", "Le plat coûtait 49.90 euros !"]),
        ("Snelle levering. Goede prijs", "nl", ["Snelle levering.", "Goede prijs"]),
        ("one sentence without a full stop", "en", ["one sentence without a full stop"]),
        ("Great!!!", "en", ["Great!!!"]),
        ("First part. Second part.", "und", ["First part.", "Second part."]),
        ("Erste Satz. Zweiter Satz.", "qq", ["Erste Satz.", "Zweiter Satz."]),  # unknown to spaCy -> xx
        ("", "en", []),
        ("   ", "en", []),
    ],
)  # fmt: skip
def test_split_sentences(text: str, lang: str, expected: list[str]) -> None:
    assert split_sentences(text, lang) == expected


def test_single_sentence_shortcut_matches_spacy() -> None:
    from pipeline.prepare.sentences import _sentencizer

    nlp, _ = _sentencizer("en")
    texts = [
        "no punctuation at all",
        "ends with dots...",
        "Great!!! ",
        "e.g. this",
        "A. B",
        "a 49.90 b",
        "Q? A!",
    ]
    for text in texts:
        direct = [s.text.strip() for s in nlp(text.strip()).sents if s.text.strip()]
        assert split_sentences(text, "en") == direct, text


_TRICKY_SENTENCES = [
    "Hello.  World",  # a run of spaces is a token of its own
    "...Starts with dots. Then a word",
    'He said "stop." Then left (angry). OK?',
    "Dr. Smith arrived at 10 a.m. and left. Fine!",
    "Wait... what?! Really?? Yes!!! ok",
    "Lista: 1. um; 2. dois. Fim",
    "¡Hola! ¿Qué tal? Bien.",
    "C'est nul !!! Vraiment … nul.",
    "emoji 😀. next 👍! last",
    "Preço R$ 49,90. Entrega: 3 dias.\nObrigado!",
    "line one\nline two. line three",
    "。日本語。文",
    "a.b.c. d",
    "?! . ,",
]


@pytest.mark.parametrize("lang", ["en", "pt", "es", "fr", "nl", "und"])
def test_split_sentences_equals_spacys_sentencizer_on_tricky_and_real_texts(lang: str) -> None:
    """split_sentences (with its one-sentence shortcut) gives exactly the sentences spaCy's Sentencizer
    gives, on tricky texts and, when ../shared/data is there, on 2,000 real answers."""
    from pipeline.prepare.sentences import _sentencizer

    nlp, _ = _sentencizer(lang)
    texts = list(_TRICKY_SENTENCES)
    real = Path(__file__).resolve().parents[2] / "shared" / "data" / "throughput_dev_texts.parquet"
    if real.exists():
        texts += pd.read_parquet(real, columns=["text"])["text"].sample(2000, random_state=7).tolist()
    for text in texts:
        direct = [s.text.strip() for s in nlp(text.strip()).sents if s.text.strip()] or [text.strip()]
        assert split_sentences(text, lang) == direct, text


def test_split_sentences_long_text_is_fast_and_lossless() -> None:
    text = " ".join(f"Sentence number {i} is about the delivery." for i in range(120))[:5000]
    started = time.perf_counter()
    sentences = split_sentences(text, "en")
    assert time.perf_counter() - started < 1.0
    assert len(sentences) >= 100
    assert " ".join(sentences) == text.strip()


# --------------------------------------------------------------------------------------------------------
# config
# --------------------------------------------------------------------------------------------------------


def test_config_defaults_and_normalisation() -> None:
    config = PrepareConfig(languages=["EN", "pt"], redact=["email"])  # type: ignore[arg-type]
    assert config.languages == ("en", "pt")
    assert config.redact == ("email",)
    assert PrepareConfig().languages == LANGS
    hash(config)  # frozen and hashable


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"languages": ("en", "xx")}, r"\['xx'\].*Valid options.*'nl'.*'pt'"),
        ({"languages": ()}, "at least one"),
        ({"languages": "en"}, r"not the string 'en'"),
        ({"languages": ("en", "en")}, "duplicated"),
        ({"reject_languages": ("zz",)}, r"\['zz'\].*Valid options"),
        (
            {"redact": ("ssn",)},
            r"\['ssn'\].*Valid options: \['url', 'email', 'iban', 'tax_id', 'card', 'phone', 'handle'\]",
        ),
        ({"min_language_confidence": 1.5}, r"\[0, 1\]"),
        ({"min_chars_for_language": -1}, ">= 0"),
        ({"max_chars": 0}, ">= 1"),
    ],
)
def test_invalid_config_raises_config_error(kwargs: dict[str, object], message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        PrepareConfig(**kwargs)  # type: ignore[arg-type]


# --------------------------------------------------------------------------------------------------------
# prepare()
# --------------------------------------------------------------------------------------------------------


def _frame() -> pd.DataFrame:
    comments = [
        "Great staff. Call me at +1 (555) 123-4567 or mail jo@x.com!",  # en, PII
        "A entrega atrasou e ninguém respondeu aos meus e-mails. Péssimo!",  # pt
        "n/a",  # non-answer
        None,
        float("nan"),
        7,
        "La livraison était en retard et personne n'a répondu à mes courriels.".encode(),
        "Het personeel was vriendelijk\x00, maar de wachttijd\ufffd was veel te lang.\n\nTop!",
        "Ich bin mit der Lieferung überhaupt nicht zufrieden.",  # German: und
        "El pedido llegó tarde. " * 2500,  # ~57,000 characters
    ]
    return pd.DataFrame(
        {
            "response_id": [f"r{i}" for i in range(len(comments))],
            "comment": comments,
            "score": range(len(comments)),
        },
        index=pd.Index([10, 11, 12, 13, 14, 15, 16, 17, 18, 10], name="row"),  # duplicated, non-range index
    )


@pytest.fixture(scope="module")
def prepared() -> tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame]:
    df = _frame()
    before = copy.deepcopy(df)
    out = prepare(df, PrepareConfig(max_chars=1000))
    return df, before, out


def test_prepare_does_not_mutate_input(prepared: tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame]) -> None:
    df, before, out = prepared
    pd.testing.assert_frame_equal(df, before)
    assert list(df.columns) == ["response_id", "comment", "score"]
    assert out is not df


def test_prepare_returns_same_index_and_exact_columns(
    prepared: tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame],
) -> None:
    df, _, out = prepared
    assert (
        list(out.columns)
        == list(OUTPUT_COLUMNS)
        == [
            "text_clean",
            "text_redacted",
            "text_truncated",
            "pii_found",
            "language",
            "language_confidence",
            "is_non_answer",
            "sentences",
        ]
    )
    pd.testing.assert_index_equal(out.index, df.index)
    assert out["text_truncated"].dtype == bool
    assert out["is_non_answer"].dtype == bool
    assert out["language_confidence"].dtype == float
    assert all(isinstance(v, list) for v in out["pii_found"])
    assert all(isinstance(v, list) for v in out["sentences"])


def test_prepare_values(prepared: tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame]) -> None:
    _, _, out = prepared
    rows = out.reset_index(drop=True)
    # PII
    assert rows.text_redacted[0] == "Great staff. Call me at [PHONE] or mail [EMAIL]!"
    assert rows.pii_found[0] == ["email", "phone"]
    assert "+1 (555) 123-4567" in rows.text_clean[0]  # text_clean keeps it; only text_redacted is for models
    assert rows.sentences[0] == ["Great staff.", "Call me at [PHONE] or mail [EMAIL]!"]
    assert rows.language[0] == "en"
    # languages
    assert list(rows.language[[1, 6, 7, 8]]) == ["pt", "fr", "nl", "und"]
    assert rows.language_confidence[1] > 0.5
    assert rows.sentences[1] == ["A entrega atrasou e ninguém respondeu aos meus e-mails.", "Péssimo!"]
    # bad values
    assert list(rows.text_clean[[3, 4, 5]]) == ["", "", "7"]
    assert rows.text_clean[6].startswith("La livraison était")  # bytes decoded
    assert rows.text_clean[7] == "Het personeel was vriendelijk, maar de wachttijd was veel te lang. Top!"
    # non-answers: flagged, no sentences, language "und" when not confident
    assert list(rows.is_non_answer) == [False, False, True, True, True, True, False, False, False, False]
    assert all(s == [] for s in rows.sentences[rows.is_non_answer])
    assert list(rows.language[[2, 3, 4, 5]]) == ["und"] * 4
    assert all(p == [] for p in rows.pii_found[1:])
    # truncation at a sentence boundary
    assert list(rows.text_truncated) == [False] * 9 + [True]
    assert len(rows.text_clean[9]) <= 1000
    assert rows.text_clean[9].endswith("tarde.")
    assert rows.language[9] == "es"
    assert all(s == "El pedido llegó tarde." for s in rows.sentences[9])
    assert all(not math.isnan(c) for c in rows.language_confidence)


def test_prepare_default_max_chars_truncates_50k_strings() -> None:
    text = ("word " * 12_000).strip()  # 60,000 chars, no sentence end: cut at a space
    out = prepare(pd.DataFrame({"comment": [text, "x" * 50_000]}))
    assert out.text_truncated.tolist() == [True, True]
    assert all(len(t) <= 5000 for t in out.text_clean)
    assert out.text_clean[0].endswith("word")
    assert out.text_clean[1] == "x" * 5000  # no boundary at all: hard cut


@pytest.mark.parametrize(
    "pii, kind",
    [("4111 1111 1111 1111", "card"), ("+31 6 1234 5678", "phone"), ("06 12 34 56 78", "phone")],
)
def test_a_number_straddling_the_cut_is_redacted_whole_not_kept_in_part(pii: str, kind: str) -> None:
    config = PrepareConfig(max_chars=100)
    for lead in range(80, 101):  # every position of the number around the cut
        text = "a" * (lead - 1) + " " + pii + " and the rest of a long answer."
        out = prepare(pd.DataFrame({"comment": [text]}), config)
        safe = out.text_redacted[0]
        assert len(safe) <= 100 and out.text_truncated[0]
        digits = "".join(c for c in safe if c.isdigit())
        assert digits == "", (lead, safe)  # no part of the number survives the cut
        assert model_texts([text], config) == [safe]
        assert out.pii_found[0] == ([kind] if PLACEHOLDERS[kind] in safe else [])


def test_prepare_non_answer_keeps_confident_language() -> None:
    out = prepare(pd.DataFrame({"comment": ["Geen opmerkingen", "nada", "-"]}))
    assert out.is_non_answer.tolist() == [True, True, True]
    assert out.language.tolist() == ["nl", "und", "und"]  # "nada" is pt or es: not confident
    assert out.sentences.tolist() == [[], [], []]


def test_prepare_empty_frame() -> None:
    out = prepare(pd.DataFrame({"comment": pd.Series([], dtype=object)}))
    assert list(out.columns) == list(OUTPUT_COLUMNS)
    assert len(out) == 0


def test_prepare_other_text_column_and_redact_subset() -> None:
    df = pd.DataFrame({"why": ["Mail jo@x.com or call 06-12345678."]})
    out = prepare(df, PrepareConfig(redact=("email",)), text_column="why")
    assert out.text_redacted[0] == "Mail [EMAIL] or call 06-12345678."
    assert out.pii_found[0] == ["email"]


def test_prepare_missing_column_names_expected_and_found() -> None:
    df = pd.DataFrame({"response_id": [1], "text": ["hi"]})
    with pytest.raises(
        SchemaError, match=r"missing column\(s\) \['comment'\].*found \['response_id', 'text'\]"
    ):
        prepare(df)


def test_prepare_refuses_non_dataframes() -> None:
    with pytest.raises(SchemaError, match="DataFrame"):
        prepare(["a text"])  # type: ignore[arg-type]
    with pytest.raises(ConfigError, match="PrepareConfig"):
        prepare(pd.DataFrame({"comment": ["x"]}), {"languages": ["en"]})  # type: ignore[arg-type]


@pytest.mark.shared_data
def test_language_accuracy_on_dev_texts() -> None:
    path = SHARED_DATA / "throughput_dev_texts.parquet"
    if not path.exists():
        pytest.skip("../shared/data is absent")
    data = pd.read_parquet(path, columns=["text", "lang"])
    sample = data.groupby("lang").sample(n=60, random_state=0)  # every language has more rows
    out = prepare(sample.rename(columns={"text": "comment"}))
    gold = sample["lang"].where(sample["lang"].isin(LANGS), "und")
    accuracy = (out["language"] == gold).groupby(sample["lang"]).mean()
    assert (accuracy[list(LANGS)] >= 0.9).all(), accuracy.to_dict()
    assert (accuracy[[lang for lang in ("de", "ru", "tr") if lang in accuracy]] >= 0.9).all(), (
        accuracy.to_dict()
    )
