"""Tagger versions on disk: ``models/tagger/<version>/`` with a manifest, and a ``promoted.json`` pointer.

A version folder holds the model files and ``manifest.json``: component, version, mode (zero-shot,
few-shot, full), tag set and where it came from, training-data hash, encoder, taxonomy version,
cross-validated metrics, training time and package versions. The registry folder holds one pointer,
``promoted.json``, naming the version the nightly run uses and the evaluation that let it in, with the
history of earlier promotions. Promotion is gated: a candidate more than ``max_drop`` micro F1 below the
current version on the same evaluation set is refused unless forced.
"""

from __future__ import annotations

import json
import logging
import platform
import shutil
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from importlib import metadata
from pathlib import Path
from typing import Any

from pipeline.config import PROJECT_ROOT
from pipeline.errors import FeedbackError

log = logging.getLogger(__name__)

DEFAULT_REGISTRY = PROJECT_ROOT / "models" / "tagger"
MANIFEST = "manifest.json"
POINTER = "promoted.json"
MAX_DROP = 0.01
"""Largest micro-F1 drop (1 point) a promotion accepts without ``force``."""

_PACKAGES = ("feedback-pipeline", "numpy", "scipy", "scikit-learn", "pandas", "pydantic")


def package_versions() -> dict[str, str]:
    """Versions of Python and the packages a trained tagger depends on."""
    out = {"python": platform.python_version()}
    for dist in _PACKAGES:
        try:
            out[dist] = metadata.version(dist)
        except metadata.PackageNotFoundError:
            out[dist] = "not installed"
    return out


def new_version_id(data_sha256: str, now: datetime | None = None) -> str:
    """A sortable version id: UTC time plus the first characters of the training-data hash."""
    now = now or datetime.now(UTC)
    return f"{now:%Y%m%d-%H%M%S}-{data_sha256[:8]}"


def write_manifest(model_dir: str | Path, manifest: dict[str, Any]) -> Path:
    """Write ``manifest.json`` into a version folder."""
    path = Path(model_dir) / MANIFEST
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(manifest, indent=2, ensure_ascii=False, default=str) + "\n", encoding="utf-8")
    return path


def read_manifest(model_dir: str | Path) -> dict[str, Any]:
    """The manifest of a version folder.

    Raises:
        FeedbackError: when the folder is not a tagger version.
    """
    path = Path(model_dir) / MANIFEST
    if not path.exists():
        raise FeedbackError(
            f"{model_dir} is not a tagger version (no {MANIFEST}); pass a folder written by "
            "`feedback tagger train`, or a registry folder that holds promoted.json"
        )
    return json.loads(path.read_text(encoding="utf-8"))


def read_pointer(registry: str | Path) -> dict[str, Any] | None:
    """The registry's ``promoted.json`` (None when nothing was promoted yet)."""
    path = Path(registry) / POINTER
    return json.loads(path.read_text(encoding="utf-8")) if path.exists() else None


def promoted_dir(registry: str | Path) -> Path | None:
    """The folder of the promoted version of a registry (None when nothing was promoted)."""
    pointer = read_pointer(registry)
    if pointer is None:
        return None
    path = Path(pointer["path"])
    path = path if path.is_absolute() else Path(registry) / path
    if not (path / MANIFEST).exists():
        raise FeedbackError(
            f"{Path(registry) / POINTER} points to {path}, which holds no tagger version; "
            "promote an existing version again (feedback tagger promote --model DIR)"
        )
    return path


def resolve_model_dir(path: str | Path) -> Path | None:
    """A version folder from a version folder or a registry folder (its promoted version); None when
    ``path`` is a registry without a promoted version, or does not exist."""
    p = Path(path)
    if (p / MANIFEST).exists():
        return p
    if p.is_dir():
        return promoted_dir(p)
    return None


def list_versions(registry: str | Path) -> list[dict[str, Any]]:
    """Every version folder of a registry with its manifest summary, oldest first."""
    reg = Path(registry)
    if not reg.exists():
        return []
    current = read_pointer(reg) or {}
    rows = []
    for sub in sorted(reg.iterdir()):
        if (sub / MANIFEST).exists():
            man = read_manifest(sub)
            cv = man.get("cv_metrics") or {}
            rows.append(
                {
                    "version": man.get("version"),
                    "path": str(sub),
                    "created_at": man.get("created_at"),
                    "mode": man.get("mode"),
                    "n_train": (man.get("training_data") or {}).get("rows"),
                    "cv_micro_f1": cv.get("micro_f1"),
                    "promoted": man.get("version") == current.get("version"),
                }
            )
    return rows


