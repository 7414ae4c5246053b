"""One store for every model family (tagger, sentiment, topics): versions, manifests, a promoted pointer.

A *version* is a folder of plain files: ``manifest.json`` (the schema below, the same for every family)
and the family's own arrays and JSON (``.npy`` read with ``allow_pickle=False``, never pickle: loading a
model never executes code). Its id is the string recorded on every enriched row
(``<family>-<kind>-<12 hex digits>``, see :func:`version_id`) and the folder's name.

A *store* keeps the versions of one family and a pointer, ``promoted.json``, naming the version the
nightly run uses, the evaluation that let it in and the history of earlier promotions. Two places:

* :class:`FolderStore` (the default): ``<root>/<family>/<version>/`` and ``<root>/<family>/promoted.json``
  (``models/`` in the project; ``tagger.model_dir`` and ``--registry`` name such a family folder);
* :class:`WarehouseStore`: the same files as rows of the warehouse tables ``model_files`` and
  ``model_pointers``, for setups where several machines read the models (topic models live there by
  default, so they travel with the data). A version is unpacked into a local cache folder to be read.

Promotion is gated (:func:`gate`): each family states its metrics (:data:`GATES`), and a candidate is
refused when any of them is worse than the promoted version's, on the same evaluation, by more than
``max_drop`` points (metric x 100), unless forced.
"""

from __future__ import annotations

import hashlib
import json
import logging
import platform
import shutil
import tempfile
from collections.abc import Mapping
from datetime import UTC, datetime
from importlib import metadata
from pathlib import Path
from typing import Any, Literal

import pandas as pd
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from pipeline.errors import ConfigError, FeedbackError
from pipeline.model_gates import MAX_DROP_POINTS, PromotionDecision, gate

log = logging.getLogger(__name__)

FAMILIES = ("tagger", "sentiment", "topics")
Family = Literal["tagger", "sentiment", "topics"]
MANIFEST = "manifest.json"
POINTER = "promoted.json"
MANIFEST_FORMAT = 2

_PACKAGES = ("feedback-pipeline", "numpy", "scipy", "scikit-learn", "pandas", "pydantic")
_ALLOWED_SUFFIXES = (".json", ".npy", ".npz", ".txt", ".yaml", ".md", ".safetensors", ".model")
"""The file types a version may hold: data, never code (a pickle, joblib or torch ``.bin`` is refused;
``.model`` is a sentencepiece vocabulary, a protobuf; ``.npz`` archives are read with
``allow_pickle=False``)."""


# --------------------------------------------------------------------------------------------------
# Version ids and manifests


def version_id(family: str, kind: str, identity: Mapping[str, Any]) -> str:
    """The version id recorded on rows: ``<family>-<kind>-<first 12 hex digits of sha256(identity)>``.

    ``identity`` holds what makes the model what it is (training-data hash, parameters, encoder, fit
    time...): the same identity always gives the same id.
    """
    if family not in FAMILIES:
        raise ConfigError(f"unknown model family {family!r}; expected one of {list(FAMILIES)}")
    blob = json.dumps(dict(identity), sort_keys=True, default=str).encode("utf-8")
    return f"{family}-{kind}-{hashlib.sha256(blob).hexdigest()[:12]}"


def package_versions() -> dict[str, str]:
    """Versions of Python and the packages a saved model depends on."""
    out = {"python": platform.python_version()}
    for dist in _PACKAGES:
        try:
            out[dist] = metadata.version(dist)
        except metadata.PackageNotFoundError:
            out[dist] = "not installed"
    return out


class Manifest(BaseModel):
    """What every version folder says about itself (``manifest.json``); families add their own fields.

    Attributes:
        family: tagger, sentiment or topics.
        component: The registered name that loads it (e.g. ``tagger.embedding_tfidf.v1``).
        version: The version id (:func:`version_id`), also the folder's name and what rows record.
        created_at: When it was trained or fitted (UTC, ISO 8601).
        mode: How it was made: tagger full / few-shot / zero-shot / self-trained; sentiment labels /
            scores / zero_shot / pretrained; topics fitted.
        encoder: The embedder it reads (name, options, model_id, response_vector).
        training_data: rows, sha256 and family details of what it learned from.
        metrics: Its own measurements at training time (cross-validated, or on its window).
        package_versions: Python and package versions it was written with.
    """

    model_config = ConfigDict(extra="allow")

    format: int = MANIFEST_FORMAT
    family: Family
    component: str
    version: str
    created_at: str
    mode: str
    encoder: dict[str, Any] = Field(default_factory=dict)
    training_data: dict[str, Any] = Field(default_factory=dict)
    metrics: dict[str, Any] = Field(default_factory=dict)
    package_versions: dict[str, str] = Field(default_factory=package_versions)


