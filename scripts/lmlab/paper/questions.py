"""The seed's twelve research questions, the abstract's headline sentences and the threats to
validity, read off the stage summaries.

Every answer is chosen by the numbers and by one decision rule (lmlab.core.stats.decide): an
effect is reported as an increase or decrease only when its declared test rejects after its
multiplicity correction. Paired comparisons carry their stage's test, Holm-adjusted p and
minimum detectable effect (mde); two shares from separate summaries are compared with the
chi-square or Fisher test of lmlab.core.stats.proportion_difference_test, Holm-corrected
over the comparisons of the same question; a verdict never comes from intervals that do or
do not overlap. A null says how large an effect the run could have seen. Other quantities
(steps, rates of calls) are reported side by side without a verdict. A question the run
cannot answer (stage absent from the config, a factor with one level, a GPU-only arm on a
CPU) says so and why. Nothing here trains or re-scores: the functions take the parsed
`results/<stage>/summary.json` dicts and format what they hold.
"""

from lmlab.core.format import fmt_ci, fmt_num, fmt_pct
from lmlab.core.stats import decide, holm, mde_two_proportions, proportion_difference_test, wilson_interval

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


# ---------------------------------------------------------------- the twelve questions


def q_truncated_share(S):
    ctx = need(S, "context")
    tr = ctx["truncation"]
    ws = windows_of(tr)
    numbers = {f"{w} tokens": ci(tr[w]["all_truncated"], True) for w in ws}
    first, last = tr[ws[0]]["all_truncated"], tr[ws[-1]]["all_truncated"]
    trend = "falls" if last["estimate"] < first["estimate"] else "does not fall"
    answer = (
        f"Under the {ctx.get('template', '?')} template the share of examples longer than the window "
        f"{trend} from {ci(first, True)} at {ws[0]} tokens to {ci(last, True)} at {ws[-1]} tokens."
    )
    return answer, numbers, "results/context/summary.json: truncation.<window>.all_truncated"


def q_truncation_bias(S):
    ctx = need(S, "context")
    tr = ctx["truncation"]
    numbers, task_hits, label_hits, label_parts = {}, [], [], []

    def rejected(t, factor):
        # Holm over the windows, per factor (lmlab.context.stats.truncation_bias).
        p_holm = t.get(f"bias_{factor}_p_holm")
        return t[f"bias_{factor}_test"] != "none" and decide(1.0, p_holm) != "no effect detected"

    for w in windows_of(tr):
        t = tr[w]
        for factor in ("task", "label"):
            numbers[f"{w}: {factor}"] = (f"{t[f'bias_{factor}_test']} p = {fmt_num(t[f'bias_{factor}_p'], 3)}, "
                                         f"Holm p = {fmt_num(t.get(f'bias_{factor}_p_holm'), 3)}")
        if rejected(t, "task"):
            task_hits.append(w)
        if rejected(t, "label"):
            label_hits.append(w)
        elif t["bias_label_test"] == "none":
            label_parts.append(w)
    if task_hits:
        task_text = f"Truncation depends on the task at {', '.join(task_hits)} tokens (Holm-adjusted p ≤ {ALPHA} over the windows)"
    else:
        task_text = f"No dependence of truncation on the task was detected at any window (all Holm-adjusted p > {ALPHA} or untestable)"
    key = ctx.get("key", {})
    if key.get("most_truncated_task"):
        task_text += (
            f"; at {key.get('bias_window')} tokens the most truncated task is {key['most_truncated_task']}"
            f" ({fmt_pct(key.get('most_truncated_share'))} of its examples)"
        )
    if label_hits:
        label_text = f"sentiment class matters at {', '.join(label_hits)} tokens (Holm-adjusted p ≤ {ALPHA})"
    else:
        label_text = "no dependence on the sentiment class was detected"
    if label_parts:
        label_text += f" (no test possible at {', '.join(label_parts)} tokens: no variation)"
    return f"{task_text}; {label_text}.", numbers, "results/context/summary.json: truncation.<window>.bias_*"