@dataclass
class PromotionDecision:
    """The outcome of a promotion request."""

    promoted: bool
    candidate_version: str
    candidate_micro_f1: float
    current_version: str | None
    current_micro_f1: float | None
    forced: bool
    reason: str
    pointer: str | None = None

    def as_dict(self) -> dict[str, Any]:
        """JSON-ready form."""
        return asdict(self)


def gate(candidate_f1: float, current_f1: float | None, max_drop: float = MAX_DROP) -> tuple[bool, str]:
    """Whether a candidate may replace the current version, and why (micro F1 on one evaluation set)."""
    if current_f1 is None:
        return True, "no version promoted yet"
    drop = current_f1 - candidate_f1
    if drop > max_drop + 1e-12:
        return False, (
            f"candidate micro F1 {candidate_f1:.4f} is {100 * drop:.1f} points below the current "
            f"{current_f1:.4f} (the limit is {100 * max_drop:.1f}); use --force to promote anyway"
        )
    return True, f"candidate micro F1 {candidate_f1:.4f} vs current {current_f1:.4f}"


def promote(
    candidate_dir: str | Path,
    registry: str | Path,
    candidate_f1: float,
    current_f1: float | None,
    *,
    force: bool = False,
    max_drop: float = MAX_DROP,
    evaluation: dict[str, Any] | None = None,
) -> PromotionDecision:
    """Gate a candidate and, when it passes (or ``force``), point the registry's ``promoted.json`` at it.

    A candidate outside the registry is copied into ``<registry>/<version>/`` first, so the registry is
    self-contained. The pointer keeps the history of earlier promotions.

    Args:
        candidate_dir: The candidate version folder.
        registry: The registry folder (default ``models/tagger``).
        candidate_f1: Candidate micro F1 on the evaluation set.
        current_f1: The promoted version's micro F1 on the same set (None when none is promoted).
        force: Promote even when the gate refuses.
        max_drop: The gate's tolerance (0.01 = 1 point of micro F1).
        evaluation: What the numbers were measured on (recorded in the pointer).
    """
    reg = Path(registry)
    man = read_manifest(candidate_dir)
    current = read_pointer(reg)
    ok, reason = gate(candidate_f1, current_f1, max_drop)
    decision = PromotionDecision(
        promoted=ok or force,
        candidate_version=str(man["version"]),
        candidate_micro_f1=round(float(candidate_f1), 4),
        current_version=current.get("version") if current else None,
        current_micro_f1=None if current_f1 is None else round(float(current_f1), 4),
        forced=force and not ok,
        reason=reason if ok else (f"forced: {reason}" if force else reason),
    )
    if not decision.promoted:
        log.warning("promotion refused: %s", reason)
        return decision
    reg.mkdir(parents=True, exist_ok=True)
    src = Path(candidate_dir).resolve()
    target = src
    if src.parent != reg.resolve():
        target = reg / str(man["version"])
        if target.resolve() != src:
            if target.exists():
                shutil.rmtree(target)
            shutil.copytree(src, target)
    history = list((current or {}).get("history", []))
    if current:
        history.append({k: current.get(k) for k in ("version", "promoted_at", "micro_f1", "forced")})
    pointer = {
        "version": man["version"],
        "path": target.name if target.resolve().parent == reg.resolve() else str(target),
        "component": man.get("component"),
        "encoder_id": (man.get("encoder") or {}).get("model_id"),
        "promoted_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "micro_f1": decision.candidate_micro_f1,
        "previous_version": decision.current_version,
        "previous_micro_f1": decision.current_micro_f1,
        "forced": decision.forced,
        "evaluation": evaluation or {},
        "history": history[-50:],
    }
    tmp = reg / f".{POINTER}.tmp"
    tmp.write_text(json.dumps(pointer, indent=2, default=str) + "\n", encoding="utf-8")
    tmp.replace(reg / POINTER)  # atomic: the nightly run never reads half a pointer
    decision.pointer = str(reg / POINTER)
    log.info("promoted tagger %s (%s)", man["version"], decision.reason)
    return decision
