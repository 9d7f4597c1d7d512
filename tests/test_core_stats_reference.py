"""lmlab.core.stats against reference implementations (scipy, statsmodels, scikit-learn, the
krippendorff package: test-only dependencies, requirements-test.txt), the exact coverage of
the intervals the paper prints, the one decision rule, minimum detectable effects, and
clear errors for inputs that are not what a statistic needs."""

import math

import krippendorff
import numpy as np
import pytest
from scipy import stats as sps
from sklearn.metrics import cohen_kappa_score
from statsmodels.stats.contingency_tables import mcnemar as sm_mcnemar
from statsmodels.stats.multitest import multipletests
from statsmodels.stats.proportion import proportion_confint

from lmlab.core.stats import (
    agreement_ci,
    bootstrap_ci,
    cohen_kappa,
    decide,
    design_effect,
    holm,
    krippendorff_alpha,
    mcnemar_exact,
    mcnemar_power,
    mde_paired_binary,
    mde_paired_mean,
    mde_proportion,
    mde_two_proportions,
    mean_ci,
    paired_mean_difference,
    paired_proportion_difference,
    proportion_ci,
    proportion_difference_test,
    ratio_ci,
    sign_flip_test,
    wilson_interval,
)

# ----------------------------------------------------------------- reference implementations


@pytest.mark.parametrize("n", [1, 4, 26, 100])
def test_wilson_matches_statsmodels(n):
    for k in range(n + 1):
        ours = wilson_interval(k, n)
        low, high = proportion_confint(k, n, alpha=0.05, method="wilson")
        assert (ours["low"], ours["high"]) == pytest.approx((low, high), abs=1e-12)


def test_mcnemar_matches_statsmodels_exact():
    for n10 in range(8):
        for n01 in range(8):
            a = [1] * n10 + [0] * n01 + [1] * 5 + [0] * 4
            b = [0] * n10 + [1] * n01 + [1] * 5 + [0] * 4
            table = [[5, n10], [n01, 4]]
            expected = 1.0 if n10 + n01 == 0 else sm_mcnemar(table, exact=True).pvalue
            assert mcnemar_exact(a, b)["p_value"] == pytest.approx(expected, abs=1e-12)
            assert paired_proportion_difference(a, b, mid_p=False)["p_value"] == pytest.approx(expected, abs=1e-12)
            # mid-p: the exact p minus half the probability of the observed split (Fagerland et al. 2013).
            m, k = n10 + n01, min(n10, n01)
            mid = 1.0 if m == 0 or 2 * k == m else expected - sps.binom.pmf(k, m, 0.5)
            assert paired_proportion_difference(a, b)["p_value"] == pytest.approx(mid, abs=1e-12)


def test_holm_matches_statsmodels():
    rng = np.random.default_rng(3)
    for _ in range(20):
        p = rng.uniform(0, 0.2, size=rng.integers(1, 12))
        reject, adjusted, _, _ = multipletests(p, alpha=0.05, method="holm")
        ours = holm(p, 0.05)
        assert ours["adjusted"] == pytest.approx(list(adjusted), abs=1e-12)
        assert ours["reject"] == list(reject)


def test_bca_matches_scipy():
    rng = np.random.default_rng(5)
    x = rng.gamma(2.0, size=40)
    ours = bootstrap_ci(x, n_resamples=2000, seed=11)
    ref = sps.bootstrap((x,), np.mean, n_resamples=2000, method="BCa", rng=np.random.default_rng(11))
    assert (ours["low"], ours["high"]) == pytest.approx(tuple(ref.confidence_interval), abs=1e-12)


def test_kappa_matches_scikit_learn():
    rng = np.random.default_rng(8)
    a = rng.integers(1, 6, size=60)
    b = np.clip(a + rng.integers(-1, 2, size=60), 1, 5)
    for weights in (None, "linear", "quadratic"):
        expected = cohen_kappa_score(a, b, weights=weights, labels=[1, 2, 3, 4, 5])
        assert cohen_kappa(a, b, labels=[1, 2, 3, 4, 5], weights=weights) == pytest.approx(expected, abs=1e-10)


def test_krippendorff_alpha_matches_the_package():
    rng = np.random.default_rng(9)
    truth = rng.integers(1, 6, size=30)
    raters = np.stack([np.clip(truth + rng.integers(-1, 2, size=30), 1, 5) for _ in range(3)]).astype(float)
    raters[0, :4] = np.nan  # missing ratings
    units = [[None if np.isnan(v) else v for v in raters[:, u]] for u in range(raters.shape[1])]
    for level in ("nominal", "ordinal", "interval"):
        expected = krippendorff.alpha(reliability_data=raters, level_of_measurement=level)
        assert krippendorff_alpha(units, level=level) == pytest.approx(expected, abs=1e-10)


