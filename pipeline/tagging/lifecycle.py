"""A tagger version's life, as plain functions: train (labelled, few-shot or self-trained), fine-tune the
encoder, save as a model-store version, load (no code executed), and the tagger the nightly run uses. The
CLI (``feedback tagger ...``), the ``retrain_tagger`` flow and ``notebooks/retrain_tagger.ipynb`` call
these (evaluation and promotion: :mod:`pipeline.tagging.evaluation`); none of them reads or writes
anything but the paths it is given.
"""

from __future__ import annotations

import json
import logging
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from pipeline.embed import Embedder, build_embedder
from pipeline.errors import ConfigError, FeedbackError
from pipeline.model_store import (
    new_manifest,
    open_store,
    read_manifest,
    resolve_version_dir,
    version_id,
    write_manifest,
)
from pipeline.tagging.data import LabelledData, embed_labelled
from pipeline.tagging.taxonomy import Taxonomy
from pipeline.tagging.trained import EmbeddingTfidfTagger
from pipeline.tagging.trained_parts import TaggerParams
from pipeline.tagging.zeroshot import ZeroShotTagger

log = logging.getLogger(__name__)


@dataclass
class TrainInfo:
    """How a tagger was trained (goes into the manifest)."""

    mode: str
    tag_source: str
    taxonomy_version: str | None
    data_sha256: str
    rows: int
    sources: list[str]
    label_counts: dict[str, int]
    seconds: float
    seeds: int = 0
    langs: dict[str, int] = field(default_factory=dict)


def encoder_spec(name: str, options: dict[str, Any] | None, embedder: Embedder) -> dict[str, Any]:
    """What a manifest records about the encoder: registered name, options, model id, and how answers'
    vectors were made from it (``response_vector``; "whole" for a plain encoder)."""
    return {
        "name": name,
        "options": dict(options or {}),
        "model_id": embedder.model_id,
        "dim": embedder.dim,
        "response_vector": getattr(embedder, "response_mode", None) or "whole",
    }


def check_response_vector(manifest: dict[str, Any], wanted: str, what: str) -> None:
    """Warn when a model was trained on other answer vectors than the run gives it.

    A model trained on whole-text vectors and fed the nightly run's sentence means loses about 4 points of F1
    on multi-sentence answers (bench/README.md, "Answer vectors"). Versions written before this was
    recorded were trained on whole-text vectors.
    """
    trained = (manifest.get("encoder") or {}).get("response_vector", "whole")
    if trained != wanted:
        log.warning(
            "%s was trained on %r answer vectors but this run gives it %r ones (config response_vector): "
            "retrain it (feedback tagger train / sentiment train) for its measured quality",
            what,
            trained,
            wanted,
        )


def tag_source(tags: set[str], taxonomy: Taxonomy | None) -> str:
    """Where the tag set comes from: "taxonomy" when every labelled tag is a taxonomy tag, else "data"."""
    if taxonomy is not None and tags and tags <= set(taxonomy.names):
        return "taxonomy"
    return "data"


def taxonomy_seeds(taxonomy: Taxonomy, embedder: Embedder) -> tuple[list[str], np.ndarray, list[list[str]]]:
    """The taxonomy's descriptions and examples as labelled seed rows (text, embedding, [tag])."""
    texts, tags = [], []
    for tag in taxonomy.tags:
        for text in [tag.description, *tag.examples]:
            texts.append(text)
            tags.append([tag.name])
    return texts, np.asarray(embedder.embed(texts), dtype=np.float32), tags


