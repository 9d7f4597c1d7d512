"""Statistics for evaluation results: bootstrap intervals, paired tests, multiplicity
correction, win rates (raw and length-controlled), proportion tests, and agreement.

Built on scipy.stats; every random step takes a `seed` (an int, or a numpy Generator that
is then advanced), so the same inputs and seed give identical outputs. Nothing is rounded
here: formatting is the caller's job.

Interval results share one shape: {estimate, low, high, n, method}, where `method` is
"BCa", "percentile" (BCa was degenerate or n < 3) or "constant" (every value equal, so
low = high = estimate and no resampling is done).
"""

import math
import warnings

import numpy as np
from scipy import special, stats

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


def mcnemar_exact(a_correct, b_correct):
    """{n, n01, n10, p_value}: exact McNemar test of two systems on the same items.

    n10 = items A got right and B wrong, n01 = the reverse. Under H0 the discordant pairs
    split 50/50, so p is the two-sided binomial test of n10 out of n01 + n10; p = 1 when
    there are no discordant pairs.
    """
    a = np.asarray(a_correct, dtype=bool).ravel()
    b = np.asarray(b_correct, dtype=bool).ravel()
    if a.size != b.size:
        raise ValueError(f"paired samples differ in length: {a.size} != {b.size}")
    n10 = int(np.sum(a & ~b))
    n01 = int(np.sum(~a & b))
    p_value = 1.0 if n01 + n10 == 0 else float(stats.binomtest(n10, n01 + n10, 0.5).pvalue)
    return {"n": int(a.size), "n01": n01, "n10": n10, "p_value": p_value}


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


# --------------------------------------------------------------------------- win rates


def _win_summary(outcomes, n_resamples, confidence, seed):
    result = bootstrap_ci(
        outcomes, np.mean, n_resamples=n_resamples, confidence=confidence, seed=seed
    )
    result["wins"] = int(np.sum(outcomes > 0.5))
    result["ties"] = int(np.sum(outcomes == 0.5))
    result["losses"] = int(np.sum(outcomes < 0.5))
    return result


def win_rate(scores_a, scores_b, n_resamples=2000, confidence=0.95, seed=0):
    """Win rate of A over B from per-item scores (win 1, tie 0.5, loss 0), with a bootstrap
    interval: {estimate, low, high, n, method, wins, ties, losses}."""
    a = _as_vector(scores_a, "scores_a")
    b = _as_vector(scores_b, "scores_b")
    if a.size != b.size:
        raise ValueError(f"paired samples differ in length: {a.size} != {b.size}")
    outcomes = np.where(a > b, 1.0, np.where(a == b, 0.5, 0.0))
    return _win_summary(outcomes, n_resamples, confidence, seed)


def win_rate_from_judgements(prefs, n_resamples=2000, confidence=0.95, seed=0):
    """Win rate from per-item preferences already averaged over both presentation orders.

    Values are expected in {1, 0.5, 0}; any value in [0, 1] is accepted (a judge that may
    tie yields 0.75/0.25 after averaging), counted as a win above 0.5 and a loss below.
    Returns {estimate, low, high, n, method, wins, ties, losses}.
    """
    outcomes = _as_vector(prefs, "prefs")
    if np.any((outcomes < 0) | (outcomes > 1)):
        raise ValueError("prefs must lie in [0, 1]")
    return _win_summary(outcomes, n_resamples, confidence, seed)


def _fit_logistic_rows(y, x, penalty):
    """Penalised logistic fits of many samples at once: y, x of shape (B, n) -> beta (B, 2).

    Newton steps (IRLS) with per-row backtracking on the penalised negative log-likelihood;
    the 2x2 Hessians are inverted with a batched pseudo-inverse, so a singular one (x all
    zero and no penalty) leaves b1 at 0 instead of failing.
    """
    ones = np.ones_like(x)

    def objective(beta):
        eta = beta[:, :1] + beta[:, 1:] * x
        return np.sum(np.logaddexp(0.0, eta) - y * eta, axis=1) + 0.5 * penalty * np.sum(
            beta**2, axis=1
        )

    beta = np.zeros((y.shape[0], 2))
    current = objective(beta)
    active = np.ones(y.shape[0], dtype=bool)
    for _ in range(100):
        p = special.expit(beta[:, :1] + beta[:, 1:] * x)
        residual = p - y
        gradient = (
            np.stack([residual.sum(axis=1), (residual * x).sum(axis=1)], axis=1) + penalty * beta
        )
        active &= np.max(np.abs(gradient), axis=1) >= 1e-10
        if not active.any():
            break
        w = p * (1 - p)
        hessian = np.empty((y.shape[0], 2, 2))
        hessian[:, 0, 0] = (w * ones).sum(axis=1) + penalty
        hessian[:, 0, 1] = hessian[:, 1, 0] = (w * x).sum(axis=1)
        hessian[:, 1, 1] = (w * x * x).sum(axis=1) + penalty
        step = np.einsum("bij,bj->bi", np.linalg.pinv(hessian), gradient)
        # Converged rows: the gradient can stay above any fixed absolute tolerance through
        # rounding in its sum over items, but the Newton step shrinks quadratically.
        active &= np.max(np.abs(step), axis=1) > 1e-12 * (1.0 + np.max(np.abs(beta), axis=1))
        if not active.any():
            break
        step[~active] = 0.0
        decrease = np.sum(gradient * step, axis=1)
        # Once the predicted decrease is below float64 resolution of the objective, the
        # Armijo test only sees rounding noise; such rows are in Newton's quadratic region
        # and take the full step.
        tiny = decrease <= 1e-9 * (1.0 + np.abs(current))
        t = np.ones(y.shape[0])
        accepted = ~active
        new_beta, new_value = beta.copy(), current.copy()
        for _ in range(40):
            candidate = beta - t[:, None] * step
            value = objective(candidate)
            ok = ~accepted & ((value <= current - 1e-4 * t * decrease) | (tiny & (t == 1.0)))
            new_beta[ok], new_value[ok] = candidate[ok], value[ok]
            accepted |= ok
            if accepted.all():
                break
            t[~accepted] *= 0.5
        # Rows where no step decreases the objective are at the optimum up to rounding.
        active &= accepted
        beta, current = new_beta, new_value
    return beta