def q_chunking(S):
    ctx = need(S, "context")
    sl = ctx["sliding"]
    w = windows_of(sl)[-1]
    cell = sl[w]
    numbers = {
        f"answer kept, truncation ({w})": ci(cell["truncation"], True),
        f"answer kept, sliding windows + BM25 ({w})": ci(cell["retrieval"], True),
        f"answer in some window ({w})": ci(cell["any_window"], True),
    }
    pairs = [(cell["retrieval"], cell["truncation"], f"At {w} tokens the answer stays in context:")]
    acc = ctx.get("accuracy", {})
    if acc.get("retrieval") and acc.get("truncation"):
        aw = windows_of(acc["retrieval"])[-1]
        a, b = acc["retrieval"][aw], acc["truncation"][aw]
        numbers[f"accuracy, retrieval ({aw})"] = ci(a, True)
        numbers[f"accuracy, truncation ({aw})"] = ci(b, True)
        pairs.append((a, b, f"the base model's long-context accuracy at {aw} tokens:"))
    tests = separate_tests([(a, b) for a, b, _ in pairs])
    parts = [separate_verdict(a, b, "retrieval", "truncation", what, True, test) for (a, b, what), test in zip(pairs, tests)]
    return "; ".join(parts) + ".", numbers, "results/context/summary.json: sliding, accuracy"


def q_template_format(S):
    ev = need(S, "evaluation")
    comps = [c for c in ev.get("comparisons", []) if c["factor"] == "prompt" and c["task"] == "all"]
    if not comps:
        raise Missing("the evaluation design has a single prompt, so prompts cannot be compared")
    numbers, parts = {}, []
    for c in comps:
        numbers[f"{c['a']} − {c['b']}"] = f"{ci(c)} (Holm p = {fmt_num(c['p_holm'], 3)}, mde {fmt_num(c['mde'], 2)})"
        parts.append(paired_verdict(c, f"share correct, {c['a']} minus {c['b']}"))
    errs = S.get("errors") or {}
    by_cell = errs.get("by_cell", {})
    fmt_parts = []
    for c in comps:
        for cell in (c["a"], c["b"]):
            if cell in by_cell and f"format errors {cell}" not in numbers:
                numbers[f"format errors {cell}"] = count(by_cell[cell]["format"], by_cell[cell]["n_items"])
                fmt_parts.append(f"{cell} {count(by_cell[cell]['format'], by_cell[cell]['n_items'])}")
    text = "; ".join(parts)
    if fmt_parts:
        text += f". Format errors (counts, no interval): {', '.join(fmt_parts)}"
    return text + ".", numbers, "results/evaluation/summary.json: comparisons (factor prompt); results/evaluation/errors/summary.json: by_cell"


def q_data_mixes(S):
    sft = need(S, "sft")
    mix = sft["settings"]["mix"]
    names = ", ".join(f"{m['dataset']} (weight {fmt_num(m['weight'], 2)})" for m in mix)
    numbers = {"mix": names, "templates": str(sft.get("n_templates"))}
    if len(mix) == 1:
        reason = f"one data mix was configured ({names}); comparing mixes needs at least two, one run each"
    else:
        reason = f"one mix of {len(mix)} datasets ({names}) was trained; no alternative mix was run to compare against"
    return NOT_ANSWERED + reason + ".", numbers, "results/sft/summary.json: settings.mix"