def new_manifest(family: Family, component: str, version: str, mode: str, **fields: Any) -> dict[str, Any]:
    """A validated manifest (as a dict) with ``created_at`` now unless given."""
    fields.setdefault("created_at", datetime.now(UTC).isoformat(timespec="seconds"))
    return Manifest(family=family, component=component, version=version, mode=mode, **fields).model_dump(
        mode="json"
    )


def write_manifest(folder: str | Path, manifest: Mapping[str, Any]) -> Path:
    """Validate and write ``manifest.json`` into a version folder."""
    try:
        checked = Manifest.model_validate(dict(manifest)).model_dump(mode="json")
    except ValidationError as exc:
        raise FeedbackError(f"invalid manifest for {folder}: {exc}") from exc
    path = Path(folder) / MANIFEST
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(checked, indent=2, ensure_ascii=False, default=str) + "\n", encoding="utf-8")
    return path


def read_manifest(folder: str | Path, family: str | None = None) -> dict[str, Any]:
    """The manifest of a version folder, validated (and of ``family`` when given).

    Raises:
        FeedbackError: when the folder holds no manifest, an invalid one, or another family's model.
    """
    path = Path(folder) / MANIFEST
    what = family or "model"
    if not path.exists():
        raise FeedbackError(
            f"{folder} is not a {what} version (no {MANIFEST}); pass a folder written by `feedback "
            f"{family or '<family>'} train`, or a registry folder that holds {POINTER}"
        )
    raw = json.loads(path.read_text(encoding="utf-8"))
    try:
        manifest = Manifest.model_validate(raw).model_dump(mode="json")
    except ValidationError as exc:
        raise FeedbackError(
            f"{path} is not a valid manifest (written by an older release? retrain the model): {exc}"
        ) from exc
    if family is not None and manifest["family"] != family:
        raise FeedbackError(f"{folder} holds a {manifest['family']} model, not a {family} model")
    return manifest


def check_files(folder: str | Path) -> None:
    """Refuse a version folder holding anything but data files (pickle, joblib, code...)."""
    for path in Path(folder).rglob("*"):
        if path.is_file() and path.suffix.lower() not in _ALLOWED_SUFFIXES:
            raise FeedbackError(
                f"{path} is not a data file ({', '.join(_ALLOWED_SUFFIXES)}): model versions never hold "
                "code or pickles; retrain the model with this release"
            )


# --------------------------------------------------------------------------------------------------
# Stores


