"""Unit tests of lmlab.core.stats against values computed independently in the test."""

import math
import warnings

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy import optimize, special
from scipy import stats as sps

from lmlab.core.stats import (
    bootstrap_ci,
    cohen_kappa,
    fit_logistic_1d,
    holm,
    krippendorff_alpha,
    krippendorff_alpha_ordinal,
    length_controlled_win_rate,
    mcnemar_exact,
    paired_bootstrap_diff,
    proportion_difference_test,
    quadratic_weighted_kappa,
    wilson_interval,
    win_rate,
    win_rate_from_judgements,
)

PROPERTY = settings(max_examples=60, derandomize=True, deadline=None)


def _numpy_bootstrap_means(x, n_resamples, seed, statistic=np.mean):
    """The resampling scipy does, written out: one (n_resamples, n) index draw."""
    rng = np.random.default_rng(seed)
    idx = rng.integers(0, len(x), (n_resamples, len(x)))
    return statistic(x[idx], axis=-1)


# --------------------------------------------------------------------------- bootstrap


def test_percentile_bootstrap_matches_numpy_loop():
    x = np.random.default_rng(7).normal(3.0, 2.0, size=40)
    result = bootstrap_ci(x, n_resamples=1000, seed=11, method="percentile")
    means = _numpy_bootstrap_means(x, 1000, 11)
    low, high = np.percentile(means, [2.5, 97.5])
    assert result["method"] == "percentile"
    assert result["low"] == pytest.approx(low, rel=1e-12)
    assert result["high"] == pytest.approx(high, rel=1e-12)
    assert result["estimate"] == pytest.approx(np.mean(x))
    assert result["n"] == 40


def test_bca_matches_hand_written_bca():
    x = np.random.default_rng(3).exponential(2.0, size=30)  # skewed, so BCa != percentile
    result = bootstrap_ci(x, n_resamples=2000, seed=5)
    assert result["method"] == "BCa"
    theta_b = _numpy_bootstrap_means(x, 2000, 5)
    theta = np.mean(x)
    z0 = special.ndtri(np.mean(theta_b < theta))  # continuous data: no ties
    jack = np.array([np.mean(np.delete(x, i)) for i in range(len(x))])
    u = jack.mean() - jack
    accel = np.sum(u**3) / (6 * np.sum(u**2) ** 1.5)
    bounds = []
    for z_alpha in (special.ndtri(0.025), special.ndtri(0.975)):
        level = special.ndtr(z0 + (z0 + z_alpha) / (1 - accel * (z0 + z_alpha)))
        bounds.append(np.percentile(theta_b, 100 * level))
    assert result["low"] == pytest.approx(bounds[0], rel=1e-9)
    assert result["high"] == pytest.approx(bounds[1], rel=1e-9)
    percentile = bootstrap_ci(x, n_resamples=2000, seed=5, method="percentile")
    assert (result["low"], result["high"]) != (percentile["low"], percentile["high"])


def test_bootstrap_constant_and_tiny_samples():
    constant = bootstrap_ci([0.7] * 12)
    assert constant["estimate"] == pytest.approx(0.7)
    assert constant["low"] == constant["high"] == constant["estimate"]
    assert (constant["n"], constant["method"]) == (12, "constant")
    single = bootstrap_ci([3.0])
    assert (single["low"], single["high"], single["n"], single["method"]) == (
        3.0,
        3.0,
        1,
        "constant",
    )
    pair = bootstrap_ci([0.0, 1.0], n_resamples=500, seed=2)
    assert pair["method"] == "percentile"  # BCa needs n >= 3
    assert pair["low"] == 0.0 and pair["high"] == 1.0
    with pytest.raises(ValueError):
        bootstrap_ci([])
    with pytest.raises(ValueError):
        bootstrap_ci([1.0, float("nan")])


def test_bootstrap_falls_back_to_percentile_when_bca_is_degenerate():
    # The median of [0,0,0,0,1] is 0 in almost every resample and in every jackknife
    # sample: zero jackknife variance makes BCa's acceleration 0/0.
    x = np.array([0.0, 0.0, 0.0, 0.0, 1.0])
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # nothing from scipy leaks out
        result = bootstrap_ci(x, statistic=np.median, n_resamples=1000, seed=4)
    assert result["method"] == "percentile"
    medians = _numpy_bootstrap_means(x, 1000, 4, statistic=np.median)
    assert result["low"] == pytest.approx(np.percentile(medians, 2.5))
    assert result["high"] == pytest.approx(np.percentile(medians, 97.5))