def test_a_float32_nan_is_a_missing_rating():
    units = [[np.float32(3), np.float32("nan"), np.float32(3)], [np.float32(1), np.float32(2), np.float32(2)],
             [np.float32(5), np.float32(4), np.float32("nan")], [np.float32(2), np.float32(2), np.float32(1)]]
    as_none = [[None if np.isnan(v) else float(v) for v in unit] for unit in units]
    assert krippendorff_alpha(units) == pytest.approx(krippendorff_alpha(as_none))


# ----------------------------------------------------------------- coverage


def _exact_coverage_one_share(n, p, interval):
    k = np.arange(n + 1)
    covered = np.array([interval(int(i), n) for i in k])
    return float(np.sum(sps.binom.pmf(k, n, p) * covered))


@pytest.mark.parametrize("n", [4, 26, 100])
def test_the_share_interval_covers_on_average(n):
    """Exact coverage of the paper's interval for a share (Wilson), averaged over p."""
    grid = np.linspace(0.01, 0.99, 99)

    def covers(k, n, p):
        ci = proportion_ci([1] * k + [0] * (n - k))
        return ci["low"] <= p <= ci["high"]

    coverage = [
        sum(sps.binom.pmf(k, n, p) * covers(k, n, p) for k in range(n + 1)) for p in grid
    ]
    assert np.mean(coverage) >= 0.93, (n, np.mean(coverage))
    # The bootstrap it replaces for shares collapsed at 0/n: far below nominal at small n.
    bootstrap = _exact_coverage_one_share(4, 0.05, lambda k, n: bootstrap_ci([1] * k + [0] * (n - k),
                                                                               n_resamples=200)["low"] <= 0.05 <=
                                          bootstrap_ci([1] * k + [0] * (n - k), n_resamples=200)["high"])
    assert bootstrap < 0.5


@pytest.mark.parametrize("n", [10, 26])
def test_the_paired_difference_interval_covers_on_average(n):
    """Exact coverage of Newcombe's interval over a grid of (P(1,0), P(0,1)) with P(1,1) = P(0,0)."""
    cache = {}
    tables = [(n10, n01, n11) for n10 in range(n + 1) for n01 in range(n + 1 - n10) for n11 in range(n + 1 - n10 - n01)]
    for n10, n01, n11 in tables:
        n00 = n - n10 - n01 - n11
        a = [1] * n11 + [1] * n10 + [0] * n01 + [0] * n00
        b = [1] * n11 + [0] * n10 + [1] * n01 + [0] * n00
        r = paired_proportion_difference(a, b)
        cache[(n10, n01, n11)] = (r["low"], r["high"])
    coverages = []
    for p10 in (0.02, 0.1, 0.2, 0.35):
        for p01 in (0.02, 0.1, 0.2, 0.35):
            rest = (1 - p10 - p01) / 2
            probs = np.array([p10, p01, rest, rest])
            delta = p10 - p01
            total = 0.0
            for (n10, n01, n11), (low, high) in cache.items():
                counts = [n10, n01, n11, n - n10 - n01 - n11]
                if low <= delta <= high:
                    total += sps.multinomial.pmf(counts, n, probs)
            coverages.append(total)
    assert np.mean(coverages) >= 0.93, np.mean(coverages)


def test_no_share_interval_has_zero_width():
    for n in (1, 4, 26):
        for k in (0, n):
            ci = proportion_ci([1] * k + [0] * (n - k))
            assert ci["high"] - ci["low"] > 0.05, (k, n)
    zero = paired_proportion_difference([0] * 26, [0] * 26)
    assert zero["low"] < 0 < zero["high"]


# ----------------------------------------------------------------- the decision rule


def test_interval_and_test_agree_on_the_review_example():
    # n10 = 0, n01 = 3 of 26: the paired bootstrap claimed a decrease; exact McNemar p = 0.25.
    a = [0] * 26
    b = [0] * 23 + [1] * 3
    r = paired_proportion_difference(a, b)
    assert paired_proportion_difference(a, b, mid_p=False)["p_value"] == pytest.approx(0.25)
    assert r["p_value"] == pytest.approx(0.125)
    assert r["low"] < 0 < r["high"]
    assert decide(r["estimate"], r["p_value"]) == "no effect detected"


