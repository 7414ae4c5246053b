"""Self-training on unlabelled answers: the zero-shot tagger's confident decisions teach a trained
tagger (issue 17), through the library and through `feedback tagger train` on a file without tags."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from pipeline.cli import main
from pipeline.embed import build_embedder
from pipeline.tagging import EmbeddingTfidfTagger, ZeroShotTagger
from pipeline.tagging.selftrain import MODE, SelfTrainParams, pseudo_labels, self_train
from pipeline.tagging.taxonomy import Taxonomy

TAXONOMY = {
    "version": "s1",
    "tags": [
        {
            "name": "delivery_delay",
            "description": "the parcel arrived late",
            "examples": ["late delivery", "parcel still not delivered"],
        },
        {
            "name": "refund",
            "description": "asking for a refund of the payment",
            "examples": ["refund my payment", "I want a refund"],
        },
        {
            "name": "friendly_staff",
            "description": "the support staff were friendly",
            "examples": ["friendly support agent", "kind and helpful staff"],
        },
    ],
}
THEMES = {
    "delivery_delay": [
        "the parcel arrived {d} days late",
        "my delivery is late again",
        "parcel late, {d} days",
    ],
    "refund": [
        "please refund my payment of {d} euros",
        "refund the payment now",
        "still waiting for my refund",
    ],
    "friendly_staff": [
        "the support agent was friendly",
        "friendly staff, thanks",
        "kind helpful staff member",
    ],
}


def _window(n: int = 60, seed: int = 0) -> tuple[list[str], list[list[str]]]:
    """Texts on one theme each (their words are the theme's own, as a team's answers are) plus texts on
    nothing in particular."""
    rng = np.random.default_rng(seed)
    texts, truth = [], []
    for i in range(n):
        tag = list(THEMES)[i % 3]
        template = THEMES[tag][rng.integers(3)]
        texts.append(template.format(d=int(rng.integers(2, 30))) + f" order {int(rng.integers(1000))}")
        truth.append([tag])
    for i in range(n // 4):
        texts.append(f"ok {i}")
        truth.append([])
    return texts, truth


@pytest.fixture(scope="module")
def hashing():
    return build_embedder("hashing")


def test_pseudo_labels_take_the_confident_best_tags_pairs_and_no_theme():
    z = np.array(
        [
            [3.0, 0.0, 0.0],  # clear tag 0
            [0.0, 2.5, 0.1],  # clear tag 1
            [1.0, 0.9, 0.8],  # unsure: left out
            [2.0, 1.9, -1.0],  # two tags stand out
            [0.1, 0.0, 0.2],  # closer to no theme
            [0.2, 0.1, 0.0],
        ]
    )
    no_theme = np.array([-1.0, -1.0, 0.0, -1.0, 2.0, 0.0])
    labels = pseudo_labels(z, share=0.34, none_share=0.2, min_per_tag=1, no_theme=no_theme, pair_share=0.2)
    assert labels[0] == [0] and labels[1] == [1]
    assert labels[3] == [0, 1]
    assert labels[4] == []
    assert labels[2] == [2]  # every tag gets min_per_tag rows: the unsure row scores tag 2 highest
    assert 5 not in labels


def test_self_training_learns_the_windows_own_words(hashing):
    texts, truth = _window()
    taxonomy = Taxonomy.model_validate(TAXONOMY)
    result = self_train(texts, hashing.embed(texts), taxonomy, hashing, params={"min_rows": 20})
    assert result.passed and result.mode == MODE
    assert isinstance(result.model, EmbeddingTfidfTagger)
    gate = result.report["gate"]
    assert gate["passed"] and set(gate["criteria"]) == {"agreement", "coverage", "stability"}
    assert result.report["labelled_rows"] < len(texts)  # only the teacher's confident decisions
    tags, _ = result.model.predict(hashing.embed(texts), texts=texts)
    themed = [(t, g) for t, g in zip(tags, truth, strict=True) if g]
    right = sum(g[0] in t for t, g in themed) / len(themed)
    teacher = ZeroShotTagger(taxonomy).fit(hashing)
    zs_tags, _ = teacher.predict(hashing.embed(texts))
    zs_right = sum(g[0] in t for t, g in zip(zs_tags, truth, strict=True) if g) / len(themed)
    assert right >= 0.9 and right >= zs_right


def test_too_few_answers_or_a_refused_student_give_the_calibrated_zero_shot_tagger(hashing):
    texts, _ = _window(30)
    taxonomy = Taxonomy.model_validate(TAXONOMY)
    small = self_train(texts, hashing.embed(texts), taxonomy, hashing)  # min_rows 100 by default
    assert small.mode == "zero-shot" and isinstance(small.model, ZeroShotTagger)
    assert small.model.calibration is not None and "min_rows" in small.report["gate"]["reason"]
    strict = SelfTrainParams(min_rows=20, min_agreement=1.0, min_coverage=1.0, min_stability=1.0)
    refused = self_train(texts, hashing.embed(texts), taxonomy, hashing, params=strict)
    gate = refused.report["gate"]
    assert not gate["passed"] and min(gate["agreement"], gate["coverage"], gate["stability"]) < 1.0
    assert refused.mode == "zero-shot" and isinstance(refused.model, ZeroShotTagger)
    assert "< 1.00" in gate["reason"]


def test_tagger_train_on_a_file_without_tags_self_trains_then_predict_tags_with_it(tmp_path):
    texts, truth = _window(150)
    pd.DataFrame({"id": [f"r{i}" for i in range(len(texts))], "text": texts}).to_csv(
        tmp_path / "window.csv", index=False
    )
    import yaml

    (tmp_path / "taxonomy.yaml").write_text(yaml.safe_dump(TAXONOMY), encoding="utf-8")
    out = tmp_path / "version"
    common = ["--emb-cache", "none"]
    assert (
        main(
            [
                "tagger",
                "train",
                "--data",
                str(tmp_path / "window.csv"),
                "--taxonomy",
                str(tmp_path / "taxonomy.yaml"),
            ]
            + ["--out", str(out), "--embedder", "hashing", *common]
        )
        == 0
    )
    manifest = json.loads((out / "manifest.json").read_text(encoding="utf-8"))
    assert manifest["mode"] == "self-trained"
    assert manifest["self_training"]["gate"]["passed"] is True
    assert set(manifest["metrics"]) == {"confident_agreement", "coverage", "stability"}
    assert manifest["training_data"]["rows"] == len(texts)
    pred = tmp_path / "pred.parquet"
    args = [
        "tagger",
        "predict",
        "--model",
        str(out),
        "--data",
        str(tmp_path / "window.csv"),
        "--out",
        str(pred),
    ]
    assert main([*args, *common]) == 0
    got = pd.read_parquet(pred)
    themed = [(list(t), g) for t, g in zip(got["tags"], truth, strict=True) if g]
    assert sum(g[0] in t for t, g in themed) / len(themed) >= 0.9