def q_lora_qlora(S):
    sft = need(S, "sft")
    runs = sft["templates"]
    flags = {name: bool(t.get("qlora")) for name, t in runs.items()}
    devices = sorted({str(t.get("device")) for t in runs.values()})
    numbers = {"qlora setting": str(sft["settings"].get("qlora")), "device": ", ".join(devices)}
    numbers.update({f"qlora ran ({n})": str(v).lower() for n, v in sorted(flags.items())})
    if not any(flags.values()):
        why = "QLoRA needs a CUDA GPU (bitsandbytes 4-bit)" if not any(d.startswith("cuda") for d in devices) else "QLoRA was not enabled"
        return (
            NOT_ANSWERED + f"{why}; every adapter here is 16/32-bit LoRA on {', '.join(devices)}, so there is no QLoRA arm.",
            numbers,
            "results/sft/summary.json: settings.qlora, templates.<t>.qlora, device",
        )
    if all(flags.values()):
        return (
            NOT_ANSWERED + "every adapter ran with QLoRA, so there is no LoRA arm to compare with.",
            numbers,
            "results/sft/summary.json: templates.<t>.qlora",
        )
    lora = [runs[n] for n, f in flags.items() if not f]
    qlora = [runs[n] for n, f in flags.items() if f]
    parts = []
    for label, key in (("final validation loss", "final_eval_loss"), ("peak memory (MiB)", "peak_memory_mib"), ("tokens/s", "tokens_per_s")):
        lo = [r[key] for r in lora if r.get(key) is not None]
        qo = [r[key] for r in qlora if r.get(key) is not None]
        if lo and qo:
            numbers[f"LoRA {label}"] = fmt_num(sum(lo) / len(lo))
            numbers[f"QLoRA {label}"] = fmt_num(sum(qo) / len(qo))
            parts.append(f"{label} LoRA {fmt_num(sum(lo) / len(lo))} vs QLoRA {fmt_num(sum(qo) / len(qo))}")
    return (
        "Single runs, no interval: " + "; ".join(parts) + ".",
        numbers,
        "results/sft/summary.json: templates.<t>",
    )


def q_dpo_factuality(S):
    ev = need(S, "evaluation")
    if "dpo" not in ev.get("models", []):
        raise Missing(f"DPO is not among the evaluated models ({', '.join(ev.get('models', []))})")
    c = comparison(ev, "model", "dpo/", "sft/")
    numbers, parts = {}, []
    if c:
        numbers["DPO − SFT, share correct"] = f"{ci(c)} (Holm p = {fmt_num(c['p_holm'], 3)}, mde {fmt_num(c['mde'], 2)})"
        parts.append(paired_verdict(c, "share correct, DPO minus SFT"))
    metrics = ev.get("metrics", {})
    pairs = []
    for task in ("kb_qa", "long_context_qa"):
        if task in metrics.get("dpo", {}) and task in metrics.get("sft", {}):
            a, b = metrics["dpo"][task], metrics["sft"][task]
            numbers[f"{task} correct, DPO"] = ci(a)
            numbers[f"{task} correct, SFT"] = ci(b)
            pairs.append((a, b, task))
    for (a, b, task), test in zip(pairs, separate_tests([(a, b) for a, b, _ in pairs])):
        parts.append(separate_verdict(a, b, "DPO", "SFT", f"on {task}", False, test))
    if not parts:
        raise Missing("the evaluation summary has no DPO-vs-SFT comparison or per-task metrics")
    return "; ".join(parts) + ".", numbers, "results/evaluation/summary.json: comparisons (dpo vs sft), metrics.<model>.<task>"


def q_orpo_format(S):
    errs = need(S, "errors")
    by_model = errs.get("by_model", {})
    if "orpo" not in by_model:
        trained = "orpo" in ((S.get("alignment") or {}).get("methods") or {})
        where = "was trained (alignment stage) but" if trained else "did not run and"
        raise Missing(f"ORPO {where} is not among the evaluated models ({', '.join(by_model)}), so its format errors were not counted")
    ref = "sft" if "sft" in by_model else "base"
    o, r = by_model["orpo"], by_model[ref]
    numbers = {"format errors ORPO": count(o["format"], o["n_items"]), f"format errors {ref.upper()}": count(r["format"], r["n_items"])}
    if o["n_items"] and r["n_items"]:
        # Counts from the rule-based error labels, compared as two shares with their test.
        a, b = wilson_interval(o["format"], o["n_items"]), wilson_interval(r["format"], r["n_items"])
        answer = separate_verdict(a, b, "ORPO", ref.upper(), "share of generations with a format error:", True)
    else:
        answer = f"ORPO {count(o['format'], o['n_items'])} vs {ref.upper()} {count(r['format'], r['n_items'])} format errors"
    ev = S.get("evaluation") or {}
    c = comparison(ev, "model", "orpo/", f"{ref}/")
    if c:
        numbers[f"ORPO − {ref.upper()}, share correct"] = ci(c)
        answer += "; " + paired_verdict(c, f"share correct, ORPO minus {ref.upper()}")
    return answer + ".", numbers, "results/evaluation/errors/summary.json: by_model.<model>.format"


