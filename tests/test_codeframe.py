"""A codeframe a CX lead can write: `feedback taxonomy draft` from the stored topics, `feedback taxonomy
check` for what each tag catches (issue 17, item 4)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from pipeline.cli import main
from pipeline.tagging.codeframe import (
    check_codeframe,
    draft_tags,
    draft_yaml,
    first_sentence,
    quotes_by_language,
    tag_name,
)
from pipeline.tagging.taxonomy import Taxonomy, load_taxonomy
from tests.conftest import write_config


def small_taxonomy() -> Taxonomy:
    return Taxonomy.model_validate(
        {
            "version": "t1",
            "tags": [
                {"name": "delivery", "description": "Shipping and delivery of the order."},
                {"name": "delivery_delay", "description": "The order arrived late.", "parent": "delivery"},
                {"name": "price", "description": "The price is too high."},
                {"name": "app_crash", "description": "The app crashes."},
            ],
        }
    )


def test_tag_names_are_valid_and_unique() -> None:
    taken: set[str] = set()
    assert tag_name(["Entrega", "prazo"], taken, "t") == "entrega_prazo"
    assert tag_name(["Entrega", "prazo"], taken, "t") == "entrega_prazo_2"
    assert tag_name(["48h", "!!"], taken, "t") == "t_48h"
    assert tag_name([], taken, "topic_3") == "topic_3"


def test_first_sentence_shortens_quotes() -> None:
    assert first_sentence("Chegou antes do prazo. Adorei a loja!") == "Chegou antes do prazo."
    long = "palavra " * 40
    assert len(first_sentence(long)) <= 121


def test_quotes_are_taken_in_each_language_of_the_topic() -> None:
    answers = pd.DataFrame(
        {
            "topic_id": [1, 1, 1, 1, 2],
            "language": ["pt", "pt", "en", "en", "fr"],
            "text": ["entrega rápida", "chegou cedo", "fast delivery", "arrived early", "livraison rapide"],
        }
    )
    vectors = np.eye(5, dtype=np.float32)
    quotes = quotes_by_language(answers, vectors, per_language=1)
    assert len(quotes[1]) == 2  # one Portuguese, one English
    assert {quotes[1][0], quotes[1][1]} & {"entrega rápida", "chegou cedo"}
    assert quotes[2] == ["livraison rapide"]


def test_draft_skips_small_and_retired_topics_and_loads_as_a_taxonomy(tmp_path: Path) -> None:
    topics = pd.DataFrame(
        {
            "topic_id": [0, 1, 2, 3, -1],
            "keywords": [["entrega", "prazo"], ["preço", "caro"], ["app"], ["tiny"], ["x"]],
            "representative_quotes": [
                ["Chegou antes do prazo."],
                ["Muito caro."],
                ["App crashes."],
                ["t"],
                ["x"],
            ],
            "size": [40, 30, 20, 2, 50],
            "suggested_tag": ["delivery", None, None, None, None],
            "status": ["active", "active", "retired", "active", "active"],
        }
    )
    tags = draft_tags(topics, min_size=5)
    assert [t.name for t in tags] == ["entrega_prazo", "preco_caro"]
    assert tags[0].examples == ["Chegou antes do prazo."]
    assert "entrega" in tags[0].description
    out = tmp_path / "draft.yaml"
    out.write_text(draft_yaml(tags, "draft-1", "# DRAFT: edit, do not trust\n"), encoding="utf-8")
    tax = load_taxonomy(out)
    assert tax.names == ["entrega_prazo", "preco_caro"]
    assert "most common current tag: delivery" in out.read_text(encoding="utf-8")


def test_draft_suggests_parents_for_groups_of_close_topics() -> None:
    topics = pd.DataFrame(
        {
            "topic_id": [0, 1, 2, 3, 4, 5],
            "keywords": [["late"], ["parcel"], ["price"], ["expensive"], ["app"], ["crash"]],
            "representative_quotes": [["q"]] * 6,
            "size": [60, 50, 40, 30, 20, 10],
        }
    )
    rng = np.random.default_rng(0)
    base = rng.normal(size=(3, 16))
    centroids = {i: base[i // 2] + 0.01 * rng.normal(size=16) for i in range(6)}
    tags = draft_tags(topics, centroids=centroids)
    parents = [t for t in tags if t.group]
    assert len(parents) == 2  # a third as many groups as topics
    children = {t.name: t.parent for t in tags if not t.group}
    assert children["late"] == children["parcel"] and children["late"] is not None
    assert children["price"] == children["expensive"] or children["app"] == children["crash"]


def test_check_counts_examples_nearest_tag_and_untagged() -> None:
    tax = small_taxonomy()
    texts = ["late again", "so late", "too expensive", "hello", "late and expensive"]
    tags = [["delivery_delay", "delivery"], ["delivery_delay"], ["price"], [], ["delivery_delay", "price"]]
    scores = np.array(
        [[0.5, 0.9, 0.1, 0.0], [0.4, 0.6, 0.1, 0.0], [0.1, 0.1, 0.8, 0.0], [0, 0, 0, 0], [0.3, 0.7, 0.5, 0]]
    )
    protos = np.array([[1, 0, 0], [0.9, 0.1, 0], [0, 1, 0], [0, 0, 1]], dtype=float)
    protos /= np.linalg.norm(protos, axis=1, keepdims=True)
    result = check_codeframe(tax, "v", texts, tags, scores, tax.names, protos, non_answers=2)
    by = {c.name: c for c in result.tags}
    assert by["delivery_delay"].answers == 3
    assert by["delivery_delay"].examples[0] == "late again"  # highest score first
    assert by["delivery_delay"].nearest == "delivery"
    assert by["delivery_delay"].overlap == 1 and by["delivery_delay"].overlap_share == 1.0
    assert by["delivery_delay"].relation == "parent"  # an overlap with its parent is expected
    assert by["price"].relation is None
    assert result.never_fire == ["app_crash"]
    assert result.untagged == 1 and result.untagged_examples == ["hello"]
    assert result.tagged == 4 and result.non_answers_left_out == 2
    json.dumps(result.to_dict())  # JSON-able


@pytest.fixture(scope="module")
def enriched_warehouse(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    from pipeline.demo.sample import generate_survey, write_export

    tmp = tmp_path_factory.mktemp("codeframe")
    cfg = write_config(tmp, str(tmp / "w.duckdb"))
    export = write_export(generate_survey(n=300, seed=5), tmp / "s.parquet")
    assert main(["enrich", "--config", str(cfg), "--source", str(export), "--no-prefect"]) == 0
    return tmp, cfg


def test_draft_and_check_from_the_warehouse(enriched_warehouse, capsys) -> None:
    tmp, cfg = enriched_warehouse
    draft = tmp / "draft.yaml"
    assert main(["taxonomy", "draft", "--config", str(cfg), "--out", str(draft)]) == 0
    text = draft.read_text(encoding="utf-8")
    assert text.startswith("# DRAFT") and "Edit it, do not trust it" in text
    tax = load_taxonomy(draft)
    assert len([t for t in tax.tags if t.examples]) >= 2
    assert "draft codeframe" in capsys.readouterr().out
    # An existing draft is not overwritten by accident.
    assert main(["taxonomy", "draft", "--config", str(cfg), "--out", str(draft)]) == 2
    assert "--force" in capsys.readouterr().err

    report = tmp / "check.json"
    assert (
        main(["taxonomy", "check", "--config", str(cfg), "--taxonomy", str(draft), "--json", str(report)])
        == 0
    )
    out = capsys.readouterr().out
    assert "tagged:" in out and "no tag:" in out
    result = json.loads(report.read_text(encoding="utf-8"))
    assert result["answers"] > 100
    assert {t["name"] for t in result["tags"]} == set(tax.names)
    assert result["tagged"] + result["untagged"] == result["answers"]


def test_check_on_a_file(enriched_warehouse, tmp_path, capsys) -> None:
    _, cfg = enriched_warehouse
    data = tmp_path / "answers.csv"
    pd.DataFrame(
        {"text": ["The parcel arrived two weeks late", "Way too expensive", "n/a", "Great app"], "lang": "en"}
    ).to_csv(data, index=False)
    from pipeline.config import DEFAULT_CONFIG

    taxonomy = DEFAULT_CONFIG.parent / "taxonomy.yaml"
    report = tmp_path / "check.json"
    args = ["taxonomy", "check", "--config", str(cfg), "--taxonomy", str(taxonomy), "--data", str(data)]
    assert main([*args, "--json", str(report)]) == 0
    result = json.loads(report.read_text(encoding="utf-8"))
    assert result["answers"] == 3 and result["non_answers_left_out"] == 1
    assert "never fire" in capsys.readouterr().out


def test_check_refuses_two_sources_and_names_missing_columns(enriched_warehouse, tmp_path, capsys) -> None:
    _, cfg = enriched_warehouse
    data = tmp_path / "answers.csv"
    pd.DataFrame({"why": ["late"]}).to_csv(data, index=False)
    from pipeline.config import DEFAULT_CONFIG

    taxonomy = str(DEFAULT_CONFIG.parent / "taxonomy.yaml")
    base = ["taxonomy", "check", "--config", str(cfg), "--taxonomy", taxonomy]
    assert main([*base, "--data", str(data), "--warehouse", "x.duckdb"]) == 2
    assert "not both" in capsys.readouterr().err
    assert main([*base, "--data", str(data)]) == 2
    assert "--text-column" in capsys.readouterr().err
