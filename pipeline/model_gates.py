"""The promotion gate of every model family: the metrics each family is gated on, and the decision (a
candidate is promoted only when no gate metric drops by more than the allowed points)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from typing import Any

MAX_DROP_POINTS = 1.0
"""Default gate tolerance: a candidate may be at most 1 point (0.01) worse on each gate metric."""


# --------------------------------------------------------------------------------------------------
# Gates


@dataclass(frozen=True)
class GateMetric:
    """One metric a promotion is judged on (``higher``: True when larger is better)."""

    name: str
    higher: bool = True


GATES: dict[str, tuple[GateMetric, ...]] = {
    "tagger": (GateMetric("micro_f1"),),
    # Labels: macro F1 over the polarity classes; scores: Spearman of the model's score with the survey's.
    "sentiment": (GateMetric("macro_f1"), GateMetric("spearman_score")),
    "topics": (
        GateMetric("stability_ari"),
        GateMetric("outlier_share", higher=False),
        GateMetric("nmi_tags"),
    ),
    # A self-trained tagger (no labels): agreement with the zero-shot tagger's most confident decisions,
    # coverage and stability across resamples, all label-free.
    "tagger-self-trained": (
        GateMetric("confident_agreement"),
        GateMetric("coverage"),
        GateMetric("stability"),
    ),
}
"""Each family's gate metrics; the ones both reports carry are compared."""


def gate(
    family: str,
    candidate: Mapping[str, Any],
    current: Mapping[str, Any] | None,
    max_drop: float = MAX_DROP_POINTS,
) -> tuple[bool, str]:
    """Whether a candidate may replace the current version, and why.

    Args:
        family: A key of :data:`GATES`.
        candidate: The candidate's metrics on the evaluation.
        current: The promoted version's metrics on the same evaluation (None: nothing promoted).
        max_drop: The largest worsening accepted on any gate metric, in points (1.0 = 0.01).
    """
    if current is None:
        return True, "no version promoted yet"
    metrics = [m for m in GATES[family] if _num(candidate.get(m.name)) is not None]
    compared = [m for m in metrics if _num(current.get(m.name)) is not None]
    if not compared:
        names = [m.name for m in GATES[family]]
        return False, f"no gate metric ({', '.join(names)}) was measured for both versions; use --force"
    parts, worse = [], []
    for m in compared:
        cand, cur = float(candidate[m.name]), float(current[m.name])
        drop = (cur - cand) if m.higher else (cand - cur)
        parts.append(f"{m.name} {cand:.4f} vs {cur:.4f}")
        if 100 * drop > max_drop + 1e-9:
            worse.append(f"{m.name} is {100 * drop:.1f} points worse ({cand:.4f} vs {cur:.4f})")
    if worse:
        return False, "; ".join(worse) + f" (the limit is {max_drop:.1f}); use --force to promote anyway"
    return True, "candidate " + ", ".join(parts)


def _num(value: object) -> float | None:
    try:
        out = float(value)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        return None
    return None if out != out else out


@dataclass
class PromotionDecision:
    """The outcome of a promotion request."""

    promoted: bool
    family: str
    candidate_version: str
    current_version: str | None
    forced: bool
    reason: str
    candidate_metrics: dict[str, Any] = field(default_factory=dict)
    current_metrics: dict[str, Any] | None = None
    pointer: str | None = None

    def as_dict(self) -> dict[str, Any]:
        """JSON-ready form."""
        return asdict(self)