def train_tagger(
    data: LabelledData,
    embedder: Embedder,
    *,
    taxonomy: Taxonomy | None = None,
    params: TaggerParams | dict[str, Any] | None = None,
    use_taxonomy_examples: bool = True,
    version: str | None = None,
    fine_tune: Any = None,
) -> tuple[Any, TrainInfo]:
    """Train a tagger on labelled data: one entry point for zero-shot, few-shot and full training.

    * No labelled tag at all: the zero-shot tagger over ``taxonomy`` (required then).
    * Labels whose tags all belong to ``taxonomy``: the taxonomy's tag set and hierarchy, its example
      phrases as seed rows (``use_taxonomy_examples``); the few-shot recipe when tags have a median
      of fewer than ``params.few_shot_below`` examples (see :class:`EmbeddingTfidfTagger`).
    * Other labels (e.g. an external data set): the tag set of the labels, no hierarchy.

    Args:
        data: Labelled rows; embedded with ``embedder`` when they carry no embeddings yet.
        embedder: The encoder the nightly run uses (its model id is recorded and checked at load).
        taxonomy: The project taxonomy, or None.
        params: Hyper-parameters of the trained tagger.
        use_taxonomy_examples: Add the taxonomy's phrases as seed rows when the tags come from it.
        version: Version id to record (default: time plus data hash).
        fine_tune: ``None`` (default: frozen encoder, vectors from the cache), or a
            :class:`pipeline.embed.tunable.FineTuneParams` (or its dict): first fine-tune a copy of the
            encoder on SetFit pairs of the labelled rows, then train on its vectors. Such a version keeps
            its encoder and embeds texts itself at prediction time (no cached vectors).

    Returns:
        The fitted tagger and how it was trained.
    """
    t0 = time.perf_counter()
    sha = data.sha256
    counts = data.tag_counts()
    langs = pd.Series([x for x in data.langs if x]).value_counts().to_dict() if len(data) else {}
    if not counts:
        if taxonomy is None:
            raise FeedbackError(
                "no labelled tags and no taxonomy: label some rows, or pass the taxonomy for zero-shot tagging"
            )
        if fine_tune is not None:
            log.warning("no labelled tags: nothing to fine-tune on, the zero-shot tagger is used as it is")
        if data.unlabelled is not None and len(data.unlabelled):
            # Rows without tags: self-train on them (the zero-shot tagger when too few, or refused).
            from pipeline.tagging.selftrain import train_without_labels

            return train_without_labels(data.unlabelled, embedder, taxonomy, tagger_params=params)
        model = ZeroShotTagger(taxonomy).fit(embedder)
        info = TrainInfo("zero-shot", "taxonomy", taxonomy.version_id, sha, len(data), data.sources, {}, 0.0)
        info.seconds = round(time.perf_counter() - t0, 2)
        return model, info
    if data.embeddings is None or data.embedder_id != embedder.model_id:
        data = embed_labelled(data, embedder)
    source = tag_source(set(counts), taxonomy)
    parents: dict[str, str | None] = {}
    names: list[str] | None = None
    seeds = None
    if source == "taxonomy" and taxonomy is not None:
        parents = {t.name: t.parent for t in taxonomy.tags}
        names = taxonomy.names
        if use_taxonomy_examples:
            seeds = taxonomy_seeds(taxonomy, embedder)
    elif taxonomy is not None:
        outside = sorted(set(counts) - set(taxonomy.names))
        log.info(
            "%d labelled tags are not in the taxonomy (e.g. %s): using the labels' tag set",
            len(outside),
            outside[:5],
        )
    p = params if isinstance(params, TaggerParams) else TaggerParams.model_validate(params or {})
    encoder, report, vectors = None, None, data.embeddings
    version = version or version_id(
        "tagger",
        "trained" if fine_tune is None else "setfit",
        {
            "data": sha,
            "params": p.model_dump(mode="json"),
            "encoder": embedder.model_id,
            "fine_tune": fine_tune,
        },
    )
    if fine_tune is not None:
        encoder, report, vectors, seeds = fine_tune_encoder(data, embedder, fine_tune, seeds)
    model = EmbeddingTfidfTagger(p).fit(
        data.texts,
        vectors,  # type: ignore[arg-type]
        data.tags,
        langs=data.langs,
        groups=data.groups,
        parents=parents,
        tag_names=names,
        seeds=seeds,
        embedder_id=embedder.model_id,
        version=version,
    )
    if encoder is not None:
        model.encoder_, model.fine_tune_ = encoder, report
    if source == "taxonomy" and taxonomy is not None:  # the codeframe's keyword rules vote too
        from pipeline.tagging.rules import KeywordRules

        model.rules_ = KeywordRules.from_taxonomy(taxonomy, model.tag_names_)
    mode = "few-shot" if model.recipe_.startswith("few-shot") else "full"
    info = TrainInfo(
        mode,
        source,
        taxonomy.version_id if taxonomy is not None and source == "taxonomy" else None,
        sha,
        len(data),
        data.sources,
        counts,
        round(time.perf_counter() - t0, 2),
        seeds=len(seeds[0]) if seeds else 0,
        langs={str(k): int(v) for k, v in langs.items()},
    )
    return model, info