def q_complacency(S):
    ev = need(S, "evaluation")
    errs = S.get("errors") or {}
    models = ev.get("models", [])
    aligned = [m for m in models if m not in ("base", "sft")]
    if "sft" not in models or not aligned:
        raise Missing(f"needs SFT and at least one aligned model among the evaluated models ({', '.join(models)})")
    ref = ev.get("reference", {})
    suffix = f"/{ref.get('prompt')}/ctx{ref.get('context')}"
    numbers, parts = {}, []
    metrics = ev.get("metrics", {})
    cells = ev.get("cells", {})
    refusal_pairs = [(m, metrics[m]["refusal"], metrics["sft"]["refusal"]) for m in aligned
                     if "refusal" in metrics.get(m, {}) and "refusal" in metrics.get("sft", {})]
    refusal_tests = dict(zip([m for m, _, _ in refusal_pairs], separate_tests([(a, b) for _, a, b in refusal_pairs])))
    for m in aligned:
        if m in refusal_tests:
            a, b = metrics[m]["refusal"], metrics["sft"]["refusal"]
            numbers[f"refusal correct {m}"] = ci(a)
            numbers["refusal correct sft"] = ci(b)
            parts.append(separate_verdict(a, b, m, "SFT", "appropriate refusals (refusal task correct):", False,
                                          refusal_tests[m]))
        bm = errs.get("by_model", {})
        if m in bm and "sft" in bm:
            numbers[f"missing refusals {m}"] = count(bm[m]["missing_refusal"], bm[m]["n_items"])
            numbers["missing refusals sft"] = count(bm["sft"]["missing_refusal"], bm["sft"]["n_items"])
            numbers[f"over-long {m}"] = count(bm[m]["over_long"], bm[m]["n_items"])
            numbers["over-long sft"] = count(bm["sft"]["over_long"], bm["sft"]["n_items"])
        cm, cs = cells.get(m + suffix), cells.get("sft" + suffix)
        if cm and cs and cm.get("n") and cs.get("n"):
            tm, ts = cm["tokens_out"] / cm["n"], cs["tokens_out"] / cs["n"]
            numbers[f"generated tokens/item {m}"] = fmt_num(tm, 2)
            numbers["generated tokens/item sft"] = fmt_num(ts, 2)
            capped = cm.get("hit_max_new_tokens") == cm["n"] and cs.get("hit_max_new_tokens") == cs["n"]
            if capped:
                parts.append(
                    f"verbosity cannot be judged: every {m} and SFT answer stopped at max_new_tokens "
                    f"({fmt_num(tm, 2)} vs {fmt_num(ts, 2)} generated tokens per item)"
                )
            else:
                parts.append(f"{m} answers average {fmt_num(tm, 2)} generated tokens per item, SFT's {fmt_num(ts, 2)} "
                             "(side by side, no test declared for length)")
    if not parts:
        raise Missing("the evaluation summary has no refusal metrics or cell lengths for the aligned models")
    return "; ".join(parts) + ".", numbers, "results/evaluation/summary.json: metrics.<model>.refusal, cells; results/evaluation/errors/summary.json: by_model"


