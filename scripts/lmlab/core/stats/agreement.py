"""Agreement of raters: Cohen's kappa (nominal, linear, quadratic), Krippendorff's alpha, and a
bootstrap interval over rated units for either.
"""

import math

import numpy as np

from lmlab.core.stats.resampling import _rng


def cohen_kappa(a, b, labels=None, weights=None):
    """Cohen's kappa of two raters; weights None (nominal), "linear" or "quadratic".

    `labels` fixes the category order (needed for weighted kappa on ordinal scales, e.g.
    1..5); by default the sorted union of observed values. kappa = 1 - sum(W*O)/sum(W*E)
    with O the observed and E the chance (product of marginals) proportion matrices.
    NaN when chance disagreement is zero (both raters used one and the same category).
    """
    a, b = list(a), list(b)
    if len(a) != len(b):
        raise ValueError(f"rater sequences differ in length: {len(a)} != {len(b)}")
    if not a:
        raise ValueError("no ratings")
    labels = sorted(set(a) | set(b)) if labels is None else list(labels)
    index = {label: i for i, label in enumerate(labels)}
    unknown = (set(a) | set(b)) - set(index)
    if unknown:
        raise ValueError(f"ratings outside labels: {sorted(map(str, unknown))}")
    k = len(labels)
    observed = np.zeros((k, k))
    for x, y in zip(a, b):
        observed[index[x], index[y]] += 1
    observed /= observed.sum()
    expected = np.outer(observed.sum(axis=1), observed.sum(axis=0))
    distance = np.abs(np.subtract.outer(np.arange(k), np.arange(k))) / max(k - 1, 1)
    if weights is None:
        weight = (distance > 0).astype(float)
    elif weights == "linear":
        weight = distance
    elif weights == "quadratic":
        weight = distance**2
    else:
        raise ValueError(f"weights must be None, 'linear' or 'quadratic', got {weights!r}")
    chance = float(np.sum(weight * expected))
    if chance == 0.0:
        return float("nan")
    return 1.0 - float(np.sum(weight * observed)) / chance


def quadratic_weighted_kappa(a, b, labels=(1, 2, 3, 4, 5)):
    """Quadratic weighted kappa for ordinal ratings on the scale `labels` (default 1-5)."""
    return cohen_kappa(a, b, labels=labels, weights="quadratic")


def _is_missing(value):
    # numpy floats (float32 included) are missing when NaN, like Python floats.
    return value is None or (isinstance(value, (float, np.floating)) and math.isnan(value))


def agreement_ci(statistic, units, n_resamples=2000, confidence=0.95, seed=0):
    """{estimate, low, high, n, method}: percentile bootstrap over rated units of an agreement
    statistic (kappa, alpha) computed by `statistic(units)`; resamples where the statistic is
    undefined (NaN: no expected disagreement) are left out and counted in `n_undefined`.
    Estimate None when the statistic is undefined on the data themselves."""
    units = list(units)
    if not units:
        raise ValueError("no rated units")
    estimate = statistic(units)
    result = {"n": len(units), "method": "percentile", "estimate": None, "low": None, "high": None}
    if estimate is None or not math.isfinite(estimate):
        return {**result, "method": "undefined"}
    rng = _rng(seed)
    draws = rng.integers(0, len(units), size=(n_resamples, len(units)))
    values = np.array([statistic([units[i] for i in row]) for row in draws], dtype=float)
    finite = values[np.isfinite(values)]
    alpha = 1 - confidence
    low, high = (np.quantile(finite, [alpha / 2, 1 - alpha / 2]) if finite.size else (np.nan, np.nan))
    return {**result, "estimate": float(estimate), "low": float(low), "high": float(high),
            "n_undefined": int(values.size - finite.size)}


def krippendorff_alpha(ratings, level="ordinal"):
    """Krippendorff's alpha; `ratings[u]` holds the values raters gave unit u (None = missing).

    level: "nominal", "ordinal" (ranks of the observed values), "interval" or "ratio".
    Units with fewer than two values are not pairable and are skipped. Built from the
    coincidence matrix: alpha = 1 - (n - 1) sum o_ck d_ck / sum n_c n_k d_ck.
    NaN when there is no expected disagreement (a single observed value).
    """
    units = [[v for v in unit if not _is_missing(v)] for unit in ratings]
    units = [u for u in units if len(u) >= 2]
    if not units:
        return float("nan")
    values = sorted({v for unit in units for v in unit})
    index = {v: i for i, v in enumerate(values)}
    k = len(values)
    coincidence = np.zeros((k, k))
    for unit in units:
        m = len(unit)
        for i, x in enumerate(unit):
            for j, y in enumerate(unit):
                if i != j:
                    coincidence[index[x], index[y]] += 1.0 / (m - 1)
    marginals = coincidence.sum(axis=1)
    total = marginals.sum()
    v = np.asarray(values, dtype=float) if level in ("interval", "ratio") else None
    if level == "nominal":
        delta = 1.0 - np.eye(k)
    elif level == "ordinal":
        # d(c, k) = (sum of marginals from c to k - (n_c + n_k)/2)^2
        cumulative = np.concatenate([[0.0], np.cumsum(marginals)])
        lo = np.minimum.outer(np.arange(k), np.arange(k))
        hi = np.maximum.outer(np.arange(k), np.arange(k))
        between = cumulative[hi + 1] - cumulative[lo]
        delta = (between - (marginals[:, None] + marginals[None, :]) / 2) ** 2
    elif level == "interval":
        delta = np.subtract.outer(v, v) ** 2
    elif level == "ratio":
        sums = np.add.outer(v, v)
        with np.errstate(invalid="ignore", divide="ignore"):
            delta = np.where(sums == 0, 0.0, (np.subtract.outer(v, v) / sums) ** 2)
    else:
        raise ValueError(f"level must be nominal, ordinal, interval or ratio, got {level!r}")
    expected = float(np.sum(np.outer(marginals, marginals) * delta))
    if expected == 0.0:
        return float("nan")
    return 1.0 - (total - 1) * float(np.sum(coincidence * delta)) / expected


def krippendorff_alpha_ordinal(ratings):
    """Krippendorff's alpha at the ordinal level (1-5 ratings of the human-evaluation kit)."""
    return krippendorff_alpha(ratings, level="ordinal")