def test_bootstrap_is_deterministic_per_seed():
    x = np.random.default_rng(0).random(25)
    assert bootstrap_ci(x, seed=9) == bootstrap_ci(x, seed=9)
    assert bootstrap_ci(x, seed=9) != bootstrap_ci(x, seed=10)


def test_bootstrap_of_binary_accuracy_is_inside_unit_interval():
    correct = np.array([1, 0, 1, 1, 0, 1, 1, 1, 0, 1] * 3, dtype=float)
    result = bootstrap_ci(correct, seed=1)
    assert 0.0 <= result["low"] < result["estimate"] < result["high"] <= 1.0


def test_paired_diff_equals_bootstrap_of_differences():
    # Paired resampling of (a, b) draws the same item indices as resampling a - b.
    rng = np.random.default_rng(12)
    a = rng.normal(0.6, 0.2, 35)
    b = a - rng.normal(0.05, 0.1, 35)
    paired = paired_bootstrap_diff(a, b, n_resamples=1500, seed=8)
    direct = bootstrap_ci(a - b, n_resamples=1500, seed=8)
    assert paired["method"] == direct["method"] == "BCa"
    assert paired["estimate"] == pytest.approx(direct["estimate"])
    assert paired["low"] == pytest.approx(direct["low"], rel=1e-9)
    assert paired["high"] == pytest.approx(direct["high"], rel=1e-9)
    assert paired["mean_a"] == pytest.approx(a.mean()) and paired["mean_b"] == pytest.approx(
        b.mean()
    )


def test_paired_diff_degenerate_cases():
    same = paired_bootstrap_diff([1, 0, 1, 1], [1, 0, 1, 1])
    assert (same["estimate"], same["low"], same["high"], same["method"]) == (
        0.0,
        0.0,
        0.0,
        "constant",
    )
    shifted = paired_bootstrap_diff([2.0, 3.0, 4.0], [1.0, 2.0, 3.0])
    assert shifted["low"] == shifted["high"] == shifted["estimate"] == 1.0
    with pytest.raises(ValueError):
        paired_bootstrap_diff([1, 0], [1, 0, 1])
    assert paired_bootstrap_diff([1, 0, 1, 0, 1], [0, 0, 1, 1, 0], seed=3) == paired_bootstrap_diff(
        [1, 0, 1, 0, 1], [0, 0, 1, 1, 0], seed=3
    )


# --------------------------------------------------------------------------- McNemar, Holm


def _mcnemar_by_hand(n01, n10):
    m = n01 + n10
    tail = sum(math.comb(m, i) for i in range(min(n01, n10) + 1)) / 2**m
    return min(1.0, 2 * tail)


@pytest.mark.parametrize("n01, n10", [(1, 9), (4, 6), (0, 5), (7, 7), (12, 3)])
def test_mcnemar_exact_matches_binomial_sum(n01, n10):
    n11, n00 = 5, 3
    a = [1] * n11 + [0] * n00 + [0] * n01 + [1] * n10
    b = [1] * n11 + [0] * n00 + [1] * n01 + [0] * n10
    result = mcnemar_exact(a, b)
    assert (result["n01"], result["n10"], result["n"]) == (n01, n10, len(a))
    assert result["p_value"] == pytest.approx(_mcnemar_by_hand(n01, n10), rel=1e-12)
    assert mcnemar_exact(b, a)["p_value"] == pytest.approx(result["p_value"])


def test_mcnemar_without_discordant_pairs():
    assert mcnemar_exact([1, 0, 1], [1, 0, 1]) == {"n": 3, "n01": 0, "n10": 0, "p_value": 1.0}