def _agent_question(S, pair_name, what, extra):
    ag = need(S, "agents")
    numbers, parts = {}, []
    for model in ag.get("models", []):
        p = agent_pair(ag, model, pair_name)
        if p is None:
            continue
        numbers[f"{model}: {pair_name}"] = (f"{ci(p['difference'])} (Holm p = {fmt_num(p['p_holm'], 3)}, "
                                            f"mde {fmt_num(p['mde'], 2) if p['mde'] is not None else 'none'})")
        parts.append(paired_verdict(p, f"{model}, task success {p['treatment']} minus {p['baseline']}", p["difference"]))
        parts += extra(ag, model, numbers)
    if not parts:
        raise Missing(f"the agents stage has no {pair_name} comparison (arm not configured)")
    return "; ".join(parts) + ".", numbers, f"results/agents/summary.json: paired ({pair_name}), runs"


def q_tools(S):
    def steps(ag, model, numbers):
        runs = ag.get("runs", {}).get(model, {})
        if "tools" in runs and "llm_only" in runs and runs["tools"].get("mean_steps") and runs["llm_only"].get("mean_steps"):
            a, b = runs["tools"]["mean_steps"], runs["llm_only"]["mean_steps"]
            numbers[f"{model}: mean steps tools"] = ci(a)
            numbers[f"{model}: mean steps llm_only"] = ci(b)
            numbers[f"{model}: tool calls (tools arm)"] = str(runs["tools"].get("n_calls"))
            return [separate_verdict(a, b, "tools", "llm_only", "steps per task", False) + f" ({runs['tools'].get('n_calls')} tool calls made)"]
        return []

    return _agent_question(S, "tools_vs_llm_only", "tools", steps)


def q_memory(S):
    def reuse(ag, model, numbers):
        runs = ag.get("runs", {}).get(model, {})
        out = []
        for arm in ("tools_memory", "tools_summary_memory"):
            mem = runs.get(arm, {}).get("memory")
            if mem:
                numbers[f"{model}: repeats answered correctly ({arm})"] = count(mem["n_repeats_correct"], mem["n_repeats"])
                out.append(f"{arm} answered {count(mem['n_repeats_correct'], mem['n_repeats'])} repeated questions correctly")
        return out

    return _agent_question(S, "summary_vs_episodic_memory", "memory", reuse)


def q_planning(S):
    def calls(ag, model, numbers):
        runs = ag.get("runs", {}).get(model, {})
        a, b = runs.get("tools_memory_planning", {}), runs.get("tools_memory", {})
        ua, ub = a.get("unnecessary_call_rate"), b.get("unnecessary_call_rate")
        if ua and ub:
            numbers[f"{model}: unnecessary calls, planning"] = ci(ua)
            numbers[f"{model}: unnecessary calls, no planning"] = ci(ub)
            return [separate_verdict(ua, ub, "planning", "no planning", "unnecessary-call rate", False)]
        numbers[f"{model}: tool calls (planning / no planning)"] = f"{a.get('n_calls')} / {b.get('n_calls')}"
        return [f"the unnecessary-call rate is undefined for {model} ({a.get('n_calls')} and {b.get('n_calls')} tool calls with and without planning)"]

    return _agent_question(S, "planning_vs_memory", "planning", calls)


QUESTIONS = (
    (1, "What share of examples is truncated at each context window?", q_truncated_share),
    (2, "Is truncation biased by task or class?", q_truncation_bias),
    (3, "Does chunking (sliding windows) recover what truncation loses?", q_chunking),
    (4, "Does the prompt template change format compliance?", q_template_format),
    (5, "What is the effect of the SFT data mix?", q_data_mixes),
    (6, "LoRA vs QLoRA: quality and cost?", q_lora_qlora),
    (7, "Does DPO hurt factuality (exact-match correctness)?", q_dpo_factuality),
    (8, "Does ORPO reduce format errors?", q_orpo_format),
    (9, "Complacency: fewer appropriate refusals or more verbosity after alignment?", q_complacency),
    (10, "Do tools reduce or increase steps, and do they help task success?", q_tools),
    (11, "Episodic vs summary memory?", q_memory),
    (12, "Does planning reduce unnecessary tool calls?", q_planning),
)


