"""The seed's twelve research questions, answered from the stage summaries.

Every answer is chosen by the numbers and worded by lmlab.paper.verdicts (one decision rule: a
direction only when the declared test rejects after its multiplicity correction; a null with
its minimum detectable effect). A question the run cannot answer (stage absent from the
config, a factor with one level, a GPU-only arm on a CPU) says so and why. Nothing here trains
or re-scores: the functions take the parsed `results/<stage>/summary.json` dicts and format
what they hold.
"""

from lmlab.core.format import fmt_num, fmt_pct
from lmlab.core.stats import decide, wilson_interval
from lmlab.paper.verdicts import (
    ALPHA,
    NOT_ANSWERED,
    Missing,
    agent_pair,
    ci,
    comparison,
    count,
    need,
    paired_verdict,
    record,
    separate_tests,
    separate_verdict,
    windows_of,
)


# ---------------------------------------------------------------- the twelve questions


def q_truncated_share(S):
    ctx = need(S, "context")
    tr = ctx["truncation"]
    ws = windows_of(tr)
    numbers = {f"{w} tokens": ci(tr[w]["all_truncated"], True) for w in ws}
    first, last = tr[ws[0]]["all_truncated"], tr[ws[-1]]["all_truncated"]
    test = separate_tests([(last, first)])[0]
    if test is None:
        trend = "goes"
    elif test["verdict"] == "decreased":
        trend = f"falls ({test['test']}, p = {fmt_num(test['p_holm'], 3)})"
    elif test["verdict"] == "increased":
        trend = f"rises ({test['test']}, p = {fmt_num(test['p_holm'], 3)})"
    else:
        trend = f"shows no detectable change ({test['test']}, p = {fmt_num(test['p_holm'], 3)})"
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
    arms = [(name, v) for name, v in (sft.get("variants") or {}).items() if v.get("qlora")]
    if not arms:
        flags = {name: bool(t.get("qlora")) for name, t in sft["templates"].items()}
        why = ("every adapter ran with QLoRA, so there is no LoRA arm to compare with" if flags and all(flags.values())
               else "no QLoRA arm is configured (sft.variants with qlora: true)")
        return (NOT_ANSWERED + why + ".", {f"qlora ran ({n})": str(v).lower() for n, v in sorted(flags.items())},
                "results/sft/summary.json: variants, templates.<t>.qlora")
    name, q = arms[0]
    lora = sft["templates"].get(q["template"])
    if lora is None or lora.get("qlora"):
        raise Missing(f"the reference adapter of the QLoRA arm {name!r} is not a LoRA run")
    numbers, parts = {}, []
    ev = S.get("evaluation") or {}
    c = comparison(ev, "model", f"sft-{name}/", "sft/") if ev else None
    if c:
        numbers["QLoRA − LoRA, share correct"] = f"{ci(c)} (Holm p = {fmt_num(c['p_holm'], 3)}, mde {fmt_num(c['mde'], 2)})"
        parts.append(paired_verdict(c, "share correct, QLoRA minus LoRA"))
    else:
        parts.append(f"sft-{name} is not on the evaluation's model axis, so only the validation loss compares quality")
    for label, key, digits in (("validation loss", "final_eval_loss", 4), ("peak memory (MiB)", "peak_memory_mib", 0),
                               ("training tokens/s", "tokens_per_s", 1), ("wall time (s)", "wall_s", 0)):
        if lora.get(key) is not None and q.get(key) is not None:
            numbers[f"LoRA {label}"] = fmt_num(lora[key], digits)
            numbers[f"QLoRA {label}"] = fmt_num(q[key], digits)
    loss = (f"validation loss LoRA {fmt_num(lora['final_eval_loss'], 4)} vs QLoRA {fmt_num(q['final_eval_loss'], 4)} "
            f"(one run each, no interval)")
    cost = (f"on {q.get('device')} QLoRA took {fmt_num(q['wall_s'], 0)} s and {fmt_num(q['peak_memory_mib'], 0)} MiB peak "
            f"memory against LoRA's {fmt_num(lora['wall_s'], 0)} s and {fmt_num(lora['peak_memory_mib'], 0)} MiB")
    if not str(q.get("device", "")).startswith("cuda"):
        cost += ("; this is bitsandbytes' CPU backend, whose 4-bit kernels are not the CUDA ones, so the cost here "
                 "says nothing about QLoRA's cost on a GPU")
    return ("; ".join([*parts, loss, cost]) + ".", numbers,
            "results/evaluation/summary.json: comparisons (sft-<qlora> vs sft); results/sft/summary.json: variants, templates")


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
