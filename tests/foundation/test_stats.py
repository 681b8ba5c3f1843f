"""refimpl.stats against scipy.stats and hand-checked cases."""

import math

import numpy as np
import pytest
import torch
from scipy import stats as st

from refimpl import stats


def test_summarize_matches_scipy_t_interval():
    x = np.array([0.31, 0.35, 0.29, 0.40, 0.33])
    s = stats.summarize(x)
    lo, hi = st.t.interval(0.95, len(x) - 1, loc=x.mean(), scale=st.sem(x))
    assert s.mean == pytest.approx(x.mean()) and s.sd == pytest.approx(x.std(ddof=1))
    assert (s.low, s.high) == (pytest.approx(lo), pytest.approx(hi))
    s90 = stats.summarize(torch.tensor(x), confidence=0.9)
    assert s90.high - s90.low < s.high - s.low  # narrower at lower coverage
    one = stats.summarize([1.0])
    assert one.mean == 1.0 and math.isnan(one.sd) and math.isnan(one.low)


def test_paired_difference_and_wilcoxon():
    rng = np.random.default_rng(0)
    b = rng.normal(1.0, 0.5, 40)
    a = b - 0.1 + rng.normal(0, 0.02, 40)  # a is lower by 0.1 on every unit
    p = stats.paired(a, b)
    d = a - b
    lo, hi = st.t.interval(0.95, len(d) - 1, loc=d.mean(), scale=st.sem(d))
    assert p.diff == pytest.approx(d.mean()) and (p.low, p.high) == (
        pytest.approx(lo), pytest.approx(hi))
    assert p.p == pytest.approx(st.wilcoxon(a, b).pvalue)
    assert p.resolved and p.high < 0 and p.frac_lower == 1.0
    assert p.verdict("A", "B") == "A is better than B"
    assert p.verdict("A", "B", lower_is_better=False) == "B is better than A"
    # pairing matters: the unpaired spread (0.5) would hide a 0.1 difference
    assert st.ttest_ind(a, b).pvalue > 0.05 and p.p < 1e-6
    same = stats.paired(b, b)
    assert same.diff == 0 and math.isnan(same.p) and not same.resolved
    assert "not resolved" in same.verdict()


def test_verdict_says_when_the_wilcoxon_test_does_not_confirm_the_interval():
    # five large gains and five small losses: the t interval excludes 0, the
    # signed-rank test (rank sums 40 vs 15) does not reach 5 %
    d = np.array([1.0, 1.1, 0.9, 1.0, 1.2, -0.05, -0.04, -0.06, -0.03, -0.02])
    p = stats.paired(d, np.zeros_like(d))
    assert p.resolved and p.low > 0 and p.p > 0.05
    assert p.p == pytest.approx(st.wilcoxon(d).pvalue)
    assert p.verdict("A", "B") == (
        f"B is better than A (t interval only; Wilcoxon p = {stats.fmt(p.p, 2)})")
    # fewer than six pairs: the signed-rank test cannot reach 5 %, no remark
    few = stats.paired([1.0, 1.1, 0.9], [0.0, 0.0, 0.0])
    assert few.verdict("A", "B") == "B is better than A"


def test_wilson_matches_statsmodels_reference_values():
    # reference values of the Wilson score formula (as statsmodels'
    # proportion_confint(method="wilson") prints them)
    r = stats.wilson(7, 20)
    assert (r.low, r.high) == (pytest.approx(0.18119, abs=1e-4), pytest.approx(0.56714, abs=1e-4))
    zero = stats.wilson(0, 50)
    assert zero.low == 0 and zero.high == pytest.approx(0.07135, abs=1e-4)
    full = stats.wilson(50, 50)
    assert full.high == 1 and full.low == pytest.approx(0.92865, abs=1e-4)
    assert "35.0 %" in str(r)


def test_convergence_rule():
    c = stats.convergence([0.100, 0.104], [0.095, 0.097])
    assert c.converged and c.rel_change == pytest.approx(abs(0.096 - 0.102) / 0.102)
    assert not stats.convergence(0.2, 0.1).converged
    assert "NOT converged" in str(stats.convergence(0.2, 0.1))


def test_tables_round_trip(tmp_path):
    rows = [dict(model="FNO", seed=0, err=0.123456789), dict(model="U|Net", seed=1, err=1e-5)]
    md = stats.markdown_table(rows)
    assert md.splitlines()[0] == "| model | seed | err |" and "0.123" in md and "U\\|Net" in md
    path = stats.write_csv(rows, tmp_path / "r.csv")
    back = stats.read_csv(path)
    assert back == rows  # full float precision and ints survive
    assert not list(tmp_path.glob(".*tmp"))


@pytest.mark.parametrize("call, match", [
    (lambda: stats.summarize([]), "values is empty"),
    (lambda: stats.summarize([1.0, float("nan")]), "NaN"),
    (lambda: stats.summarize([[1.0, 2.0]]), "one-dimensional"),
    (lambda: stats.summarize([1.0, 2.0], confidence=95), "confidence"),
    (lambda: stats.paired([1.0, 2.0], [1.0]), "same length"),
    (lambda: stats.wilson(3, 2), "0 <= k <= n"),
    (lambda: stats.wilson(1.5, 2), "k must be an integer"),
    (lambda: stats.markdown_table([]), "rows is empty"),
    (lambda: stats.convergence(1.0, 1.0, rtol=0), "rtol"),
])
def test_bad_input(call, match):
    with pytest.raises((ValueError, TypeError), match=match):
        call()