def answer_questions(summaries):
    """[{id, question, answer, answered, numbers, source}] for the twelve questions.

    `summaries`: {stage: parsed summary.json} for the stages that ran; absent stages and keys
    give an explicit "not answered by this run: <reason>"."""
    out = []
    for qid, question, fn in QUESTIONS:
        try:
            answer, numbers, source = fn(summaries)
        except Missing as why:
            answer, numbers, source = NOT_ANSWERED + f"{why}.", {}, "–"
        except (KeyError, IndexError, TypeError, ValueError) as err:
            answer, numbers, source = NOT_ANSWERED + f"a result it needs is missing ({type(err).__name__}: {err}).", {}, "–"
        out.append(record(qid, question, answer, numbers, source))
    return out


def design_table(summaries):
    """[{stage, comparison, metric, test, n, mde, verdict}]: the declared primary comparisons of
    the stages that ran, with what each can detect at its size (the paper's design section)."""
    rows = []
    for c in (summaries.get("evaluation") or {}).get("comparisons", []):
        if c.get("family") == "primary":
            rows.append({"stage": "evaluation", "comparison": f"{c['a']} − {c['b']}", "metric": "share correct",
                         "test": c["test"], "n": c["n"], "mde": c["mde"], "verdict": c["verdict"]})
    for p in (summaries.get("agents") or {}).get("paired", []):
        if p.get("family") == "primary":
            rows.append({"stage": "agents", "comparison": f"{p['model']}: {p['treatment']} − {p['baseline']}",
                         "metric": "share of tasks solved", "test": p["test"], "n": p["n"], "mde": p["mde"],
                         "verdict": p["verdict"]})
    return rows


# ---------------------------------------------------------------- abstract


def _s_context(S):
    ctx = need(S, "context")
    tr = ctx["truncation"]
    w = windows_of(tr)[-1]
    sl = ctx["sliding"]
    sw = windows_of(sl)[-1]
    return (
        f"Context: at a {w}-token window {ci(tr[w]['all_truncated'], True)} of the examples are truncated; "
        f"for long documents at {sw} tokens the answer survives keep-the-beginning truncation in "
        f"{ci(sl[sw]['truncation'], True)} and sliding windows with BM25 retrieval in {ci(sl[sw]['retrieval'], True)} of cases."
    )


def _s_sft(S):
    sft = need(S, "sft")
    best = sft["best_template"]
    t = sft["templates"][best]
    return (
        f"SFT: LoRA adapters for {sft['n_templates']} prompt templates, {t['global_step']} optimizer steps each on "
        f"{t['n_train']} training pairs; the lowest validation loss is reached with the {best} template "
        f"({fmt_num(t['base_eval_loss'])} → {fmt_num(t['final_eval_loss'])} nats/token on {t['n_eval']} validation rows; one run, no interval)."
    )


def _s_alignment(S):
    al = need(S, "alignment")
    ra = al["reward_accuracy"]
    return (
        f"Alignment: on held-out preference pairs the learned reward model ranks {ci(ra['learned']['all'], True)} correctly "
        f"and a heuristic scorer {ci(ra['heuristic']['all'], True)}; "
        + paired_verdict(al["learned_minus_heuristic"], "the difference (learned minus heuristic)")
        + "."
    )


def _s_evaluation(S):
    ev = need(S, "evaluation")
    ref = ev["reference"]["cell"]
    text = f"Evaluation: in the reference cell ({ref}) the share of correct answers is {ci(ev['cells'][ref]['correct'])}"
    c = comparison(ev, "model", "sft/", "base/")
    if c:
        text += "; " + paired_verdict(c, "SFT minus base")
    return text + "."


