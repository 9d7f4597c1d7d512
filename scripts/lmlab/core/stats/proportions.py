"""Shares of items: the Wilson interval (design-effect adjusted for clusters), the interval each
kind of metric gets (`mean_ci`), the paired difference of two shares with Newcombe's interval and
its test, and tests of homogeneity across groups.
"""

import math

import numpy as np
from scipy import stats

from lmlab.core.stats.decisions import _mcnemar_p, _paired_binary, _sign_flip_p
from lmlab.core.stats.resampling import _as_vector, _rng, bootstrap_ci, grouped_bootstrap_ci


def _count(value, name):
    if isinstance(value, (bool, np.bool_)) or not np.isfinite(float(value)) or float(value) != int(value):
        raise ValueError(f"{name} must be a whole number, got {value!r}")
    return int(value)


def _wilson_bounds(p_hat, n, confidence):
    """Wilson score bounds for an observed share p_hat of n (n may be an effective, non-integer n)."""
    z = stats.norm.ppf(0.5 + confidence / 2)
    denominator = 1 + z * z / n
    centre = (p_hat + z * z / (2 * n)) / denominator
    half = z * math.sqrt(p_hat * (1 - p_hat) / n + z * z / (4 * n * n)) / denominator
    # At 0/n and n/n the bound is exactly 0 or 1; rounding would leave 1e-17.
    low = 0.0 if p_hat == 0 else max(0.0, float(centre - half))
    high = 1.0 if p_hat == 1 else min(1.0, float(centre + half))
    return low, high


def wilson_interval(k, n, confidence=0.95):
    """{estimate, low, high, k, n, method}: Wilson score interval of k successes in n trials."""
    k, n = _count(k, "k"), _count(n, "n")
    if n <= 0 or not 0 <= k <= n:
        raise ValueError(f"need 0 <= k <= n and n > 0, got k={k}, n={n}")
    low, high = _wilson_bounds(k / n, n, confidence)
    return {"estimate": k / n, "low": low, "high": high, "k": k, "n": n, "method": "wilson"}


def design_effect(values, clusters):
    """(design effect, number of clusters) of the mean of `values` with items grouped by `clusters`.

    The ratio of the cluster-robust variance of the mean, C/(C-1) sum_c (y_c - m_c mean)^2 / n^2,
    to the variance under independence, var(y)/n; at least 1 (clustering is only ever allowed to
    widen an interval). With no variance to estimate it from (every value equal) the worst case
    is taken: every cluster counts as one item, design effect n / C.
    """
    y = _as_vector(values, "values")
    labels = list(clusters)
    if len(labels) != y.size:
        raise ValueError(f"values and clusters differ in length: {y.size} != {len(labels)}")
    groups = {}
    for value, label in zip(y, labels):
        groups.setdefault(label, []).append(value)
    n, c = y.size, len(groups)
    if c == n:
        return 1.0, c
    mean = float(np.mean(y))
    iid = float(np.mean((y - mean) ** 2))
    if iid == 0.0 or c < 2:
        return n / c, c
    robust = c / (c - 1) * sum((sum(g) - len(g) * mean) ** 2 for g in groups.values()) / n**2
    return max(1.0, robust / (iid / n)), c


def proportion_ci(values, confidence=0.95, clusters=None):
    """{estimate, low, high, n, k, method}: Wilson interval of the mean of outcomes in [0, 1].

    0/1 outcomes give the textbook Wilson interval; outcomes with ties counted 1/2 (win rates,
    pairwise accuracy) give the Wilson interval of their mean, which covers at least as well
    since their variance is at most the Bernoulli one. With `clusters` (one label per item:
    a repeated question shares its original's label) the interval is that of the effective
    sample size n / design effect ("wilson-deff"), so a repeat does not count as new evidence.
    """
    x = _as_vector(values, "values")
    if np.any((x < 0) | (x > 1)):
        raise ValueError("values: outcomes must lie in [0, 1]")
    estimate = float(np.mean(x))
    result = {"estimate": estimate, "n": int(x.size), "k": float(np.sum(x)), "method": "wilson"}
    n_eff = float(x.size)
    if clusters is not None:
        deff, n_clusters = design_effect(x, clusters)
        n_eff = x.size / deff
        result.update(method="wilson-deff" if deff > 1 else "wilson", design_effect=deff, clusters=n_clusters)
    result["low"], result["high"] = _wilson_bounds(estimate, n_eff, confidence)
    return result