def fine_tune_encoder(
    data: LabelledData,
    embedder: Embedder,
    fine_tune: Any,
    seeds: tuple[list[str], np.ndarray, list[list[str]]] | None,
) -> tuple[Any, Any, np.ndarray, tuple[list[str], np.ndarray, list[list[str]]] | None]:
    """Fine-tune the encoder on the labelled rows (and seed rows); their vectors from the tuned encoder."""
    from pipeline.embed.tunable import FineTuneParams, contrastive_fine_tune, tunable_encoder

    ft = fine_tune if isinstance(fine_tune, FineTuneParams) else FineTuneParams.model_validate(fine_tune)
    encoder = tunable_encoder(getattr(embedder, "base", embedder), ft)
    texts, tags = list(data.texts), list(data.tags)
    if seeds:
        texts, tags = texts + list(seeds[0]), tags + [list(t) for t in seeds[2]]
    report = contrastive_fine_tune(encoder, texts, tags, ft)
    vectors = encoder.encode(data.texts)
    if seeds:
        seeds = (list(seeds[0]), encoder.encode(seeds[0]), [list(t) for t in seeds[2]])
    return encoder, report, vectors, seeds


def save_version(model: Any, out_dir: str | Path, info: TrainInfo, encoder: dict[str, Any]) -> Path:
    """Write a tagger and its manifest into a version folder (created; existing files are replaced)."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    if isinstance(model, ZeroShotTagger):
        (out / "taxonomy.json").write_text(model.taxonomy.model_dump_json(indent=2), encoding="utf-8")
        options = model.options()
        (out / "zeroshot.json").write_text(json.dumps(options, indent=2), encoding="utf-8")
        version, component, cv, extra = model.version, "tagger.zeroshot.v1", None, {}
    else:
        model.save(out)
        version, component, cv = model.version_id_, model.name, model.cv_report_
        extra = {
            "params": model.params_.model_dump(mode="json"),
            "recipe": model.recipe_,
            "thresholds": {
                t: round(float(v), 4) for t, v in zip(model.modelled_, model.thresholds_, strict=True)
            },
            "min_tags": model.min_tags_,
            "max_tags": model.max_tags_,
            "timings": model.timings_,
        }
        if getattr(model, "encoder_", None) is not None:
            component = "tagger.setfit.v1"
            extra["fine_tuned"] = model.fine_tune_.as_dict()
            encoder = {**encoder, "response_vector": "whole"}  # its own encoder embeds whole texts
    if getattr(model, "self_training_", None):  # its label-free gate and what it learned from
        extra["self_training"] = model.self_training_
        gate_values = model.self_training_.get("gate") or {}
        if info.mode == "self-trained":
            # Its cross-validation is against the zero-shot tagger's labels, not people's: the store
            # gates it on the label-free metrics (model_store.GATES["tagger-self-trained"]).
            cv = {
                "confident_agreement": gate_values.get("agreement"),
                "coverage": gate_values.get("coverage"),
                "stability": gate_values.get("stability"),
            }
    manifest = new_manifest(
        "tagger",
        component,
        version,
        info.mode,
        encoder=encoder,
        training_data={
            "sha256": info.data_sha256,
            "rows": info.rows,
            "sources": info.sources,
            "label_counts": info.label_counts,
            "langs": info.langs,
            "seed_rows": info.seeds,
        },
        metrics=cv or {},
        tags=list(model.tag_names_),
        hierarchy=dict(getattr(model, "parents_", {}) or {})
        if not isinstance(model, ZeroShotTagger)
        else {t.name: t.parent for t in model.taxonomy.tags if t.parent},
        tag_source=info.tag_source,
        taxonomy_version=info.taxonomy_version,
        train_seconds=info.seconds,
        **extra,
    )
    write_manifest(out, manifest)
    log.info("tagger %s written to %s", version, out)
    return out


def embedder_from_manifest(manifest: dict[str, Any]) -> Embedder:
    """Build the encoder a version was trained with."""
    enc = manifest.get("encoder") or {}
    if not enc.get("name"):
        raise FeedbackError("the manifest names no encoder; retrain the tagger")
    embedder = build_embedder(enc["name"], **(enc.get("options") or {}))
    if enc.get("model_id") and embedder.model_id != enc["model_id"]:
        raise ConfigError(
            f"the tagger was trained on {enc['model_id']!r} embeddings but {enc['name']!r} now gives "
            f"{embedder.model_id!r} (another package version?): retrain the tagger"
        )
    return embedder


def load_tagger(path: str | Path, embedder: Embedder | None = None) -> Any:
    """Load a tagger version (a version folder, or a registry folder's promoted version).

    Args:
        path: Version or registry folder.
        embedder: The run's encoder: checked against the one the tagger was trained on; needed to load a
            zero-shot version (whose prototypes are embedded at load).

    Raises:
        FeedbackError: when there is no version there.
        ConfigError: when ``embedder`` is not the encoder the tagger was trained on.
    """
    folder = resolve_version_dir(path)
    if folder is None:
        raise FeedbackError(
            f"no tagger at {path}: neither a version folder nor a registry with promoted.json"
        )
    manifest = read_manifest(folder)
    trained_on = (manifest.get("encoder") or {}).get("model_id")
    if embedder is not None and trained_on and trained_on != embedder.model_id:
        raise ConfigError(
            f"tagger {manifest.get('version')} ({folder}) was trained on {trained_on!r} embeddings, but this "
            f"run embeds with {embedder.model_id!r}: retrain it with the run's embedder or change embedder"
        )
    if manifest.get("component") == "tagger.zeroshot.v1":
        taxonomy = Taxonomy.model_validate_json((folder / "taxonomy.json").read_text(encoding="utf-8"))
        options = json.loads((folder / "zeroshot.json").read_text(encoding="utf-8"))
        # Versions saved before the calibrated rule keep deciding as they did.
        options.setdefault("rule", "absolute")
        options.setdefault("name_prototype", False)
        return ZeroShotTagger(taxonomy, **options).fit(embedder or embedder_from_manifest(manifest))
    return EmbeddingTfidfTagger.load(folder)


def embeds_itself(model: Any) -> bool:
    """Whether a tagger embeds texts with its own (fine-tuned) encoder, so needs no cached vectors."""
    return getattr(model, "encoder_", None) is not None


def tagger_for_run(config: Any, taxonomy: Taxonomy, embedder: Embedder, wh: Any = None) -> Any:
    """The tagger a nightly run uses, from the config's ``tagger`` section.

    ``tagger.model_dir`` may name a version folder, or a registry folder whose ``promoted.json`` names
    the version; without it, the model store's promoted tagger (``model_store``; ``wh`` is needed when
    taggers live in the warehouse). That version is loaded (and its encoder checked against the run's).
    With no version, the registered (zero-shot) tagger is fitted on the taxonomy.

    Raises:
        ConfigError: when a trained tagger is named but no version exists, or the encoders differ.
    """
    section = config.tagger
    if section.model_dir is not None:
        folder = resolve_version_dir(section.model_dir, "tagger")
    elif "tagger" not in config.model_store.in_warehouse or wh is not None:
        folder = open_store(config, "tagger", wh).promoted_path()
    else:
        folder = None
    if folder is not None:
        model = load_tagger(folder, embedder)
        manifest = read_manifest(folder)
        if not embeds_itself(model):
            check_response_vector(manifest, config.response_vector, f"tagger {model.version}")
        trained_tax = manifest.get("taxonomy_version")
        if trained_tax and trained_tax != taxonomy.version_id:
            log.warning(
                "tagger %s was trained with taxonomy %s; the config's is %s",
                model.version,
                trained_tax,
                taxonomy.version_id,
            )
        log.info("tagger: %s from %s", model.version, folder)
        return model
    from pipeline.tagging import TRAINED_TAGGERS, build_tagger

    if section.name in TRAINED_TAGGERS:
        raise ConfigError(
            f"tagger {section.name!r} is trained: set tagger.model_dir to a version folder or to a registry "
            "with a promoted version (feedback tagger train / promote), or use 'tagger.zeroshot.v1'"
        )
    return build_tagger(section.name, taxonomy, **section.options).fit(embedder)