def _s_agents(S):
    ag = need(S, "agents")
    parts = []
    for model in ag.get("models", []):
        runs = ag.get("runs", {}).get(model, {})
        if not runs:
            continue
        rates = {a: runs[a]["success"]["estimate"] for a in runs}
        best = max(sorted(rates), key=lambda a: rates[a])
        if len(set(rates.values())) == 1:
            part = f"every {model} arm ({len(runs)}) succeeds on the same share of tasks, {ci(runs[best]['success'])}"
        else:
            part = f"{model}'s best arm ({best}) succeeds on {ci(runs[best]['success'])} of tasks"
        p = agent_pair(ag, model, "tools_vs_llm_only")
        if p:
            part += "; " + paired_verdict(p, "tools minus LLM only", p["difference"])
        parts.append(part)
    if not parts:
        raise Missing("no agent runs")
    return "Agents: " + "; ".join(parts) + "."


def _s_cost(S):
    cost = need(S, "cost")
    total = cost["total"]
    return (
        f"Cost: the benchmarked jobs took {fmt_num(total['wall_s'], 0)} s of wall time in total ({total['jobs']} jobs), "
        f"most of it in {cost['slowest_rule']}, with a peak resident memory of {fmt_num(total['max_rss_mib'], 0)} MiB ({total['max_rss_rule']})."
    )


ABSTRACT = (("context", _s_context), ("sft", _s_sft), ("alignment", _s_alignment), ("evaluation", _s_evaluation), ("agents", _s_agents), ("cost", _s_cost))


def abstract_sentences(summaries):
    """[{stage, text}]: one headline sentence per stage that ran (stages absent are skipped)."""
    out = []
    for stage, fn in ABSTRACT:
        if stage not in summaries:
            continue
        try:
            out.append({"stage": stage, "text": fn(summaries)})
        except (Missing, KeyError, IndexError, TypeError, ValueError):
            headline = summaries[stage].get("headline")
            if headline:
                out.append({"stage": stage, "text": headline})
    return out


# ---------------------------------------------------------------- threats to validity


def _nulls(S):
    """(comparisons with no effect detected, all tested comparisons) over the stages."""
    rows = list((S.get("evaluation") or {}).get("comparisons", []))
    rows += list((S.get("agents") or {}).get("paired", []))
    if S.get("alignment", {}) and S["alignment"].get("learned_minus_heuristic"):
        rows.append(S["alignment"]["learned_minus_heuristic"])
    return sum(1 for r in rows if r.get("verdict") == "no effect detected"), len(rows)


