"""The zero-shot decision rule: calibrated on the texts being tagged, so that it transfers across
taxonomies and encoders (issue 17)."""

from __future__ import annotations

import json

import numpy as np
import pytest

from pipeline.tagging import ZeroShotTagger
from pipeline.tagging.taxonomy import Taxonomy

TAX = Taxonomy.model_validate(
    {
        "version": "z1",
        "tags": [
            {"name": "generic", "description": "anything at all about the order"},
            {"name": "late", "description": "the parcel came late"},
            {"name": "refund", "description": "money back please"},
        ],
    }
)


class FixedEmbedder:
    """Maps the taxonomy's names and phrases to fixed unit vectors (3 dims, one per tag)."""

    model_id = "fixed-1"
    dim = 3

    def embed(self, texts):
        table = {
            "generic": [1.0, 0.0, 0.0],
            "late": [0.0, 1.0, 0.0],
            "refund": [0.0, 0.0, 1.0],
            "anything at all about the order": [1.0, 0.0, 0.0],
            "the parcel came late": [0.0, 1.0, 0.0],
            "money back please": [0.0, 0.0, 1.0],
        }
        return np.array([table[t] for t in texts], dtype=np.float32)


def _window(n_per: int = 20, seed: int = 0) -> tuple[np.ndarray, list[str]]:
    """Texts about "late" or "refund" that all sit close to the generic tag too (its raw score is the
    highest for every text), plus texts about nothing in particular."""
    rng = np.random.default_rng(seed)
    rows, truth = [], []
    for theme, direction in (("late", [0.75, 0.6, 0.1]), ("refund", [0.75, 0.1, 0.6]), ("", [0.7, 0.1, 0.1])):
        for _ in range(n_per):
            v = np.asarray(direction) + rng.normal(scale=0.03, size=3)
            rows.append(v / np.linalg.norm(v))
            truth.append(theme)
    return np.asarray(rows, dtype=np.float32), truth


@pytest.fixture
def tagger() -> ZeroShotTagger:
    return ZeroShotTagger(TAX, top_k=1).fit(FixedEmbedder())


def test_a_tag_close_to_everything_does_not_take_every_text(tagger):
    emb, truth = _window()
    scores = tagger.score(emb)
    assert (scores.argmax(axis=1) == 0).all()  # raw cosines: "generic" wins for every text
    tags = tagger.decide(scores)
    for theme, got in zip(truth, tags, strict=True):
        if theme:
            assert got[0] == theme
    themed = [t for t, th in zip(tags, truth, strict=True) if th]
    assert sum("generic" in t for t in themed) < len(themed) / 4
    # The first (absolute) rule tags "generic" everywhere and the themes rarely.
    absolute = ZeroShotTagger(TAX, top_k=1, rule="absolute").fit(FixedEmbedder()).decide(scores)
    assert sum(t[:1] == ["generic"] for t in absolute) == len(absolute)


@pytest.mark.parametrize(("scale", "shift"), [(0.5, 0.1), (2.0, -0.3), (0.1, 0.6)])
def test_decisions_do_not_depend_on_the_encoders_score_scale(tagger, scale, shift):
    """Another encoder spreads cosines differently: an affine change of all scores changes nothing."""
    emb, _ = _window()
    scores = tagger.score(emb)
    assert tagger.decide(scale * scores + shift) == tagger.decide(scores)
    # The absolute rule's threshold is in one encoder's units: squeezed scores get no tag at all.
    absolute = ZeroShotTagger(TAX, top_k=1, rule="absolute").fit(FixedEmbedder())
    assert all(t == [] for t in absolute.decide(0.2 * scores))


def test_small_batches_use_the_window_calibration_or_the_absolute_rule(tagger):
    emb, truth = _window()
    one = emb[[0]]  # a "late" text alone: too few rows to calibrate on
    absolute = ZeroShotTagger(TAX, top_k=1, rule="absolute").fit(FixedEmbedder())
    assert tagger.decide(tagger.score(one)) == absolute.decide(absolute.score(one))
    tagger.calibrate(emb)
    assert tagger.calibration is not None and tagger.calibration["rows"] == len(emb)
    assert tagger.decide(tagger.score(one))[0][0] == "late"
    # With a calibration, a row is decided the same alone or in its batch.
    assert tagger.decide(tagger.score(emb))[5] == tagger.decide(tagger.score(emb[[5]]))[0]


def test_at_most_max_tags_and_none_for_texts_about_nothing(tagger):
    emb, truth = _window()
    tags = tagger.decide(tagger.score(emb))
    assert all(len(t) <= tagger.max_tags for t in tags)
    nothing = [t for t, th in zip(tags, truth, strict=True) if not th]
    assert sum(not t or t == ["generic"] for t in nothing) >= len(nothing) * 0.8


def test_a_saved_version_keeps_its_rule_and_calibration(tagger, tmp_path):
    from pipeline.tagging.lifecycle import TrainInfo, load_tagger, save_version

    emb, _ = _window()
    tagger.calibrate(emb)
    info = TrainInfo("zero-shot", "taxonomy", TAX.version_id, "x", 0, [], {}, 0.0)
    encoder = {"name": "fixed", "options": {}, "model_id": "fixed-1", "dim": 3}
    folder = save_version(tagger, tmp_path / "v", info, encoder)
    loaded = load_tagger(folder, FixedEmbedder())
    assert loaded.rule == "calibrated" and loaded.calibration == tagger.calibration
    assert loaded.decide(loaded.score(emb)) == tagger.decide(tagger.score(emb))
    # A version saved before the calibrated rule existed keeps deciding as it did.
    options = json.loads((folder / "zeroshot.json").read_text(encoding="utf-8"))
    old = {k: options[k] for k in ("threshold", "top_k", "max_tags", "margin")}
    (folder / "zeroshot.json").write_text(json.dumps(old), encoding="utf-8")
    old_version = load_tagger(folder, FixedEmbedder())
    assert old_version.rule == "absolute" and not old_version.name_prototype