def test_holm_hand_worked_example():
    # sorted: 0.005*4 = 0.02, 0.01*3 = 0.03, 0.03*2 = 0.06, 0.04*1 = 0.04 -> running max 0.06
    result = holm([0.01, 0.04, 0.03, 0.005], alpha=0.05)
    assert result["adjusted"] == pytest.approx([0.03, 0.06, 0.06, 0.02])
    assert result["reject"] == [True, False, False, True]


def test_holm_caps_at_one_and_handles_empty():
    assert holm([0.5, 0.6])["adjusted"] == [1.0, 1.0]
    assert holm([]) == {"adjusted": [], "reject": []}
    with pytest.raises(ValueError):
        holm([0.1, 1.5])


@PROPERTY
@given(st.lists(st.floats(0.0, 1.0), min_size=1, max_size=12))
def test_holm_is_monotone_and_conservative(p_values):
    adjusted = holm(p_values)["adjusted"]
    for raw, adj in zip(p_values, adjusted):
        assert raw <= adj <= 1.0
    order = np.argsort(p_values, kind="stable")
    assert all(np.diff(np.asarray(adjusted)[order]) >= 0)


# --------------------------------------------------------------------------- win rates


def test_win_rate_counts_ties_as_half():
    result = win_rate([3, 2, 1, 5], [1, 2, 3, 4], n_resamples=500)
    assert result["estimate"] == pytest.approx(2.5 / 4)
    assert (result["wins"], result["ties"], result["losses"]) == (2, 1, 1)
    all_ties = win_rate([1, 2, 3], [1, 2, 3])
    # Three ties: an estimate of one half, a Wilson interval of real width, nothing to test.
    assert all_ties["estimate"] == 0.5 and all_ties["low"] < 0.5 < all_ties["high"]
    assert all_ties["p_value"] == 1.0


def test_win_rate_from_judgements():
    prefs = [1, 1, 0.5, 0, 1, 0.5, 1, 0, 1, 1]
    result = win_rate_from_judgements(prefs, n_resamples=1000, seed=2)
    assert result["estimate"] == pytest.approx(np.mean(prefs))
    assert (result["wins"], result["ties"], result["losses"]) == (6, 2, 2)
    assert result["low"] <= result["estimate"] <= result["high"]
    assert result == win_rate_from_judgements(prefs, n_resamples=1000, seed=2)
    with pytest.raises(ValueError):
        win_rate_from_judgements([1, 2])


def test_logistic_fit_matches_scipy_minimize():
    rng = np.random.default_rng(21)
    x = rng.normal(size=80)
    y = (rng.random(80) < special.expit(0.4 + 1.3 * x)).astype(float)
    y[:10] = 0.5  # ties as fractional targets
    penalty = 1e-3

    def loss(beta):
        eta = beta[0] + beta[1] * x
        return np.sum(np.logaddexp(0, eta) - y * eta) + 0.5 * penalty * beta @ beta

    expected = optimize.minimize(loss, np.zeros(2), method="BFGS", options={"gtol": 1e-10}).x
    assert fit_logistic_1d(y, x, penalty) == pytest.approx(tuple(expected), abs=1e-6)


def test_length_controlled_win_rate_zero_lengths_is_raw_rate():
    # With no length differences the intercept-only MLE is logit(mean outcome).
    outcomes = [1, 0, 1, 1, 0.5, 1, 0, 1]
    result = length_controlled_win_rate(outcomes, [0] * 8, penalty=0.0, n_resamples=300)
    assert result["estimate"] == pytest.approx(np.mean(outcomes), abs=1e-9)


def test_length_controlled_win_rate_removes_length_bias_closed_form():
    # Two length differences, +10 (70 items) and -10 (30 items); the longer answer wins
    # 80% of the time at +10 and 20% at -10. The saturated two-point model gives
    # b0 = (logit 0.8 + logit 0.2) / 2 = 0, so the length-controlled rate is 0.5 while the
    # raw rate is (56 + 6) / 100 = 0.62.
    outcomes = [1] * 56 + [0] * 14 + [1] * 6 + [0] * 24
    diffs = [10] * 70 + [-10] * 30
    result = length_controlled_win_rate(outcomes, diffs, penalty=0.0, n_resamples=500, seed=1)
    assert result["raw_win_rate"] == pytest.approx(0.62)
    assert result["estimate"] == pytest.approx(0.5, abs=1e-9)
    expected_slope = (special.logit(0.8) - special.logit(0.2)) / 2 / 10
    assert result["slope"] == pytest.approx(expected_slope, rel=1e-8)
    assert result["low"] < 0.5 < result["high"]
    again = length_controlled_win_rate(outcomes, diffs, penalty=0.0, n_resamples=500, seed=1)
    assert again == result