def threats(summaries, base_model, manifest, config):
    """[{threat, evidence, source}]: what this run cannot claim, each with the number behind it."""
    S = summaries
    out = []

    def add(threat, evidence, source):
        out.append({"threat": threat, "evidence": evidence, "source": source})

    ev = S.get("evaluation")
    if ev:
        per_task = ev.get("items_per_task", {})
        smallest = min(per_task.items(), key=lambda kv: (kv[1], kv[0])) if per_task else None
        text = f"Each evaluation cell scores {ev.get('n_items')} test items"
        if smallest:
            text += f"; per task as few as {smallest[1]} ({smallest[0]}), so per-task intervals are wide"
        ag = S.get("agents")
        if ag:
            text += f"; each agent arm runs {ag.get('tasks', {}).get('n_tasks')} tasks"
        al = S.get("alignment")
        if al:
            text += f"; the reward model is tested on {al.get('reward_model_test_pairs')} preference pairs"
        add("Small samples", text + ".", "results/evaluation/summary.json: n_items, items_per_task")
    nulls, total = _nulls(S)
    if total:
        add(
            "Effects not detected",
            f"{nulls} of {total} tested paired comparisons (evaluation, agent ablations, reward models) detect no "
            f"effect after Holm's correction; each states its minimum detectable effect, and an effect smaller than "
            f"that would have gone unseen: no effect at this sample size, not the absence of one.",
            "results/{evaluation,agents,alignment}/summary.json",
        )
    add(
        "Single seed",
        f"Everything ran once with seed {config.get('seed')}; intervals cover item sampling only, not training "
        f"randomness (initialisation of adapters, data order), which a second seed would expose.",
        "config seed; provenance records",
    )
    source = str(base_model.get("source", "?"))
    size = f"{fmt_num(base_model.get('parameters'))} parameters ({base_model.get('model_type')})"
    if source.startswith("tiny-random"):
        add(
            "Tiny random base model",
            f"The base model is {source}: a randomly initialised model of {size}. Its numbers test the pipeline, "
            f"not a language model; no finding here transfers to a trained model.",
            "base_model.json: source, parameters",
        )
    else:
        add("Model size", f"The base model {source} has {size}; effects at this scale need not hold for larger models.", "base_model.json")
    gen = (manifest.get("sft_train") or {}).get("generator")
    if gen:
        add(
            "Synthetic data",
            f"All inputs come from a seeded template generator (version {gen.get('version')}, seed {gen.get('seed')}; "
            f"datasheet data/README.md) with invented entities in English and Spanish: scores measure these templates, not natural text.",
            "results/data/manifest.json: generator",
        )
    al = S.get("alignment")
    if ev and ev.get("winrates", {}).get("available"):
        text = (
            f"Win rates are judged by {ev['winrates'].get('judge')}, trained on the same preference distribution "
            f"as DPO/ORPO: it rewards what those methods optimise."
        )
        if al:
            text += f" Its own held-out ranking accuracy is {ci(al['reward_accuracy']['learned']['all'], True)}."
        add("Judge shares the training distribution", text, "results/evaluation/summary.json: winrates.judge; results/alignment/summary.json")
    steps = []
    sft = S.get("sft")
    if sft:
        t = sft["templates"][sft["template_order"][0]]
        steps.append(f"SFT {t.get('global_step')} optimizer steps per template on {t.get('device')}")
    if al:
        steps += [f"{name} {m.get('steps')} steps" for name, m in al.get("methods", {}).items()]
    cost = S.get("cost")
    if steps or cost:
        text = "Training was cut to the CPU budget: " + ", ".join(steps) if steps else "Training was cut to the CPU budget"
        if cost:
            text += f"; the whole run took {fmt_num(cost['total']['wall_s'], 0)} s of benchmarked wall time"
        add("CPU budget", text + ". Under-trained models can hide effects that longer training would show.", "results/sft/summary.json, results/alignment/summary.json")
    if ev:
        cells = ev.get("cells", {})
        trunc = [(c, v.get("truncated", 0), v.get("hit_max_new_tokens", 0), v.get("n", 0)) for c, v in sorted(cells.items())]
        if trunc:
            worst = max(trunc, key=lambda r: (r[1], r[0]))
            capped = sum(r[2] for r in trunc)
            n_all = sum(r[3] for r in trunc)
            add(
                "Truncation confounds",
                f"Inputs are cut to the cell's window (up to {count(worst[1], worst[3])} items truncated, in {worst[0]}) "
                f"and outputs to max_new_tokens ({count(capped, n_all)} generations hit it): a context or model effect "
                f"can be a truncation effect.",
                "results/evaluation/summary.json: cells.<cell>.truncated, hit_max_new_tokens",
            )
    if cost:
        text = f"Wall times are single measurements ({cost['total']['jobs']} jobs, no repeats) and carry no interval"
        if sft:
            loads = [t.get("load_average") for t in sft["templates"].values() if t.get("load_average") is not None]
            if loads:
                text += (
                    f"; the machine's 1-minute load average during SFT ranged from {fmt_num(min(loads), 2)} to "
                    f"{fmt_num(max(loads), 2)}, so other work on it moves these times"
                )
        add("Timings are single measurements", text + ".", "results/paper/cost/summary.json; results/sft/summary.json: templates.<t>.load_average")
    return out
