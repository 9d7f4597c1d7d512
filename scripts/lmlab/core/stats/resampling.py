"""Bootstrap intervals: BCa through scipy.stats.bootstrap with a percentile fallback, the paired
bootstrap of a difference of means, cluster/stratum resampling, and the ratio estimator.
"""

import warnings

import numpy as np
from scipy import stats


# Above this many array cells per resampling batch we ask scipy to work in batches, so the
# (n_resamples x n) resample matrix and BCa's (n x n-1) jackknife matrix stay under ~32 MB.
# Batching changes which random numbers go where, so results depend on it, deterministically;
# evaluation sets of a few hundred items stay in one batch.
_MAX_CELLS_PER_BATCH = 4_000_000


def _batch_size(n, n_resamples):
    if max(n * n_resamples, n * n) <= _MAX_CELLS_PER_BATCH:
        return None
    return max(1, _MAX_CELLS_PER_BATCH // n)


def _rng(seed):
    # default_rng returns a Generator unchanged, so callers may pass either.
    return np.random.default_rng(seed)


def _interval(
    data, statistic, *, paired, n, n_resamples, confidence, seed, method="BCa", vectorized=None
):
    """(low, high, method used): scipy BCa, else a percentile bootstrap with a fresh rng(seed).

    BCa is skipped for n < 3 (its jackknife acceleration is meaningless there) and
    abandoned when scipy warns (DegenerateDataWarning, or a RuntimeWarning from dividing by
    a zero jackknife variance) or returns NaN bounds. method="percentile" skips BCa.
    """
    if method not in ("BCa", "percentile"):
        raise ValueError(f"method must be 'BCa' or 'percentile', got {method!r}")
    common = dict(
        paired=paired,
        vectorized=vectorized,
        n_resamples=n_resamples,
        confidence_level=confidence,
        batch=_batch_size(n, n_resamples),
    )
    if method == "BCa" and n >= 3:
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            result = stats.bootstrap(data, statistic, method="BCa", rng=_rng(seed), **common)
        low, high = result.confidence_interval
        degenerate = any(
            issubclass(w.category, (stats.DegenerateDataWarning, RuntimeWarning)) for w in caught
        )
        if not degenerate and np.isfinite(low) and np.isfinite(high):
            return float(low), float(high), "BCa"
    result = stats.bootstrap(data, statistic, method="percentile", rng=_rng(seed), **common)
    low, high = result.confidence_interval
    return float(low), float(high), "percentile"


def _as_vector(values, name):
    array = np.asarray(values, dtype=float).ravel()
    if array.size == 0:
        raise ValueError(f"{name}: empty sample")
    if not np.all(np.isfinite(array)):
        raise ValueError(f"{name}: contains NaN or infinite values")
    return array


def bootstrap_ci(
    values, statistic=np.mean, n_resamples=2000, confidence=0.95, seed=0, method="BCa"
):
    """{estimate, low, high, n, method}: bootstrap interval of `statistic` over `values`.

    `statistic` should accept `axis=` (np.mean, np.median do) so scipy can vectorise it.
    method="BCa" (default, with the percentile fallback) or "percentile".
    A constant sample (including n = 1) returns low = high = estimate, method "constant".
    """
    x = _as_vector(values, "values")
    estimate = float(statistic(x))
    if np.all(x == x[0]):
        return {
            "estimate": estimate,
            "low": estimate,
            "high": estimate,
            "n": int(x.size),
            "method": "constant",
        }
    low, high, used = _interval(
        (x,),
        statistic,
        paired=False,
        n=x.size,
        n_resamples=n_resamples,
        confidence=confidence,
        seed=seed,
        method=method,
    )
    return {"estimate": estimate, "low": low, "high": high, "n": int(x.size), "method": used}


def _mean_difference(a, b, axis=-1):
    return np.mean(a, axis=axis) - np.mean(b, axis=axis)


def paired_bootstrap_diff(a, b, n_resamples=2000, confidence=0.95, seed=0, method="BCa"):
    """{estimate, low, high, n, method, mean_a, mean_b}: interval of mean(a) - mean(b).

    Items are resampled jointly (a[i] with b[i]), so per-item difficulty cancels.
    """
    a = _as_vector(a, "a")
    b = _as_vector(b, "b")
    if a.size != b.size:
        raise ValueError(f"paired samples differ in length: {a.size} != {b.size}")
    estimate = float(_mean_difference(a, b))
    summary = {"n": int(a.size), "mean_a": float(np.mean(a)), "mean_b": float(np.mean(b))}
    difference = a - b
    if np.all(difference == difference[0]):
        return {
            "estimate": estimate,
            "low": estimate,
            "high": estimate,
            "method": "constant",
            **summary,
        }
    low, high, used = _interval(
        (a, b),
        _mean_difference,
        paired=True,
        n=a.size,
        n_resamples=n_resamples,
        confidence=confidence,
        seed=seed,
        method=method,
    )
    return {"estimate": estimate, "low": low, "high": high, "method": used, **summary}


def grouped_bootstrap_ci(values, n_resamples=2000, confidence=0.95, seed=0, clusters=None, strata=None):
    """Percentile bootstrap of the mean that resamples whole clusters (a repeat with its
    original), within strata when given (the pooled "all" of a fixed per-task design keeps
    each task's size). Method "cluster-bootstrap" or "stratified-bootstrap"."""
    x = _as_vector(values, "values")
    labels = list(range(x.size)) if clusters is None else list(clusters)
    layers = [0] * x.size if strata is None else list(strata)
    if len(labels) != x.size or len(layers) != x.size:
        raise ValueError("values, clusters and strata differ in length")
    estimate = float(np.mean(x))
    # Cluster sums and sizes per stratum: a resample draws clusters of a stratum with replacement.
    per_stratum = {}
    for value, label, layer in zip(x, labels, layers):
        sums = per_stratum.setdefault(layer, {})
        total, size = sums.get(label, (0.0, 0))
        sums[label] = (total + value, size + 1)
    rng = _rng(seed)
    totals = np.zeros(n_resamples)
    sizes = np.zeros(n_resamples)
    for layer in sorted(per_stratum, key=str):
        pairs = np.array(list(per_stratum[layer].values()), dtype=float)
        draw = rng.integers(0, len(pairs), size=(n_resamples, len(pairs)))
        totals += pairs[draw, 0].sum(axis=1)
        sizes += pairs[draw, 1].sum(axis=1)
    means = totals / sizes
    alpha = 1 - confidence
    low, high = np.quantile(means, [alpha / 2, 1 - alpha / 2])
    method = "cluster-bootstrap" if clusters is not None else "stratified-bootstrap"
    if np.all(x == x[0]):
        low = high = estimate
        method = "constant"
    return {"estimate": estimate, "low": float(low), "high": float(high), "n": int(x.size), "method": method}


def ratio_ci(numerators, denominators, n_resamples=2000, confidence=0.95, seed=0, transform=None):
    """{estimate, low, high, n, method}: bootstrap interval of sum(numerators) / sum(denominators).

    The ratio estimator of a token-weighted mean (corpus NLL per token, whose exp is the
    reported perplexity): items are resampled with their token counts. `transform` (e.g.
    math.exp) maps the estimate and both bounds, which keeps a percentile/BCa interval valid.
    """
    num = _as_vector(numerators, "numerators")
    den = _as_vector(denominators, "denominators")
    if num.size != den.size:
        raise ValueError(f"numerators and denominators differ in length: {num.size} != {den.size}")
    if np.any(den < 0) or den.sum() <= 0:
        raise ValueError("denominators must be >= 0 with a positive sum")

    def ratio(a, b, axis=-1):
        return np.sum(a, axis=axis) / np.sum(b, axis=axis)

    estimate = float(ratio(num, den))
    if np.all(num * den.sum() == den * num.sum()):
        low = high = estimate
        method = "constant"
    else:
        low, high, method = _interval((num, den), ratio, paired=True, vectorized=True, n=num.size,
                                      n_resamples=n_resamples, confidence=confidence, seed=seed)
    f = transform or (lambda v: v)
    return {"estimate": float(f(estimate)), "low": float(f(low)), "high": float(f(high)), "n": int(num.size),
            "method": method}