def test_length_controlled_win_rate_is_not_estimable_when_the_fit_is_not_identified():
    x = np.linspace(-20, 20, 20)
    cases = {
        "separated": ((x > 0).astype(float), x),
        # The example of the statistics review: a raw 0.7 that a ridge fit turned into 8e-5.
        "separated, review example": ([1, 1, 0, 1, 0, 1, 1, 0, 1, 1], [30, 40, 5, 50, 10, 35, 45, 8, 60, 25]),
        "all wins": (np.ones(15), np.arange(15)),
        "constant length difference": ([1, 1, 0, 1], [3, 3, 3, 3]),
    }
    for name, (outcomes, diffs) in cases.items():
        result = length_controlled_win_rate(outcomes, diffs, n_resamples=300)
        assert result["method"] == "not estimable", name
        assert result["estimate"] is None and result["reason"], name
        assert result["raw_win_rate"] == pytest.approx(np.mean(outcomes)), name
    # One loss among the long answers breaks the separation: estimable again.
    y = (x > 0).astype(float)
    y[-1] = 0.0
    assert length_controlled_win_rate(y, x, n_resamples=300)["method"] in ("BCa", "percentile")


def test_length_controlled_win_rate_all_ties():
    result = length_controlled_win_rate([0.5] * 6, [0] * 6)
    assert result["estimate"] == 0.5 and result["method"] == "wilson"
    assert result["low"] < 0.5 < result["high"]


# --------------------------------------------------------------------------- proportions


def _wilson_by_hand(k, n, z=1.959963984540054):
    p = k / n
    centre = (p + z * z / (2 * n)) / (1 + z * z / n)
    half = z / (1 + z * z / n) * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n))
    return centre - half, centre + half


@pytest.mark.parametrize("k, n", [(0, 10), (3, 10), (10, 10), (57, 200), (1, 1)])
def test_wilson_interval_matches_formula(k, n):
    result = wilson_interval(k, n)
    low, high = _wilson_by_hand(k, n)
    assert result["low"] == pytest.approx(max(low, 0.0), abs=1e-12)
    assert result["high"] == pytest.approx(min(high, 1.0), abs=1e-12)
    assert result["estimate"] == k / n


def test_wilson_interval_rejects_bad_counts():
    for k, n in [(0, 0), (5, 3), (-1, 4)]:
        with pytest.raises(ValueError):
            wilson_interval(k, n)


def test_proportion_test_chi_square_by_hand():
    groups = {"kb_qa": (30, 100), "summarization": (50, 100), "arithmetic": (40, 90)}
    result = proportion_difference_test(groups)
    observed = np.array([[30, 70], [50, 50], [40, 50]], dtype=float)
    expected = observed.sum(1, keepdims=True) * observed.sum(0, keepdims=True) / observed.sum()
    statistic = float(np.sum((observed - expected) ** 2 / expected))
    assert result["test"] == "chi2" and result["dof"] == 2
    assert result["statistic"] == pytest.approx(statistic)
    assert result["p_value"] == pytest.approx(sps.chi2.sf(statistic, 2))
    assert [g["group"] for g in result["groups"]] == list(groups)
    assert result["groups"][0]["low"] == pytest.approx(wilson_interval(30, 100)["low"])


def test_proportion_test_uses_fisher_for_small_2x2():
    # table [[1, 7], [6, 2]]: two-sided Fisher p sums hypergeometric probabilities of
    # tables no more likely than the observed one.
    result = proportion_difference_test({"truncated": (1, 8), "kept": (6, 8)})
    assert result["test"] == "fisher"

    def prob(a):  # P(first row has a successes | margins 8, 8 and 7 successes)
        return math.comb(8, a) * math.comb(8, 7 - a) / math.comb(16, 7)

    observed = prob(1)
    p = sum(prob(a) for a in range(0, 8) if prob(a) <= observed * (1 + 1e-7))
    assert result["p_value"] == pytest.approx(p)


