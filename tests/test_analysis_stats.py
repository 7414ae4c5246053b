"""Each statistic of the analysis layer against scipy/statsmodels on the expanded data."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest
from scipy import stats as sps
from statsmodels.stats.proportion import proportions_ztest
from statsmodels.stats.weightstats import CompareMeans, DescrStatsW

from pipeline.analysis import stats as st


def _nps_values(pro: int, pas: int, det: int) -> np.ndarray:
    return np.array([100.0] * pro + [0.0] * pas + [-100.0] * det)


@pytest.mark.parametrize("counts", [(40, 20, 40), (3, 1, 0), (70, 25, 5)])
def test_nps_interval_is_the_multinomial_one(counts) -> None:
    v = _nps_values(*counts)
    e = st.mean_interval(len(v), v.sum(), (v * v).sum())
    ref = DescrStatsW(v)
    low, high = ref.zconfint_mean(alpha=0.05)
    assert e.value == pytest.approx(ref.mean) and (e.low, e.high) == pytest.approx((low, high))
    pro, det, n = counts[0] / len(v), counts[2] / len(v), len(v)
    multinomial = (pro + det - (pro - det) ** 2) * 100**2 * n / (n - 1)  # sample variance of the values
    assert e.se == pytest.approx(math.sqrt(multinomial / n))


def test_empty_and_single_response_give_nan_not_errors() -> None:
    assert math.isnan(st.mean_interval(0, 0, 0).value)
    one = st.mean_interval(1, 100.0, 10000.0)
    assert one.value == 100.0 and math.isnan(one.low) and math.isnan(one.se)
    assert math.isnan(st.proportion_interval(0, 0).value)
    ch = st.change_test(one, st.mean_interval(0, 0, 0))
    assert math.isnan(ch.p_value)
    assert all(
        math.isnan(x) for x in st.bootstrap_impact(np.array([0.0, 100.0]), np.array([2, 3]), np.array([2, 3]))
    )


def test_csat_interval_is_wilson() -> None:
    from statsmodels.stats.proportion import proportion_confint

    e = st.proportion_interval(18, 20)
    low, high = proportion_confint(18, 20, method="wilson")
    assert (e.value, e.low, e.high) == pytest.approx((90.0, 100 * low, 100 * high))


def test_change_test_matches_statsmodels_ztest() -> None:
    a, b = _nps_values(50, 30, 20), _nps_values(30, 30, 40)
    ea = st.mean_interval(len(a), a.sum(), (a * a).sum())
    eb = st.mean_interval(len(b), b.sum(), (b * b).sum())
    ch = st.change_test(ea, eb)
    z, p = CompareMeans(DescrStatsW(a), DescrStatsW(b)).ztest_ind(usevar="unequal")
    assert ch.z == pytest.approx(z) and ch.p_value == pytest.approx(p) and ch.delta == pytest.approx(40.0)


def test_bootstrap_impact_over_counts_matches_a_row_bootstrap() -> None:
    rng = np.random.default_rng(3)
    values = np.array([-100.0, 0.0, 100.0])
    with_counts, all_counts = np.array([60, 25, 15]), np.array([260, 300, 440])
    impact, low, high = st.bootstrap_impact(values, with_counts, all_counts, samples=4000, seed=1)
    w = np.repeat(values, with_counts)
    o = np.repeat(values, all_counts - with_counts)
    assert impact == pytest.approx(np.concatenate([w, o]).mean() - o.mean())

    def stat(x, y):
        return (x.sum() + y.sum()) / (len(x) + len(y)) - y.mean()

    ref = sps.bootstrap(
        (w, o), stat, n_resamples=4000, method="percentile", random_state=rng, vectorized=False
    )
    assert low == pytest.approx(ref.confidence_interval.low, abs=0.6)
    assert high == pytest.approx(ref.confidence_interval.high, abs=0.6)
    assert st.bootstrap_impact(values, with_counts, all_counts, seed=1) == st.bootstrap_impact(
        values, with_counts, all_counts, seed=1
    )  # seeded: the same interval twice


def test_two_proportion_test_and_bh_match_statsmodels() -> None:
    from statsmodels.stats.multitest import multipletests

    count, n = np.array([30, 5, 12, 0]), np.array([100, 100, 50, 40])
    rest_c, rest_n = np.array([20, 25, 30, 10]), np.array([200, 200, 250, 260])
    p = st.two_proportion_test(count, n, rest_c, rest_n)
    for i in range(4):
        assert p[i] == pytest.approx(proportions_ztest([count[i], rest_c[i]], [n[i], rest_n[i]])[1])
    rej, adj = st.bh_adjust(np.append(p, np.nan))
    ref_rej, ref_adj, _, _ = multipletests(p, method="fdr_bh")
    assert list(rej[:4]) == list(ref_rej) and adj[:4] == pytest.approx(ref_adj) and math.isnan(adj[4])


def test_weighted_driver_model_equals_the_fit_on_every_row() -> None:
    import statsmodels.api as sm

    rng = np.random.default_rng(0)
    n = 3000
    x = rng.random((n, 3)) < [0.3, 0.2, 0.1]
    logit = -1 + 1.5 * x[:, 0] + 0.1 * x[:, 1] - 0.8 * x[:, 2]
    y = (rng.random(n) < 1 / (1 + np.exp(-logit))).astype(int)
    rows = pd.DataFrame(x.astype(int), columns=["a", "b", "c"]).assign(det=y)
    patterns = rows.groupby(["a", "b", "c", "det"]).size().rename("weight").reset_index()
    got = st.logistic_drivers(patterns, ["a", "b", "c"]).set_index("theme")
    ref = sm.Logit(y, sm.add_constant(x.astype(float))).fit(disp=0)
    ci = np.exp(ref.conf_int())
    for i, t in enumerate(["a", "b", "c"], start=1):
        assert got.loc[t, "coef"] == pytest.approx(ref.params[i], rel=1e-6)
        assert (got.loc[t, "low"], got.loc[t, "high"]) == pytest.approx((ci[i, 0], ci[i, 1]), rel=1e-5)
    assert bool(got.loc["a", "significant"]) and got.index[0] == "a"
    assert st.logistic_drivers(patterns.assign(det=0), ["a"]).empty  # no detractor: nothing to explain