class ModelStore:
    """The versions of one family and its promoted pointer (see the module docstring)."""

    family: str

    # ---- what a backend provides -------------------------------------------------------------------

    def _has(self, version: str) -> bool:
        raise NotImplementedError

    def _put(self, version: str, folder: Path) -> None:
        raise NotImplementedError

    def _local(self, version: str) -> Path:
        raise NotImplementedError

    def _manifests(self) -> list[dict[str, Any]]:
        raise NotImplementedError

    def pointer(self) -> dict[str, Any] | None:
        """The ``promoted.json`` pointer (None when nothing was promoted yet)."""
        raise NotImplementedError

    def _set_pointer(self, pointer: dict[str, Any]) -> None:
        raise NotImplementedError

    def replace_file(self, version: str, name: str, content: bytes) -> None:
        """Rewrite one file of a stored version (erasure only: versions are otherwise immutable)."""
        raise NotImplementedError

    def describe(self) -> str:
        """Where the store is, for messages."""
        raise NotImplementedError

    # ---- shared behaviour ----------------------------------------------------------------------------

    def add(self, folder: str | Path) -> str:
        """Copy a version folder into the store (a no-op when it is already there); returns its id."""
        src = Path(folder)
        manifest = read_manifest(src, self.family)
        check_files(src)
        version = str(manifest["version"])
        if not self._has(version):
            self._put(version, src)
            log.info("%s version %s stored in %s", self.family, version, self.describe())
        return version

    def path(self, version: str) -> Path:
        """A local folder holding the version's files."""
        if not self._has(version):
            raise FeedbackError(f"no {self.family} version {version!r} in {self.describe()}")
        return self._local(version)

    def promoted_version(self) -> str | None:
        """The id of the promoted version (None when nothing was promoted)."""
        pointer = self.pointer()
        return str(pointer["version"]) if pointer else None

    def promoted_path(self) -> Path | None:
        """The local folder of the promoted version (None when nothing was promoted)."""
        version = self.promoted_version()
        if version is None:
            return None
        if not self._has(version):
            raise FeedbackError(
                f"{self.describe()}: {POINTER} names {version}, which is not stored; promote an existing "
                f"version again (feedback {self.family} promote --model DIR)"
            )
        return self._local(version)

    def versions(self) -> list[dict[str, Any]]:
        """Every stored version's manifest with ``promoted`` set, oldest first."""
        current = self.promoted_version()
        rows = sorted(self._manifests(), key=lambda m: (str(m.get("created_at")), str(m.get("version"))))
        return [{**m, "promoted": m.get("version") == current} for m in rows]

    def promote(
        self,
        candidate: str | Path,
        candidate_metrics: Mapping[str, Any],
        current_metrics: Mapping[str, Any] | None,
        *,
        force: bool = False,
        max_drop: float = MAX_DROP_POINTS,
        evaluation: Mapping[str, Any] | None = None,
        gate_family: str | None = None,
    ) -> PromotionDecision:
        """Gate a candidate version folder against the promoted one and, when it passes (or ``force``),
        store it and point ``promoted.json`` at it (the pointer keeps the history of promotions).

        Args:
            candidate: The candidate's version folder.
            candidate_metrics: Its metrics on the evaluation.
            current_metrics: The promoted version's on the same evaluation; with nothing promoted, those
                of what runs without a version (a zero-shot default), or None to accept the first one.
            force: Promote even when the gate refuses.
            max_drop: The gate's tolerance in points.
            evaluation: What the numbers were measured on (recorded in the pointer).
            gate_family: The key of :data:`GATES` (default: the store's family).
        """
        manifest = read_manifest(candidate, self.family)
        current = self.pointer()
        if current is None and current_metrics is None:
            ok, reason = True, "no version promoted yet"
        else:  # against the promoted version, or what runs without one (e.g. the zero-shot default)
            ok, reason = gate(gate_family or self.family, candidate_metrics, current_metrics or {}, max_drop)
        decision = PromotionDecision(
            promoted=ok or force,
            family=self.family,
            candidate_version=str(manifest["version"]),
            current_version=current.get("version") if current else None,
            forced=force and not ok,
            reason=reason if ok else (f"forced: {reason}" if force else reason),
            candidate_metrics=_rounded(candidate_metrics),
            current_metrics=None if current_metrics is None else _rounded(current_metrics),
        )
        if not decision.promoted:
            log.warning("%s promotion refused: %s", self.family, reason)
            return decision
        version = self.add(candidate)
        history = list((current or {}).get("history", []))
        if current:
            history.append({k: current.get(k) for k in ("version", "promoted_at", "metrics", "forced")})
        pointer = {
            "family": self.family,
            "version": version,
            "component": manifest.get("component"),
            "encoder_id": (manifest.get("encoder") or {}).get("model_id"),
            "promoted_at": datetime.now(UTC).isoformat(timespec="seconds"),
            "metrics": decision.candidate_metrics,
            "previous_version": decision.current_version,
            "previous_metrics": decision.current_metrics,
            "forced": decision.forced,
            "reason": decision.reason,
            "evaluation": dict(evaluation or {}),
            "history": history[-50:],
        }
        self._set_pointer(pointer)
        decision.pointer = self.describe()
        log.info("promoted %s %s (%s)", self.family, version, decision.reason)
        return decision


def _rounded(metrics: Mapping[str, Any]) -> dict[str, Any]:
    return {k: round(v, 4) if isinstance(v, float) else v for k, v in metrics.items()}


