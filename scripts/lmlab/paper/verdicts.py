"""How the paper words a result: one decision rule for every sentence that compares.

A paired comparison carries its stage's test, Holm-adjusted p, verdict and minimum detectable
effect (mde), and `paired_verdict` words exactly that; two shares from separate summaries go
through `separate_tests` (chi-square or Fisher of lmlab.core.stats.proportion_difference_test,
Holm over the comparisons of one question) and `separate_verdict`. A direction is written only
when the test rejects after correction (lmlab.core.stats.decide); a null says how large an effect
could have been seen; a quantity without a declared test is shown side by side, without a verdict.
Shared by the research questions (lmlab.paper.questions) and the abstract, threats and design
table (lmlab.paper.claims).
"""

from lmlab.core.format import fmt_ci, fmt_num, fmt_pct
from lmlab.core.stats import decide, holm, mde_two_proportions, proportion_difference_test

ALPHA = 0.05
NOT_ANSWERED = "not answered by this run: "


class Missing(Exception):
    """A stage or key the question needs is absent; the message is the reason."""


# ---------------------------------------------------------------- helpers


def need(summaries, stage):
    if stage not in summaries or summaries[stage] is None:
        raise Missing(f"the {stage} stage did not run in this configuration (no results/{stage}/summary.json)")
    return summaries[stage]


def ci(d, percent=False):
    return fmt_ci(d, 3, percent)


def mde_phrase(mde, unit="", percent=False):
    if mde is None:
        return "no effect of any size was detectable at this n"
    size = fmt_pct(mde) if percent else fmt_num(mde, 2)
    return f"no effect larger than {size}{unit} was detectable"


def paired_verdict(row, what, difference=None):
    """A tested paired comparison -> its sentence, from the row's verdict (its test after
    Holm's correction in its family) and, for a null, its minimum detectable effect."""
    if row is None:
        return f"{what}: no paired difference recorded"
    d = row if difference is None else difference
    family = f"{row['family']} family, " if row.get("family") else ""
    where = f"{family}{row.get('test', 'test')}, Holm p = {fmt_num(row['p_holm'], 3)}"
    if row["verdict"] in ("increased", "decreased"):
        return f"{what} {row['verdict']}: {ci(d)} ({where})"
    return f"{what}: {ci(d)}; no effect detected ({where}; {mde_phrase(row.get('mde'))})"


SHARE_METHODS = ("wilson", "wilson-deff")


def share_counts(d):
    """(k, n) of a share interval, or None when the interval is not of a share of items."""
    if d is None or d.get("method") not in SHARE_METHODS or not d.get("n") or not 0 <= d["estimate"] <= 1:
        return None
    return int(round(d["estimate"] * d["n"])), int(d["n"])


def separate_tests(pairs, alpha=ALPHA):
    """Two-share tests of one question, Holm-corrected together: pairs = [(a, b)] intervals
    of shares of separate item sets -> [{p_value, p_holm, verdict, mde} or None (not shares)]."""
    tests = []
    for a, b in pairs:
        ka, kb = share_counts(a), share_counts(b)
        if ka is None or kb is None:
            tests.append(None)
            continue
        result = proportion_difference_test({"a": ka, "b": kb})
        pooled = (ka[0] + kb[0]) / (ka[1] + kb[1])
        tests.append({"p_value": result["p_value"], "test": result["test"],
                      "mde": mde_two_proportions(ka[1], kb[1], pooled, alpha / len(pairs))})
    done = [t for t in tests if t]
    if done:
        adjusted = holm([t["p_value"] for t in done], alpha)["adjusted"]
        for t, p_holm in zip(done, adjusted):
            t["p_holm"] = p_holm
    for (a, b), t in zip(pairs, tests):
        if t:
            t["verdict"] = decide(a["estimate"] - b["estimate"], t["p_holm"], alpha)
    return tests


def separate_verdict(a, b, name_a, name_b, what, percent=False, test=None):
    """Two separate intervals side by side; ordered only by their test (separate_tests)."""
    text = f"{what} {name_a} {ci(a, percent)} vs {name_b} {ci(b, percent)}"
    if test is None:
        test = separate_tests([(a, b)])[0]
    if test is None:
        return text + " (side by side, no test declared for this quantity)"
    where = f"{test['test']}, Holm p = {fmt_num(test['p_holm'], 3)}"
    if test["verdict"] == "increased":
        return text + f": higher with {name_a} ({where})"
    if test["verdict"] == "decreased":
        return text + f": lower with {name_a} ({where})"
    return text + f": no difference detected ({where}; {mde_phrase(test['mde'], percent=percent)})"


def windows_of(mapping):
    return sorted(mapping, key=int)


def record(qid, question, answer, numbers, source):
    return {
        "id": qid,
        "question": question,
        "answer": answer,
        "answered": not answer.startswith(NOT_ANSWERED),
        "numbers": numbers,
        "source": source,
    }


def comparison(evaluation, factor, a_prefix, b_prefix, task="all"):
    """The first paired comparison of the evaluation stage between two cells."""
    for c in evaluation.get("comparisons", []):
        if c["factor"] == factor and c["task"] == task and c["a"].startswith(a_prefix) and c["b"].startswith(b_prefix):
            return c
    return None


def agent_pair(agents, model, name):
    for p in agents.get("paired", []):
        if p["model"] == model and p["comparison"] == name:
            return p
    return None


def count(k, n):
    return f"{k} of {n}" if n else f"{k}"