def fit_logistic_1d(targets, x, penalty=1e-3):
    """(b0, b1) maximising sum[y log p + (1-y) log(1-p)] - penalty/2 (b0^2 + b1^2), p = sigmoid(b0 + b1 x).

    Targets may be fractional (0.5 = tie): the Bernoulli log-likelihood is still concave in
    (b0, b1) and its maximiser matches the expected win probability. The small L2 penalty
    keeps the fit finite on separable data (all wins, or wins exactly when x > 0), where the
    unpenalised maximum is at infinity; it is applied to both coefficients since an all-win
    sample separates on the intercept.
    """
    y = np.asarray(targets, dtype=float).ravel()
    x = np.asarray(x, dtype=float).ravel()
    if y.size != x.size:
        raise ValueError(f"targets and x differ in length: {y.size} != {x.size}")
    if y.size == 0:
        raise ValueError("targets: empty sample")
    beta = _fit_logistic_rows(y[None, :], x[None, :], penalty)[0]
    return float(beta[0]), float(beta[1])


def length_controlled_win_rate(
    outcomes, length_diffs, penalty=1e-3, n_resamples=2000, confidence=0.95, seed=0
):
    """Win rate at zero length difference, from P(win) = sigmoid(b0 + b1 * length_diff).

    `outcomes` per item in [0, 1] (ties 0.5), `length_diffs` = len(A) - len(B) per item in
    any unit. Lengths are divided by their standard deviation before the fit (not centred:
    zero must stay "equal length"), so the penalty does not depend on the unit. The estimate
    is sigmoid(b0); its interval refits the model on items resampled with replacement.
    Returns {estimate, low, high, n, method, intercept, slope (per unit of length_diff),
    raw_win_rate, length_scale, penalty}.
    """
    y = _as_vector(outcomes, "outcomes")
    diffs = _as_vector(length_diffs, "length_diffs")
    if y.size != diffs.size:
        raise ValueError(f"outcomes and length_diffs differ in length: {y.size} != {diffs.size}")
    if np.any((y < 0) | (y > 1)):
        raise ValueError("outcomes must lie in [0, 1]")
    scale = float(np.std(diffs))
    if scale == 0.0:
        scale = 1.0
    z = diffs / scale
    b0, b1 = fit_logistic_1d(y, z, penalty)

    def controlled(y_sample, z_sample, axis=-1):
        # Vectorised over resamples: scipy hands in (..., n) arrays, n on the last axis.
        y_rows = np.moveaxis(y_sample, axis, -1)
        z_rows = np.moveaxis(z_sample, axis, -1)
        lead = y_rows.shape[:-1]
        n_items = y_rows.shape[-1]
        beta = _fit_logistic_rows(y_rows.reshape(-1, n_items), z_rows.reshape(-1, n_items), penalty)
        return special.expit(beta[:, 0]).reshape(lead)

    estimate = float(special.expit(b0))
    if np.all(y == y[0]) and np.all(z == z[0]):
        low, high, method = estimate, estimate, "constant"
    else:
        low, high, method = _interval(
            (y, z),
            controlled,
            paired=True,
            vectorized=True,
            n=y.size,
            n_resamples=n_resamples,
            confidence=confidence,
            seed=seed,
        )
    return {
        "estimate": estimate,
        "low": low,
        "high": high,
        "n": int(y.size),
        "method": method,
        "intercept": b0,
        "slope": b1 / scale,
        "raw_win_rate": float(np.mean(y)),
        "length_scale": scale,
        "penalty": float(penalty),
    }


# --------------------------------------------------------------------------- proportions


def wilson_interval(k, n, confidence=0.95):
    """{estimate, low, high, k, n}: Wilson score interval of k successes in n trials."""
    k, n = int(k), int(n)
    if n <= 0 or not 0 <= k <= n:
        raise ValueError(f"need 0 <= k <= n and n > 0, got k={k}, n={n}")
    ci = stats.binomtest(k, n).proportion_ci(confidence_level=confidence, method="wilson")
    return {"estimate": k / n, "low": float(ci.low), "high": float(ci.high), "k": k, "n": n}


def proportion_difference_test(groups, confidence=0.95):
    """Do the success proportions differ between groups? groups = {name: (k, n)}.

    Pearson chi-square test of homogeneity on the groups x (success, failure) table, without
    Yates' correction (the same statistic for every table size). A 2x2 table with an expected
    count below 5 uses Fisher's exact test instead (`statistic` is then the odds ratio). When
    every item succeeded, or none did, there is nothing to test: p = 1, test "none".
    Returns {test, statistic, p_value, dof, min_expected, groups: [{group, k, n, estimate,
    low, high}]} with per-group Wilson intervals, groups in the order given. With more than
    two groups and min_expected < 5 the chi-square p-value is approximate: report it.
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


# --------------------------------------------------------------------------- agreement


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
    return value is None or (isinstance(value, float) and math.isnan(value))


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
