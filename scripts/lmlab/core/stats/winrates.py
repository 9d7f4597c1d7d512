"""Win rates, raw (Wilson interval, sign test) and length-controlled (a logistic fit of win on
length difference, 'not estimable' when the fit is not identified).
"""

import numpy as np
from scipy import special, stats

from lmlab.core.stats.proportions import proportion_ci
from lmlab.core.stats.resampling import _as_vector, _interval


def _win_summary(outcomes, confidence):
    """Wilson interval of the mean outcome (ties 1/2) and the exact sign test of wins against
    losses (ties carry no direction): {estimate, low, high, n, method, wins, ties, losses,
    p_value, test}."""
    result = proportion_ci(outcomes, confidence)
    wins, ties, losses = int(np.sum(outcomes > 0.5)), int(np.sum(outcomes == 0.5)), int(np.sum(outcomes < 0.5))
    p_value = 1.0 if wins + losses == 0 else float(stats.binomtest(wins, wins + losses, 0.5).pvalue)
    result.update(wins=wins, ties=ties, losses=losses, p_value=p_value, test="sign-exact")
    return result


def win_rate(scores_a, scores_b, confidence=0.95, **_ignored):
    """Win rate of A over B from per-item scores (win 1, tie 0.5, loss 0), with its Wilson
    interval and sign test: {estimate, low, high, n, method, wins, ties, losses, p_value, test}."""
    a = _as_vector(scores_a, "scores_a")
    b = _as_vector(scores_b, "scores_b")
    if a.size != b.size:
        raise ValueError(f"paired samples differ in length: {a.size} != {b.size}")
    outcomes = np.where(a > b, 1.0, np.where(a == b, 0.5, 0.0))
    return _win_summary(outcomes, confidence)


def win_rate_from_judgements(prefs, confidence=0.95, **_ignored):
    """Win rate from per-item preferences already averaged over both presentation orders.

    Values are expected in {1, 0.5, 0}; any value in [0, 1] is accepted (a judge that may
    tie yields 0.75/0.25 after averaging), counted as a win above 0.5 and a loss below.
    Returns {estimate, low, high, n, method, wins, ties, losses, p_value, test}.
    """
    outcomes = _as_vector(prefs, "prefs")
    if np.any((outcomes < 0) | (outcomes > 1)):
        raise ValueError("prefs must lie in [0, 1]")
    return _win_summary(outcomes, confidence)


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


def lc_not_identified(outcomes, length_diffs):
    """Why the length-controlled win rate has no finite estimate, or "" when it has one.

    The logistic fit of win on length difference has no finite maximum when one outcome is
    never observed (all wins or all losses), when the length differences are all equal but
    not zero (intercept and slope cannot be told apart), or when some length threshold
    separates the wins from the losses (the slope runs off to infinity). A ridge penalty
    would still return a number, but the penalty, not the data, would choose it."""
    y = np.asarray(outcomes, dtype=float)
    x = np.asarray(length_diffs, dtype=float)
    if np.all(y > 0.5) or np.all(y < 0.5):
        return "every judgement went the same way"
    if np.all(x == x[0]) and x[0] != 0:
        return "every length difference is the same, so length and preference cannot be separated"
    wins, losses = x[y > 0.5], x[y < 0.5]
    ties = x[y == 0.5]
    if wins.size and losses.size and not ties.size and (wins.min() >= losses.max() or wins.max() <= losses.min()):
        return "a length threshold separates every win from every loss"
    return ""


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
    raw = float(np.mean(y))
    reason = lc_not_identified(y, diffs)
    if reason:
        return {"estimate": None, "low": None, "high": None, "n": int(y.size), "method": "not estimable",
                "reason": reason, "raw_win_rate": raw, "penalty": float(penalty)}
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
    if np.all(diffs == 0) or np.all(y == 0.5):
        # Every pair of equal length (nothing to control for), or every judgement a tie (the fit
        # is 1/2 whatever the lengths, and every resample too): the raw rate and its Wilson
        # interval are the answer, which keeps the interval from collapsing to a point.
        return {**proportion_ci(y, confidence), "intercept": b0, "slope": 0.0, "raw_win_rate": raw,
                "length_scale": scale, "penalty": float(penalty)}
    low, high, method = _interval((y, z), controlled, paired=True, vectorized=True, n=y.size,
                                  n_resamples=n_resamples, confidence=confidence, seed=seed)
    return {
        "estimate": estimate,
        "low": low,
        "high": high,
        "n": int(y.size),
        "method": method,
        "intercept": b0,
        "slope": b1 / scale,
        "raw_win_rate": raw,
        "length_scale": scale,
        "penalty": float(penalty),
    }