def mean_ci(values, n_resamples=2000, confidence=0.95, seed=0, clusters=None, strata=None):
    """{estimate, low, high, n, method}: the interval each kind of metric gets.

    0/1 outcomes -> proportion_ci (Wilson, design-effect adjusted with clusters); any other
    metric -> the bootstrap (BCa without clusters or strata, else resampling clusters, or
    items within each stratum, with percentile bounds).
    """
    x = _as_vector(values, "values")
    if np.all((x == 0) | (x == 1)):
        return proportion_ci(x, confidence, clusters)
    if clusters is None and strata is None:
        return bootstrap_ci(x, n_resamples=n_resamples, confidence=confidence, seed=seed)
    return grouped_bootstrap_ci(x, n_resamples, confidence, seed, clusters=clusters, strata=strata)


def paired_proportion_difference(a_correct, b_correct, confidence=0.95, clusters=None, mid_p=True):
    """Share correct of A minus share correct of B on the same items, its interval and its test.

    Interval: Newcombe's hybrid score interval (his method 10: the two Wilson intervals
    combined through the phi correlation of the pairs, phi continuity-corrected when
    positive), which never collapses at 0/n and stays inside [-1, 1]; its exact coverage
    averages 0.95 over a grid of paired designs at n = 10, 26 and 50 (tests); with clusters, both Wilson intervals use the effective sample size
    n / design effect of the paired differences. Test: the sign-flip test of the
    per-cluster sums of differences, which without clusters is the McNemar test; mid-p by
    default (the exact conditional p is conservative at small counts, and Newcombe's
    interval agrees with the mid-p test on 99% of the 26-item tables against 94% with the
    exact p), so the interval shown and the verdict rarely disagree; where they do (an
    interval bound within 0.01 of zero), the verdict follows the test.
    Returns {estimate, low, high, n, mean_a, mean_b, n10, n01, discordance, p_value, test,
    method[, design_effect, clusters]}.
    """
    a, b = _paired_binary(a_correct, b_correct)
    n = a.size
    n11, n10 = int(np.sum(a & b)), int(np.sum(a & ~b))
    n01, n00 = int(np.sum(~a & b)), int(np.sum(~a & ~b))
    diff = a.astype(float) - b.astype(float)
    n_eff, extra = float(n), {}
    if clusters is not None:
        deff, n_clusters = design_effect(diff, clusters) if np.any(diff != diff[0]) else (1.0, len(set(clusters)))
        n_eff = n / deff
        extra = {"design_effect": deff, "clusters": n_clusters}
    p1, p2 = (n11 + n10) / n, (n11 + n01) / n
    l1, u1 = _wilson_bounds(p1, n_eff, confidence)
    l2, u2 = _wilson_bounds(p2, n_eff, confidence)
    denominator = (n11 + n10) * (n01 + n00) * (n11 + n01) * (n10 + n00)
    # Newcombe's correction of a positive phi (without it coverage falls to 0.90 at n = 10).
    cross = n11 * n00 - n10 * n01
    cross = max(cross - n / 2, 0.0) if cross > 0 else cross
    phi = cross / math.sqrt(denominator) if denominator else 0.0
    delta = p1 - p2
    low = delta - math.sqrt(max(0.0, (p1 - l1) ** 2 - 2 * phi * (p1 - l1) * (u2 - p2) + (u2 - p2) ** 2))
    high = delta + math.sqrt(max(0.0, (u1 - p1) ** 2 - 2 * phi * (u1 - p1) * (p2 - l2) + (p2 - l2) ** 2))
    if clusters is None:
        p_value = _mcnemar_p(n10, n01, mid_p)
        test = "mcnemar-midp" if mid_p else "mcnemar-exact"
    else:
        labels = list(clusters)
        sums = {}
        for d, label in zip(diff, labels):
            sums[label] = sums.get(label, 0) + int(d)
        p_value = _sign_flip_p(sums.values(), mid_p)
        test = "sign-flip-midp (clusters)" if mid_p else "sign-flip-exact (clusters)"
    return {"estimate": float(delta), "low": max(-1.0, low), "high": min(1.0, high), "n": n,
            "mean_a": p1, "mean_b": p2, "n10": n10, "n01": n01, "discordance": (n10 + n01) / n,
            "p_value": p_value, "test": test, "method": "newcombe", **extra}


