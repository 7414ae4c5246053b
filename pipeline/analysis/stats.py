"""Statistics over aggregated counts: what leaves the warehouse is counts, never rows.

Every function takes counts (or sums) and returns numbers with their uncertainty; each is tested
against scipy/statsmodels on the expanded data (tests/test_analysis_stats.py), including the empty and
the one-response cases (NaN, never an exception).

* The score (NPS, CSAT, CES) is the mean of a per-response value (+100/0/-100, 100/0, the score), so
  one formula serves the three: ``mean ± z·sd/√n`` with the sample variance from ``n``, ``Σv``, ``Σv²``.
  For NPS that is the multinomial variance of (promoters, passives, detractors). CSAT, a proportion,
  gets the Wilson interval (statsmodels ``proportion_confint``), which behaves at 0 % and 100 %.
* Period over period: the difference of two independent means, a z test with unequal variances
  (statsmodels ``CompareMeans.ztest_ind(usevar="unequal")`` on the expanded data gives the same).
* Theme impact: a bootstrap over the aggregated counts: the with-theme and without-theme groups are
  resampled as multinomials of their value counts (seeded), which is what resampling the rows does,
  at a cost that does not depend on the number of rows.
* Multiple comparisons: Benjamini-Hochberg (statsmodels ``multipletests``).
* Drivers: a logistic regression of "detractor" on theme indicators fitted on the distinct theme
  patterns with frequency weights (statsmodels ``GLM``), identical to the fit on every row.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import pandas as pd

NAN = float("nan")


def z_value(confidence: float) -> float:
    """The two-sided normal quantile of a confidence level (1.96 for 0.95)."""
    from scipy.stats import norm

    return float(norm.ppf(0.5 + confidence / 2))


@dataclass(frozen=True)
class Estimate:
    """A score with its interval.

    Attributes:
        value: The estimate (NaN without data).
        low: Lower bound (NaN with fewer than 2 responses).
        high: Upper bound.
        se: Standard error.
        n: Responses it rests on.
    """

    value: float
    low: float
    high: float
    se: float
    n: int


def mean_interval(n: int, total: float, sumsq: float, confidence: float = 0.95) -> Estimate:
    """Mean of values with a normal interval, from ``n``, ``Σv`` and ``Σv²`` (sample variance).

    Args:
        n: Number of values.
        total: Their sum.
        sumsq: The sum of their squares.
        confidence: Level of the interval.
    """
    if n <= 0:
        return Estimate(NAN, NAN, NAN, NAN, 0)
    mean = total / n
    if n < 2:
        return Estimate(mean, NAN, NAN, NAN, n)
    var = max((sumsq - n * mean * mean) / (n - 1), 0.0)
    se = math.sqrt(var / n)
    z = z_value(confidence)
    return Estimate(mean, mean - z * se, mean + z * se, se, n)


def proportion_interval(successes: int, n: int, confidence: float = 0.95, scale: float = 100.0) -> Estimate:
    """A share with its Wilson interval (statsmodels), in units of ``scale`` (100: percent)."""
    if n <= 0:
        return Estimate(NAN, NAN, NAN, NAN, 0)
    from statsmodels.stats.proportion import proportion_confint

    p = successes / n
    low, high = proportion_confint(successes, n, alpha=1 - confidence, method="wilson")
    se = math.sqrt(p * (1 - p) / n)
    return Estimate(scale * p, scale * float(low), scale * float(high), scale * se, n)


def score_interval(
    survey_type: str, n: int, total: float, sumsq: float, satisfied: int = 0, confidence: float = 0.95
) -> Estimate:
    """The score of one survey type with its interval (CSAT: Wilson; NPS and CES: normal)."""
    if survey_type == "csat":
        return proportion_interval(int(satisfied), int(n), confidence)
    return mean_interval(int(n), float(total), float(sumsq), confidence)


@dataclass(frozen=True)
class Change:
    """The difference of two scores with its test.

    Attributes:
        delta: current - previous (NaN when either is missing).
        low: Lower bound of the difference.
        high: Upper bound.
        z: The z statistic.
        p_value: Two-sided p-value (NaN when untestable).
    """

    delta: float
    low: float
    high: float
    z: float
    p_value: float


def change_test(current: Estimate, previous: Estimate, confidence: float = 0.95) -> Change:
    """Two-sample z test of the difference of two independent scores (unequal variances)."""
    delta = current.value - previous.value
    se = (
        math.sqrt(current.se**2 + previous.se**2)
        if not (math.isnan(current.se) or math.isnan(previous.se))
        else NAN
    )
    if math.isnan(delta) or math.isnan(se):
        return Change(delta, NAN, NAN, NAN, NAN)
    from scipy.stats import norm

    zc = z_value(confidence)
    if se == 0:
        return Change(delta, delta, delta, NAN, NAN)
    z = delta / se
    return Change(delta, delta - zc * se, delta + zc * se, z, float(2 * norm.sf(abs(z))))


def bootstrap_impact(
    values: np.ndarray,
    with_counts: np.ndarray,
    all_counts: np.ndarray,
    samples: int = 1000,
    seed: int = 0,
    confidence: float = 0.95,
) -> tuple[float, float, float]:
    """Impact of a theme (score of all minus score without the theme) with a bootstrap interval.

    The responses with the theme and those without are resampled separately as multinomials of their
    counts per distinct value (a stratified bootstrap; seeded).

    Args:
        values: The distinct per-response values (e.g. ``[-100, 0, 100]`` for NPS).
        with_counts: Responses with the theme per value.
        all_counts: All scored responses per value.
        samples: Bootstrap resamples.
        seed: Seed of the generator.
        confidence: Level of the percentile interval.

    Returns:
        ``(impact, low, high)``; NaN where undefined (no responses without the theme; bounds with fewer
        than 2 responses in a group).
    """
    values = np.asarray(values, dtype=float)
    cw = np.asarray(with_counts, dtype=np.int64)
    co = np.asarray(all_counts, dtype=np.int64) - cw
    nw, no = int(cw.sum()), int(co.sum())
    if no <= 0:
        return NAN, NAN, NAN
    impact = float((values @ (cw + co)) / (nw + no) - (values @ co) / no)
    if nw < 2 or no < 2:
        return impact, NAN, NAN
    rng = np.random.default_rng(seed)
    bw = rng.multinomial(nw, cw / nw, size=samples) @ values
    bo = rng.multinomial(no, co / no, size=samples) @ values
    boot = (bw + bo) / (nw + no) - bo / no
    alpha = 1 - confidence
    low, high = np.quantile(boot, [alpha / 2, 1 - alpha / 2])
    return impact, float(low), float(high)


def bh_adjust(p_values: np.ndarray | list[float], alpha: float = 0.05) -> tuple[np.ndarray, np.ndarray]:
    """Benjamini-Hochberg: (rejected, adjusted p-values); NaN p-values stay NaN and are never rejected."""
    p = np.asarray(p_values, dtype=float)
    rejected = np.zeros(p.shape, dtype=bool)
    adjusted = np.full(p.shape, NAN)
    ok = ~np.isnan(p)
    if ok.any():
        from statsmodels.stats.multitest import multipletests

        rej, adj, _, _ = multipletests(p[ok], alpha=alpha, method="fdr_bh")
        rejected[ok], adjusted[ok] = rej, adj
    return rejected, adjusted


def two_proportion_test(
    count: np.ndarray, n: np.ndarray, count_rest: np.ndarray, n_rest: np.ndarray
) -> np.ndarray:
    """Two-sided p-values of the pooled two-proportion z test, vectorised (NaN where undefined).

    The same as statsmodels ``proportions_ztest([count, count_rest], [n, n_rest])`` cell by cell.
    """
    from scipy.stats import norm

    count, n = np.asarray(count, float), np.asarray(n, float)
    count_rest, n_rest = np.asarray(count_rest, float), np.asarray(n_rest, float)
    with np.errstate(divide="ignore", invalid="ignore"):
        p1, p2 = count / n, count_rest / n_rest
        pooled = (count + count_rest) / (n + n_rest)
        se = np.sqrt(pooled * (1 - pooled) * (1 / n + 1 / n_rest))
        z = (p1 - p2) / se
    p = 2 * norm.sf(np.abs(z))
    return np.where(np.isfinite(z), p, NAN)


DRIVER_COLUMNS = ["theme", "n", "coef", "odds_ratio", "low", "high", "p_value", "p_adjusted", "significant"]


def logistic_drivers(
    patterns: pd.DataFrame, themes: list[str], confidence: float = 0.95, fdr: float = 0.05
) -> pd.DataFrame:
    """Logistic regression ``detractor ~ themes`` on weighted patterns.

    Args:
        patterns: One row per distinct (theme set, outcome): a 0/1 column per theme, ``det`` (0/1)
            and ``weight`` (number of responses).
        themes: The theme columns.
        confidence: Level of the odds-ratio intervals.
        fdr: Benjamini-Hochberg rate for ``significant``.

    Returns:
        :data:`DRIVER_COLUMNS`, one row per theme: ``coef`` (log odds), ``odds_ratio`` with its interval,
        ``p_value``, BH-adjusted ``p_adjusted``; empty when the model cannot be fitted (no variation,
        separation).
    """
    empty = pd.DataFrame({c: pd.Series(dtype=object) for c in DRIVER_COLUMNS})
    if len(patterns) == 0 or not themes:
        return empty
    w = patterns["weight"].to_numpy(dtype=float)
    y = patterns["det"].to_numpy(dtype=float)
    n_det = float((w * y).sum())
    if n_det == 0 or n_det == w.sum():
        return empty
    x = patterns[themes].to_numpy(dtype=float)
    keep = (x * w[:, None]).sum(axis=0) > 0
    themes = [t for t, k in zip(themes, keep, strict=True) if k]
    if not themes:
        return empty
    import statsmodels.api as sm
    from statsmodels.tools.sm_exceptions import PerfectSeparationError, PerfectSeparationWarning

    design = sm.add_constant(x[:, keep], has_constant="add")
    import warnings

    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", PerfectSeparationWarning)
            fit = sm.GLM(y, design, family=sm.families.Binomial(), freq_weights=w).fit()
    except (PerfectSeparationError, PerfectSeparationWarning, np.linalg.LinAlgError, ValueError):
        return empty
    ci = np.asarray(fit.conf_int(alpha=1 - confidence))[1:]
    p = np.asarray(fit.pvalues)[1:]
    rejected, adjusted = bh_adjust(p, fdr)
    coef = np.asarray(fit.params)[1:]
    n = (x[:, keep] * w[:, None]).sum(axis=0)
    with np.errstate(over="ignore"):  # a separated theme: an infinite odds ratio is the honest answer
        odds, lo, hi = np.exp(coef), np.exp(ci[:, 0]), np.exp(ci[:, 1])
    out = pd.DataFrame(
        {
            "theme": themes,
            "n": n.astype(int),
            "coef": coef,
            "odds_ratio": odds,
            "low": lo,
            "high": hi,
            "p_value": p,
            "p_adjusted": adjusted,
            "significant": rejected,
        }
    )
    return out.sort_values(["coef", "theme"], ascending=[False, True]).reset_index(drop=True)