class FolderStore(ModelStore):
    """Versions as folders under ``<root>`` (a family folder such as ``models/tagger``).

    Args:
        root: The family folder: ``<root>/<version>/`` and ``<root>/promoted.json``.
        family: tagger, sentiment or topics.
    """

    def __init__(self, root: str | Path, family: str) -> None:
        self.root = Path(root)
        self.family = family

    def _has(self, version: str) -> bool:
        return (self.root / version / MANIFEST).exists()

    def _put(self, version: str, folder: Path) -> None:
        target = self.root / version
        if folder.resolve() == target.resolve():
            return
        self.root.mkdir(parents=True, exist_ok=True)
        tmp = self.root / f".{version}.tmp"
        shutil.rmtree(tmp, ignore_errors=True)
        shutil.copytree(folder, tmp)
        tmp.replace(target)  # a reader never sees half a version

    def _local(self, version: str) -> Path:
        return self.root / version

    def _manifests(self) -> list[dict[str, Any]]:
        if not self.root.is_dir():
            return []
        out = []
        for sub in sorted(self.root.iterdir()):
            if (sub / MANIFEST).exists():
                try:
                    out.append({**read_manifest(sub, self.family), "path": str(sub)})
                except FeedbackError as exc:
                    log.warning("skipped %s: %s", sub, exc)
        return out

    def pointer(self) -> dict[str, Any] | None:
        path = self.root / POINTER
        return json.loads(path.read_text(encoding="utf-8")) if path.exists() else None

    def _set_pointer(self, pointer: dict[str, Any]) -> None:
        self.root.mkdir(parents=True, exist_ok=True)
        tmp = self.root / f".{POINTER}.tmp"
        tmp.write_text(json.dumps(pointer, indent=2, default=str) + "\n", encoding="utf-8")
        tmp.replace(self.root / POINTER)  # atomic: the nightly run never reads half a pointer

    def replace_file(self, version: str, name: str, content: bytes) -> None:
        target = self.path(version) / name
        tmp = target.with_name(f".{target.name}.tmp")
        tmp.write_bytes(content)
        tmp.replace(target)

    def describe(self) -> str:
        return str(self.root)


FILES_TABLE = "model_files"
POINTERS_TABLE = "model_pointers"