def test_decide_follows_the_adjusted_test_only():
    assert decide(0.2, 0.01) == "increased"
    assert decide(-0.2, 0.049) == "decreased"
    assert decide(0.4, 0.051) == "no effect detected"
    assert decide(0.0, 0.0) == "no effect detected"
    assert decide(0.3, None) == "no effect detected"


@pytest.mark.parametrize("n", [26, 100])
def test_the_interval_and_the_test_rarely_disagree(n):
    """Newcombe's interval excludes 0 exactly when the mid-p McNemar test rejects, except at
    the boundary (p within 0.01 of alpha); with the exact test it would disagree far more."""
    disagree = boundary = total = 0
    for n10 in range(n + 1):
        for n01 in range(n + 1 - n10):
            for n11 in (0, (n - n10 - n01) // 2):
                rest = n - n10 - n01 - n11
                a = [1] * n10 + [0] * n01 + [1] * n11 + [0] * rest
                b = [0] * n10 + [1] * n01 + [1] * n11 + [0] * rest
                r = paired_proportion_difference(a, b)
                total += 1
                if (r["low"] > 0 or r["high"] < 0) != (r["p_value"] <= 0.05):
                    disagree += 1
                    boundary += abs(r["p_value"] - 0.05) < 0.01
    assert disagree / total < 0.02
    assert boundary == disagree


# ----------------------------------------------------------------- power


def test_mcnemar_power_matches_simulation():
    rng = np.random.default_rng(4)
    n, p10, p01 = 60, 0.2, 0.05
    draws = rng.multinomial(n, [p10, p01, 1 - p10 - p01], size=4000)
    exact = [mcnemar_exact([1] * d[0] + [0] * d[1], [0] * d[0] + [1] * d[1])["p_value"] <= 0.05 if d[0] + d[1]
             else False for d in draws]
    mid = [mcnemar_exact([1] * d[0] + [0] * d[1], [0] * d[0] + [1] * d[1], mid_p=True)["p_value"] <= 0.05
           if d[0] + d[1] else False for d in draws]
    assert mcnemar_power(n, p10, p01, 0.05, mid_p=False) == pytest.approx(np.mean(exact), abs=0.025)
    assert mcnemar_power(n, p10, p01, 0.05) == pytest.approx(np.mean(mid), abs=0.025)


def test_minimum_detectable_effects():
    # At the design's sizes: 150 paired items with 20% discordance detect about 0.11; 26 items cannot go below 0.2.
    assert 0.09 < mde_paired_binary(150, 0.2) < 0.13
    assert mde_paired_binary(26, 0.0) > 0.2
    assert mde_paired_binary(26, 0.1, alpha=0.01) > mde_paired_binary(26, 0.1)
    assert mde_paired_binary(300, 0.2) < mde_paired_binary(150, 0.2)
    # The returned effect does reach 80% exact power, and a slightly smaller one does not.
    d = mde_paired_binary(100, 0.3)
    assert mcnemar_power(100, (0.3 + d) / 2, (0.3 - d) / 2, 0.05) >= 0.8
    assert mcnemar_power(100, (0.3 + d - 0.01) / 2, (0.3 - d + 0.01) / 2, 0.05) < 0.8
    assert mde_paired_binary(3, 0.5) is None  # three pairs can never reach p <= 0.05
    assert mde_proportion(100) == pytest.approx(0.14, abs=0.01)
    assert mde_two_proportions(50, 50, 0.5) == pytest.approx(2.8 * math.sqrt(0.5 / 50), abs=0.02)
    assert mde_paired_mean([1.0, 2.0, 3.0, 4.0]) == pytest.approx(2.8016 * np.std([1, 2, 3, 4], ddof=1) / 2, rel=1e-3)


# ----------------------------------------------------------------- clusters, strata, ratios


def test_repeats_widen_the_interval_and_the_test():
    # Six tasks, two of them repeats that always agree with their originals.
    success = [1, 1, 0, 1, 1, 1]
    clusters = ["t1", "t2", "t3", "t4", "t1", "t2"]
    independent = proportion_ci(success)
    clustered = proportion_ci(success, clusters=clusters)
    assert clustered["design_effect"] > 1
    assert clustered["high"] - clustered["low"] > independent["high"] - independent["low"]
    deff, n_clusters = design_effect([1] * 6, clusters)
    assert (deff, n_clusters) == (1.5, 4)  # no variance: the worst case, one item per cluster
    a = [1, 1, 1, 1, 1, 1]
    b = [0, 0, 1, 1, 0, 0]
    plain = paired_proportion_difference(a, b)
    with_clusters = paired_proportion_difference(a, b, clusters=clusters)
    assert with_clusters["p_value"] > plain["p_value"]  # 2 clusters of +2, not 4 pairs of +1
    # Two clusters of +2: mid-p = P(|T| > 4) + P(|T| = 4) / 2 = 0 + (2 / 4) / 2.
    assert with_clusters["p_value"] == pytest.approx(0.25)


def test_sign_flip_is_exact_mcnemar_without_clusters():
    a = [1] * 7 + [0] * 2 + [1] * 10
    b = [0] * 7 + [1] * 2 + [1] * 10
    diffs = np.array(a) - np.array(b)
    assert sign_flip_test(diffs)["p_value"] == pytest.approx(mcnemar_exact(a, b)["p_value"], abs=1e-12)
    clusters = [f"t{i}" for i in range(len(a))]
    assert paired_proportion_difference(a, b, clusters=clusters)["p_value"] == pytest.approx(
        paired_proportion_difference(a, b)["p_value"], abs=1e-12)


def test_stratified_pooled_interval_and_ratio_interval():
    rng = np.random.default_rng(2)
    values = np.concatenate([rng.normal(0, 1, 30), rng.normal(5, 1, 30)])
    strata = ["a"] * 30 + ["b"] * 30
    pooled = mean_ci(values, strata=strata, n_resamples=2000)
    plain = mean_ci(values, n_resamples=2000)
    assert pooled["method"] == "stratified-bootstrap"
    # Fixed strata remove the between-task variance from the pooled mean.
    assert pooled["high"] - pooled["low"] < plain["high"] - plain["low"]
    tokens = rng.integers(1, 40, size=50)
    nll = rng.gamma(2.0, size=50)
    r = ratio_ci(nll * tokens, tokens, transform=math.exp)
    assert r["estimate"] == pytest.approx(math.exp(np.sum(nll * tokens) / np.sum(tokens)))
    assert r["low"] < r["estimate"] < r["high"]


def test_agreement_intervals_have_n():
    rng = np.random.default_rng(1)
    units = [[int(v), int(min(5, max(1, v + rng.integers(-1, 2))))] for v in rng.integers(1, 6, size=40)]
    r = agreement_ci(lambda u: krippendorff_alpha(u), units, n_resamples=300)
    assert r["n"] == 40 and r["low"] < r["estimate"] < r["high"]


def test_paired_mean_difference_is_one_tested_comparison():
    a = [1, 1, 0.5, 1, 1, 0, 1, 1, 1, 0.5] * 3
    b = [0, 0.5, 0.5, 1, 0, 0, 0.5, 1, 0, 0.5] * 3
    r = paired_mean_difference(a, b, n_resamples=500)
    assert r["test"] == "sign-flip-exact" and r["verdict"] == "increased" and r["p_value"] < 0.01


def test_truncation_tables_with_small_counts_use_an_exact_or_monte_carlo_test():
    small = proportion_difference_test({"a": (1, 5), "b": (0, 6), "c": (4, 5)}, n_resamples=4000, seed=1)
    assert small["test"] == "chi2-monte-carlo"
    # Against the permutation distribution computed exactly is out of reach; the asymptotic
    # chi-square p is the sanity bound: close, and a fixed seed gives a fixed p.
    assert abs(small["p_value"] - sps.chi2.sf(small["statistic"], 2)) < 0.02
    assert small == proportion_difference_test({"a": (1, 5), "b": (0, 6), "c": (4, 5)}, n_resamples=4000, seed=1)


# ----------------------------------------------------------------- bad input


@pytest.mark.parametrize(
    "call",
    [
        lambda: mcnemar_exact([1, float("nan")], [1, 0]),
        lambda: mcnemar_exact([], []),
        lambda: mcnemar_exact([1, 2], [0, 1]),
        lambda: wilson_interval(2.7, 5),
        lambda: wilson_interval(6, 5),
        lambda: wilson_interval(True, 5),
        lambda: proportion_ci([0.5, 1.5]),
        lambda: paired_proportion_difference([1, 0], [1]),
        lambda: ratio_ci([1, 2], [0, 0]),
        lambda: agreement_ci(krippendorff_alpha, []),
    ],
)
def test_bad_input_is_a_clear_error(call):
    with pytest.raises(ValueError):
        call()
