"""Findings from real survey exports: non-answers with typos and courtesy words, and short answers whose
language detection is unsure (issue 17, item 5)."""

from __future__ import annotations

import pandas as pd
import pytest

from pipeline.prepare import (
    PrepareConfig,
    detect_languages,
    is_non_answer,
    load_non_answers,
    prepare,
)

NON_ANSWERS = [
    # pt
    "nada a declarar",
    "Nada a declarar.",
    "Mada a declarar",
    "nada a delcarar",
    "Nada a declarar, obrigado!",
    "sem comentários",
    "Sem comentarios",
    "sem comentáros",
    "nenhum",
    "Nada",
    "nada a acrescentar",
    # es
    "sin comentarios",
    "Sin comentario.",
    "sin comentaros",
    "nada que declarar",
    "ningún comentario",
    # en
    "nothing to add",
    "Nothign to add",
    "n/a",
    "N.A.",
    "no comments, thanks",
    "nothing to report",
    # fr
    "rien à signaler",
    "Rien a signaler",
    "rien à signler",
    "RAS",
    "aucun commentaire",
    # nl
    "geen opmerkingen",
    "Geen opmerkingen.",
    "geen opmerkngen",
    "niets toe te voegen",
    "n.v.t.",
]

ANSWERS = [
    "nothing works",
    "nada mal",  # es: not bad
    "nada a reclamar",  # pt: nothing to complain about (praise)
    "no responde",  # es: nobody answers (one typo from "no response", which is matched exactly only)
    "bien merci",  # fr: fine, thanks (one typo from "rien merci")
    "Chegou antes do prazo.",
    "não recebi",
    "mao",  # a three-letter word is never matched with a typo ("nao")
    "rien ne marche",
    "geen bezorging",
]


@pytest.mark.parametrize("text", NON_ANSWERS)
def test_common_non_answers_in_five_languages_with_typos(text: str) -> None:
    assert is_non_answer(text)


@pytest.mark.parametrize("text", ANSWERS)
def test_real_answers_are_not_non_answers(text: str) -> None:
    assert not is_non_answer(text)


def test_non_answer_list_covers_the_five_languages() -> None:
    import yaml

    from pipeline.prepare import NON_ANSWERS_FILE

    raw = yaml.safe_load(NON_ANSWERS_FILE.read_text(encoding="utf-8"))
    assert set(raw["phrases"]) == {"en", "pt", "es", "fr", "nl"}
    assert load_non_answers().typo_min_chars == raw["typo_min_chars"]


def test_a_malformed_non_answer_file_says_what_is_expected(tmp_path) -> None:
    from pipeline.errors import ConfigError

    bad = tmp_path / "non_answers.yaml"
    bad.write_text("phrases: [nada]\n", encoding="utf-8")
    with pytest.raises(ConfigError, match="expected 'phrases:'"):
        load_non_answers(bad)


PT_BATCH = [
    "O produto chegou quebrado e ninguém respondeu aos meus e-mails",
    "Adorei o produto, recomendo muito a todos os meus amigos",
    "Entrega muito rápida e o atendimento foi excelente",
    "A cor é diferente da foto do anúncio, fiquei decepcionada",
    "nada a declarar",
    "Great product, it arrived early and works perfectly",
    "ok",
]


def test_short_unsure_answer_takes_the_language_of_its_batch() -> None:
    alone = detect_languages(["nada a declarar"])[0][0]
    assert alone == "es"  # what lingua says on its own: the finding of the real export
    langs = [lang for lang, _ in detect_languages(PT_BATCH)]
    assert langs[4] == "pt"
    assert langs[5] == "en"  # a sure detection keeps its language
    assert langs[6] == "und"  # Portuguese is not plausible for "ok": it stays undetermined
    out = prepare(pd.DataFrame({"comment": PT_BATCH}))
    assert out["language"].tolist()[4] == "pt"
    assert bool(out["is_non_answer"].iloc[4])


def test_in_a_mixed_batch_short_answers_keep_their_language() -> None:
    mixed = [
        "The parcel arrived two days late and nobody answered my emails",
        "Great service, the staff were friendly and helpful",
        "I would recommend this shop to all my friends and family",
        "Experiencia normalita.",
        "Continuez comme ça !",
        "Sehr freundlicher Kundenservice, vielen Dank!",
    ]
    langs = [lang for lang, _ in detect_languages(mixed)]
    assert langs[3] == "es" and langs[4] == "fr"  # not moved to the batch's English
    assert langs[5] == "und"  # German is rejected, not settled into a configured language


def test_declared_language_column_settles_unsure_short_answers() -> None:
    df = pd.DataFrame(
        {
            "comment": ["no comment", "nada", "Ceci est une phrase française assez longue."],
            "lang": ["en", "pt", "nl"],
        }
    )
    out = prepare(df)
    # "no comment" is French to lingua and "nada" is unsure; the file says en and pt. A long French
    # sentence keeps its sure detection whatever the column says.
    assert out["language"].tolist() == ["en", "pt", "fr"]


def test_settling_can_be_switched_off() -> None:
    langs = detect_languages(PT_BATCH, PrepareConfig(short_text_words=0))
    assert langs[4][0] == "es"


def test_declared_languages_must_match_the_texts() -> None:
    with pytest.raises(ValueError, match="differ in length"):
        detect_languages(["a", "b"], declared=["pt"])