class WarehouseStore(ModelStore):
    """Versions as rows of the warehouse (``model_files``: family, version, name, content;
    ``model_pointers``: family, pointer), unpacked on demand into a local cache folder.

    Args:
        wh: An open warehouse.
        family: tagger, sentiment or topics.
        files_table: Table of the versions' files.
        pointers_table: Table of the promoted pointers.
        cache_dir: Where versions are unpacked (default: a folder under the system's temp dir).
    """

    def __init__(
        self,
        wh: Any,
        family: str,
        files_table: str = FILES_TABLE,
        pointers_table: str = POINTERS_TABLE,
        cache_dir: str | Path | None = None,
    ) -> None:
        self.wh = wh
        self.family = family
        self.files_table = files_table
        self.pointers_table = pointers_table
        self.cache_dir = Path(cache_dir) if cache_dir else Path(tempfile.gettempdir()) / "feedback-models"

    def _rows(self, version: str | None = None, names: list[str] | None = None) -> pd.DataFrame:
        if not self.wh.table_exists(self.files_table):
            return pd.DataFrame(columns=["family", "version", "name", "content"])
        where: dict[str, list] = {"family": [self.family]}
        if version is not None:
            where["version"] = [version]
        if names is not None:
            where["name"] = names
        return self.wh.read(self.files_table, where=where)

    def _has(self, version: str) -> bool:
        return len(self._rows(version, [MANIFEST])) > 0

    def _put(self, version: str, folder: Path) -> None:
        now = pd.Timestamp(datetime.now(UTC).replace(tzinfo=None)).as_unit("us")
        rows = [
            {
                "family": self.family,
                "version": version,
                "name": p.relative_to(folder).as_posix(),
                "content": p.read_bytes(),
                "created_at": now,
            }
            for p in sorted(folder.rglob("*"))
            if p.is_file()
        ]
        frame = pd.DataFrame(rows)
        frame["created_at"] = frame["created_at"].astype("datetime64[us]")
        self.wh.upsert(self.files_table, frame, key=["family", "version", "name"])

    def _local(self, version: str) -> Path:
        target = self.cache_dir / self.family / version
        stamp = target / ".complete"
        if stamp.exists():
            return target
        rows = self._rows(version)
        tmp = self.cache_dir / self.family / f".{version}.{id(self)}.tmp"
        shutil.rmtree(tmp, ignore_errors=True)
        for rec in rows.to_dict("records"):
            path = tmp / str(rec["name"])
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_bytes(bytes(rec["content"]))
        (tmp / ".complete").write_text("", encoding="utf-8")
        shutil.rmtree(target, ignore_errors=True)
        tmp.replace(target)
        return target

    def _manifests(self) -> list[dict[str, Any]]:
        out = []
        for rec in self._rows(names=[MANIFEST]).to_dict("records"):
            try:
                raw = json.loads(bytes(rec["content"]).decode("utf-8"))
                out.append({**Manifest.model_validate(raw).model_dump(mode="json"), "path": None})
            except (ValueError, ValidationError) as exc:
                log.warning("skipped %s version %s: %s", self.family, rec["version"], exc)
        return out

    def pointer(self) -> dict[str, Any] | None:
        if not self.wh.table_exists(self.pointers_table):
            return None
        rows = self.wh.read(self.pointers_table, where={"family": [self.family]})
        return json.loads(rows["pointer"].iloc[0]) if len(rows) else None

    def _set_pointer(self, pointer: dict[str, Any]) -> None:
        now = pd.Timestamp(datetime.now(UTC).replace(tzinfo=None)).as_unit("us")
        frame = pd.DataFrame(
            [{"family": self.family, "pointer": json.dumps(pointer, default=str), "updated_at": now}]
        )
        frame["updated_at"] = frame["updated_at"].astype("datetime64[us]")
        self.wh.upsert(self.pointers_table, frame, key=["family"])

    def replace_file(self, version: str, name: str, content: bytes) -> None:
        rows = self._rows(version, [name])
        if rows.empty:
            raise FeedbackError(f"no file {name} in {self.family} version {version}")
        rows = rows.assign(content=[content])
        self.wh.upsert(self.files_table, rows, key=["family", "version", "name"])
        shutil.rmtree(self.cache_dir / self.family / version, ignore_errors=True)

    def describe(self) -> str:
        return f"the warehouse ({self.files_table}, family {self.family})"


def family_folder(config: Any, family: str) -> Path:
    """The folder store of ``family`` under the config's ``model_store.path``."""
    return Path(config.model_store.path) / family


def open_store(config: Any, family: str, wh: Any = None, registry: str | Path | None = None) -> ModelStore:
    """The store of ``family`` as the config places it.

    Args:
        config: The enrichment config (``model_store.path`` and ``model_store.in_warehouse``).
        family: tagger, sentiment or topics.
        wh: The open warehouse (needed when the family lives in the warehouse).
        registry: A family folder given on the command line: a folder store there, whatever the config.
    """
    if family not in FAMILIES:
        raise ConfigError(f"unknown model family {family!r}; expected one of {list(FAMILIES)}")
    if registry is not None:
        return FolderStore(registry, family)
    if family in config.model_store.in_warehouse:
        if wh is None:
            raise ConfigError(
                f"{family} models live in the warehouse (model_store.in_warehouse): pass --warehouse or a "
                "config whose warehouse holds them"
            )
        t = config.tables
        return WarehouseStore(wh, family, t.model_files, t.model_pointers, Path(config.state_dir) / "models")
    return FolderStore(family_folder(config, family), family)


def resolve_version_dir(path: str | Path, family: str | None = None) -> Path | None:
    """A version folder from a version folder or a family (registry) folder's promoted version; None when
    ``path`` is a registry without a promoted version, or does not exist."""
    p = Path(path)
    if (p / MANIFEST).exists():
        return p
    if p.is_dir():
        pointer_file = p / POINTER
        if not pointer_file.exists():
            return None
        pointer = json.loads(pointer_file.read_text(encoding="utf-8"))
        store = FolderStore(p, family or str(pointer.get("family") or "tagger"))
        return store.promoted_path()
    return None
