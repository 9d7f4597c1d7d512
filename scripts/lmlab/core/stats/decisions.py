"""Tests and the one decision rule: McNemar (exact or mid-p), the sign-flip test of paired
differences, Holm's correction, and `decide`.
"""

import numpy as np
from scipy import stats

from lmlab.core.stats.power import mde_paired_mean
from lmlab.core.stats.resampling import _as_vector, _rng, paired_bootstrap_diff


def _binary_vector(values, name):
    """A 0/1 vector (bools accepted); NaN, empty, or any other value is an error."""
    x = _as_vector(values, name)
    if not np.all((x == 0) | (x == 1)):
        bad = x[(x != 0) & (x != 1)][0]
        raise ValueError(f"{name}: binary outcomes must be 0 or 1, got {bad!r}")
    return x


def _paired_binary(a, b):
    a = _binary_vector(a, "a")
    b = _binary_vector(b, "b")
    if a.size != b.size:
        raise ValueError(f"paired samples differ in length: {a.size} != {b.size}")
    return a.astype(bool), b.astype(bool)


def _mcnemar_p(n10, n01, mid_p):
    """Two-sided McNemar p from the discordant counts: exact binomial, or its mid-p
    (the probability of the observed split counted one half)."""
    m = n10 + n01
    if m == 0:
        return 1.0
    k = min(n10, n01)
    if not mid_p:
        return float(stats.binomtest(n10, m, 0.5).pvalue)
    return float(min(1.0, 2 * (stats.binom.cdf(k - 1, m, 0.5) + 0.5 * stats.binom.pmf(k, m, 0.5))))


def mcnemar_exact(a_correct, b_correct, mid_p=False):
    """{n, n01, n10, p_value}: exact McNemar test of two systems on the same items.

    n10 = items A got right and B wrong, n01 = the reverse. Under H0 the discordant pairs
    split 50/50, so p is the two-sided binomial test of n10 out of n01 + n10; p = 1 when
    there are no discordant pairs. mid_p=True gives the mid-p version (Fagerland, Lydersen
    and Laake 2013 recommend it over the exact conditional test, which is conservative at
    small counts). Outcomes must be 0/1 (NaN or empty input is an error).
    """
    a, b = _paired_binary(a_correct, b_correct)
    n10 = int(np.sum(a & ~b))
    n01 = int(np.sum(~a & b))
    return {"n": int(a.size), "n01": n01, "n10": n10, "p_value": _mcnemar_p(n10, n01, mid_p)}


def _sign_flip_p(cluster_sums, mid_p=False):
    """Exact two-sided p of the sign-flip test: P(|sum eps_c s_c| >= |sum s_c|), eps_c = +-1 fair
    (mid_p: the probability of |T| equal to the observed value counted one half).

    The sums are integers (differences of 0/1 outcomes), so the null distribution is a
    convolution computed exactly over the range of possible totals."""
    sums = [int(v) for v in cluster_sums if v != 0]
    if not sums:
        return 1.0
    span = sum(abs(v) for v in sums)
    dist = np.zeros(2 * span + 1)
    dist[span] = 1.0
    for v in sums:
        dist = 0.5 * (np.roll(dist, abs(v)) + np.roll(dist, -abs(v)))
    observed = abs(sum(sums))
    totals = np.abs(np.arange(-span, span + 1))
    equal = dist[totals == observed].sum()
    return float(min(1.0, dist[totals > observed].sum() + (0.5 if mid_p else 1.0) * equal))


def sign_flip_test(differences, n_resamples=20000, seed=0):
    """{p_value, test}: two-sided sign-flip (paired permutation) test of mean difference 0.

    Exact when every difference is a multiple of 1/2 (0/1 outcomes, wins with ties), by
    convolution; otherwise Monte Carlo with `n_resamples` seeded sign draws,
    p = (1 + #{|T*| >= |T|}) / (1 + R)."""
    d = _as_vector(differences, "differences")
    doubled = 2 * d
    if np.all(doubled == np.round(doubled)):
        return {"p_value": _sign_flip_p(doubled.astype(int)), "test": "sign-flip-exact"}
    signs = _rng(seed).choice([-1.0, 1.0], size=(n_resamples, d.size))
    observed = abs(d.sum())
    exceed = int(np.sum(np.abs(signs @ d) >= observed - 1e-12 * max(1.0, observed)))
    return {"p_value": (1 + exceed) / (1 + n_resamples), "test": "sign-flip-monte-carlo"}


def holm(p_values, alpha=0.05):
    """{adjusted, reject}: Holm step-down adjusted p-values, in input order.

    adjusted p_(i) = max over j <= i of min(1, (m - j + 1) p_(j)) for the ascending order;
    the running max keeps them monotone. reject = adjusted <= alpha.
    """
    p = np.asarray(p_values, dtype=float).ravel()
    if np.any(~np.isfinite(p)) or np.any((p < 0) | (p > 1)):
        raise ValueError("p_values must lie in [0, 1]")
    m = p.size
    order = np.argsort(p, kind="stable")
    stepped = np.minimum(1.0, (m - np.arange(m)) * p[order])
    adjusted = np.empty(m)
    adjusted[order] = np.maximum.accumulate(stepped)
    return {
        "adjusted": [float(v) for v in adjusted],
        "reject": [bool(v <= alpha) for v in adjusted],
    }


def decide(estimate, p_adjusted, alpha=0.05):
    """The one decision rule: "increased" / "decreased" when the declared test rejects at
    `alpha` after its multiplicity correction, else "no effect detected"."""
    if p_adjusted is None or not p_adjusted <= alpha or estimate == 0:
        return "no effect detected"
    return "increased" if estimate > 0 else "decreased"


def paired_mean_difference(a, b, n_resamples=2000, confidence=0.95, seed=0, alpha=0.05):
    """A paired difference of means as one tested comparison: the paired bootstrap interval,
    the sign-flip test, the verdict at `alpha` (a family of one) and the minimum detectable
    effect: {estimate, low, high, n, method, mean_a, mean_b, test, p_value, p_holm, verdict, mde}."""
    result = paired_bootstrap_diff(a, b, n_resamples=n_resamples, confidence=confidence, seed=seed)
    differences = np.asarray(a, dtype=float) - np.asarray(b, dtype=float)
    test = sign_flip_test(differences, seed=seed)
    result.update(test, p_holm=test["p_value"], family="single test",
                  verdict=decide(result["estimate"], test["p_value"], alpha),
                  mde=mde_paired_mean(differences, alpha) if differences.size > 1 else None)
    return result
