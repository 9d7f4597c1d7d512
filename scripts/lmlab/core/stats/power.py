"""Minimum detectable effects at 80% power, so that a null reads "no effect larger than X".
"""

import math

import numpy as np
from scipy import stats

from lmlab.core.stats.resampling import _as_vector


POWER = 0.8


def mcnemar_power(n, p10, p01, alpha, mid_p=True):
    """Power of the two-sided McNemar test (mid-p or exact) at level alpha when a pair is
    (1, 0) with probability p10 and (0, 1) with p01, computed exactly: the sum over the
    discordant count m of P(m) times the conditional rejection probability."""
    psi = p10 + p01
    if psi <= 0:
        return 0.0
    theta = p10 / psi
    power = 0.0
    m = np.arange(n + 1)
    p_m = stats.binom.pmf(m, n, psi)
    for count, weight in zip(m, p_m):
        if count == 0 or weight < 1e-15:
            continue
        k = np.arange(count + 1)
        low = np.minimum(k, count - k)
        if mid_p:
            tail = 2 * (stats.binom.cdf(low - 1, count, 0.5) + 0.5 * stats.binom.pmf(low, count, 0.5))
        else:
            tail = 2 * stats.binom.cdf(low, count, 0.5)
        reject = np.minimum(1.0, tail) <= alpha
        power += weight * float(stats.binom.pmf(k[reject], count, theta).sum())
    return power


def _smallest(reaches, upper, steps=40):
    """Smallest effect in (0, upper] for which `reaches(effect)` holds (it is monotone), by
    bisection; None when even `upper` does not reach the power."""
    if not reaches(upper):
        return None
    lo, hi = 0.0, upper
    for _ in range(steps):
        mid = (lo + hi) / 2
        lo, hi = (lo, mid) if reaches(mid) else (mid, hi)
    return hi


def mde_paired_binary(n, discordance, alpha=0.05, power=POWER, n_effective=None, mid_p=True):
    """Smallest |difference in share correct| the McNemar test (mid-p by default, as in
    paired_proportion_difference) detects with `power` at level `alpha`, on n pairs with
    the given share of discordant pairs (the observed one).

    A difference d needs at least d discordance, so the planning discordance is
    max(observed, d). Computed from the exact power (no normal approximation); None when no
    difference up to 1 reaches the power (too few pairs for any effect)."""
    n = int(round(n_effective if n_effective is not None else n))
    if n <= 0:
        return None

    def reaches(d):
        psi = min(1.0, max(discordance, d))
        return mcnemar_power(n, (psi + d) / 2, (psi - d) / 2, alpha, mid_p) >= power

    return _smallest(reaches, 1.0, steps=30)


def mde_proportion(n, p0=0.5, alpha=0.05, power=POWER):
    """Smallest |p - p0| a two-sided one-sample test of a share (a win rate against 0.5)
    detects with `power` on n items (normal approximation with the variance under each
    hypothesis). None when even p = 0 or 1 is not enough."""
    if n <= 0:
        return None
    za, zb = stats.norm.ppf(1 - alpha / 2), stats.norm.ppf(power)

    def reaches(d):
        p = min(1.0, p0 + d)
        return (za * math.sqrt(p0 * (1 - p0)) + zb * math.sqrt(p * (1 - p))) / math.sqrt(n) <= d

    return _smallest(reaches, 1 - p0)


def mde_two_proportions(n_a, n_b, pooled, alpha=0.05, power=POWER):
    """Smallest difference between two independent shares (sizes n_a, n_b, pooled share as
    observed) a two-sided test detects with `power` (normal approximation, the two shares
    placed symmetrically about the pooled one, kept inside [0, 1]). None if none can be."""
    if n_a <= 0 or n_b <= 0:
        return None
    za, zb = stats.norm.ppf(1 - alpha / 2), stats.norm.ppf(power)

    def reaches(d):
        centre = min(max(pooled, d / 2), 1 - d / 2)
        p1, p2 = centre - d / 2, centre + d / 2
        null_sd = math.sqrt(centre * (1 - centre) * (1 / n_a + 1 / n_b))
        alt_sd = math.sqrt(p1 * (1 - p1) / n_a + p2 * (1 - p2) / n_b)
        return za * null_sd + zb * alt_sd <= d

    return _smallest(reaches, 1.0)


def mde_paired_mean(differences, alpha=0.05, power=POWER):
    """Smallest mean paired difference a two-sided test detects with `power`:
    (z_(1-alpha/2) + z_power) * sd(differences) / sqrt(n). None for n < 2 or sd = 0."""
    d = _as_vector(differences, "differences")
    if d.size < 2:
        return None
    sd = float(np.std(d, ddof=1))
    if sd == 0.0:
        return None
    return float((stats.norm.ppf(1 - alpha / 2) + stats.norm.ppf(power)) * sd / math.sqrt(d.size))
