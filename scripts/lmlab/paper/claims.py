"""The paper's claims outside the research questions, chosen by the numbers: the design table
(each declared primary comparison with what it can detect), the abstract's headline sentence
per stage, and the threats to validity with the number behind each.
"""

from lmlab.core.format import fmt_num
from lmlab.paper.verdicts import Missing, agent_pair, ci, comparison, count, need, paired_verdict, windows_of

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
    seeds = S.get("seeds") or {}
    if seeds.get("n_seeds", 1) > 1:
        moved = [c for c in seeds["comparisons"] if not c["same_verdict"]]
        add(
            "Training randomness",
            f"Training ran once per seed ({', '.join(seeds['seeds'])}); the item-level intervals of the sections show "
            f"seed {seeds['reference_seed']}. {len(moved)} of {len(seeds['comparisons'])} primary comparisons reach "
            f"different verdicts in different seeds" + (f" ({', '.join(c['comparison'] for c in moved)})" if moved else "")
            + "; with a few seeds the spread across them is itself a rough estimate.",
            "results/<run>/paper/seeds/summary.json",
        )
    else:
        add(
            "Single seed",
            f"Everything ran once with seed {seeds.get('reference_seed', config.get('seed'))}; intervals cover item "
            f"sampling only, not training randomness (initialisation of adapters, data order), which a second seed "
            f"would expose.",
            "config seeds; provenance records",
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
    if base_model.get("has_chat_template") is False:
        add(
            "No chat template",
            f"The tokenizer of {source} has no chat template, so every prompt asked for under the `chat` template "
            f"was rendered with the seed template (### Instrucción / ### Respuesta): the `chat` rows of SFT, "
            f"evaluation and the context study are seed-template results.",
            "base_model.json: has_chat_template",
        )
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
        add("Timings are single measurements", text + ".", "results/paper/cost/summary.json; results/sft/timing/summary.json: templates.<t>.load_average")
    return out