def _chi2_statistic(successes, sizes):
    """Pearson chi-square of groups x (success, failure) tables; successes (..., g), sizes (g,)."""
    total = sizes.sum()
    share = successes.sum(axis=-1, keepdims=True) / total
    expected_s = share * sizes
    expected_f = (1 - share) * sizes
    with np.errstate(invalid="ignore", divide="ignore"):
        terms = (successes - expected_s) ** 2 / expected_s + ((sizes - successes) - expected_f) ** 2 / expected_f
    return np.nansum(terms, axis=-1)


def proportion_difference_test(groups, confidence=0.95, n_resamples=10000, seed=0):
    """Do the success proportions differ between groups? groups = {name: (k, n)}.

    Pearson chi-square test of homogeneity on the groups x (success, failure) table, without
    Yates' correction, when every expected count is at least 5. Otherwise the p-value is not
    taken from the chi-square distribution: a 2x2 table uses Fisher's exact test (`statistic`
    is then the odds ratio), a larger one the Monte Carlo permutation test of the same
    statistic with both margins fixed (`n_resamples` tables, p = (1 + #{X* >= X}) / (1 + R),
    seeded). When every item succeeded, or none did, there is nothing to test: p = 1, test
    "none". Returns {test, statistic, p_value, dof, min_expected, groups: [{group, k, n,
    estimate, low, high}]} with per-group Wilson intervals, groups in the order given.
    Every group needs n > 0. Fisher's odds ratio is 0 or inf when a cell is zero.
    """
    if len(groups) < 2:
        raise ValueError("need at least two groups")
    names = list(groups)
    per_group = []
    for name in names:
        k, n = groups[name]
        interval = wilson_interval(k, n, confidence)
        per_group.append(
            {"group": name, **{key: interval[key] for key in ("k", "n", "estimate", "low", "high")}}
        )
    table = np.array([[g["k"], g["n"] - g["k"]] for g in per_group], dtype=float)
    dof = len(names) - 1
    successes, total = table[:, 0].sum(), table.sum()
    if successes == 0 or successes == total:
        return {
            "test": "none",
            "statistic": 0.0,
            "p_value": 1.0,
            "dof": dof,
            "min_expected": 0.0,
            "groups": per_group,
        }
    expected = np.outer(table.sum(axis=1), table.sum(axis=0)) / total
    min_expected = float(expected.min())
    if len(names) == 2 and min_expected < 5:
        result = stats.fisher_exact(table.astype(int))
        test, statistic, p_value = "fisher", float(result.statistic), float(result.pvalue)
    elif min_expected < 5:
        sizes = table.sum(axis=1)
        observed = float(_chi2_statistic(table[:, 0], sizes))
        outcomes = np.zeros(int(total))
        outcomes[: int(successes)] = 1
        rng = _rng(seed)
        bounds = np.cumsum(sizes).astype(int)[:-1]
        simulated = np.empty(n_resamples)
        for i in range(n_resamples):
            shuffled = rng.permutation(outcomes)
            simulated[i] = _chi2_statistic(np.array([part.sum() for part in np.split(shuffled, bounds)]), sizes)
        exceed = int(np.sum(simulated >= observed - 1e-9 * max(1.0, observed)))
        test, statistic, p_value = "chi2-monte-carlo", observed, (1 + exceed) / (1 + n_resamples)
    else:
        result = stats.chi2_contingency(table, correction=False)
        test, statistic, p_value = "chi2", float(result.statistic), float(result.pvalue)
    return {
        "test": test,
        "statistic": statistic,
        "p_value": p_value,
        "dof": dof,
        "min_expected": min_expected,
        "groups": per_group,
    }