def test_proportion_test_without_variation():
    result = proportion_difference_test({"a": (0, 5), "b": (0, 9), "c": (0, 3)})
    assert (result["test"], result["p_value"]) == ("none", 1.0)
    with pytest.raises(ValueError):
        proportion_difference_test({"only": (1, 2)})


# --------------------------------------------------------------------------- agreement


def test_cohen_kappa_against_hand_confusion_matrix():
    # confusion [[20, 5], [10, 15]]: p_o = 35/50; rater A says yes 25/50, rater B 30/50;
    # p_e = 0.5*0.6 + 0.5*0.4 = 0.5; kappa = (0.7 - 0.5) / (1 - 0.5) = 0.4.
    a = ["yes"] * 20 + ["yes"] * 5 + ["no"] * 10 + ["no"] * 15
    b = ["yes"] * 20 + ["no"] * 5 + ["yes"] * 10 + ["no"] * 15
    assert cohen_kappa(a, b) == pytest.approx(0.4)
    # with two categories every weighting scheme is the same
    assert cohen_kappa(a, b, weights="linear") == pytest.approx(0.4)
    assert cohen_kappa(a, b, weights="quadratic") == pytest.approx(0.4)


def test_quadratic_kappa_matches_moment_identity():
    # Quadratic weighted kappa = 2 cov(a, b) / (var a + var b + (mean a - mean b)^2), with
    # population moments, when the label scale is the integers 1..5.
    rng = np.random.default_rng(5)
    a = rng.integers(1, 6, 60)
    b = np.clip(a + rng.integers(-1, 2, 60), 1, 5)
    cov = np.mean((a - a.mean()) * (b - b.mean()))
    expected = 2 * cov / (a.var() + b.var() + (a.mean() - b.mean()) ** 2)
    assert quadratic_weighted_kappa(a.tolist(), b.tolist()) == pytest.approx(expected)


def test_kappa_edge_cases():
    assert cohen_kappa([1, 2, 3], [1, 2, 3]) == pytest.approx(1.0)
    assert math.isnan(cohen_kappa([4, 4, 4], [4, 4, 4]))  # no chance disagreement
    with pytest.raises(ValueError):
        quadratic_weighted_kappa([1, 6], [1, 2])
    with pytest.raises(ValueError):
        cohen_kappa([1, 2], [1])


def test_krippendorff_alpha_published_example():
    # Krippendorff (2011), "Computing Krippendorff's Alpha-Reliability", the 4 observers x
    # 12 units example with missing values: nominal 0.743, ordinal 0.815, interval 0.849.
    n = None
    observers = [
        [1, 2, 3, 3, 2, 1, 4, 1, 2, n, n, n],
        [1, 2, 3, 3, 2, 2, 4, 1, 2, 5, n, 3],
        [n, 3, 3, 3, 2, 3, 4, 2, 2, 5, 1, n],
        [1, 2, 3, 3, 2, 4, 4, 1, 2, 5, 1, n],
    ]
    units = [list(unit) for unit in zip(*observers)]
    assert krippendorff_alpha(units, "nominal") == pytest.approx(0.743, abs=5e-4)
    assert krippendorff_alpha_ordinal(units) == pytest.approx(0.815, abs=5e-4)
    assert krippendorff_alpha(units, "interval") == pytest.approx(0.849, abs=5e-4)


def test_krippendorff_alpha_two_raters_nominal_agrees_with_perfect_and_missing():
    assert krippendorff_alpha([[1, 1], [2, 2], [3, 3]], "ordinal") == pytest.approx(1.0)
    assert math.isnan(krippendorff_alpha([[2, 2], [2, 2]]))
    assert math.isnan(krippendorff_alpha([[1, None], [None, 2]]))  # nothing pairable


def test_length_controlled_win_rate_of_all_ties_is_not_a_point():
    # A judge that ties every pair (position bias averaged over both orders), lengths differing.
    result = length_controlled_win_rate([0.5] * 26, list(range(-13, 13)))
    assert result["estimate"] == 0.5 and result["low"] < 0.5 < result["high"]
