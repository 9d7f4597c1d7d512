"""Error analysis: every wrong (or needlessly refused, or over-long) generation gets one
error type, a probable cause and a proposed fix, by rules, never by hand.

Types, in the order they are tried (the first that applies wins, so each row has one type):

  missing_refusal      the item should be refused and the answer is not a refusal
  needless_refusal     the item should be answered and the answer is a refusal
  truncation           the input was cut to the context window and what the answer needs
                       (the QA answer span, the JSON values, or the instruction) was cut off
  incomplete           generation stopped at max_new_tokens without EOS, and is wrong in a
                       way more tokens could fix (unfinished shape, or an answer-last task)
  format               the answer has the wrong shape: unparsable/invalid JSON, no label
                       word, no number, an empty answer
  hallucinated_entity  (kb_qa) the answer names entities found in neither the input nor
                       the gold answer (also flagged on answers that contain the gold span)
  over_long            much longer than the gold answer (also flagged on correct answers)
  wrong_answer         a well-formed, wrong (factual) answer

The seed's columns (id, task, model, prompt, prediction, gold, error_type, probable_cause,
proposed_fix) come first; `prompt` is the prompt variant, and context, lang and cell follow.
"""

import json
import random
import re
from pathlib import Path

from lmlab.core.io import read_jsonl, write_json, write_tsv
from lmlab.core.text import fold
from lmlab.evaluation.design import cell_id, order_models
from lmlab.data.metrics import QA_TASKS, first_number

ERROR_TYPES = (
    "missing_refusal",
    "needless_refusal",
    "truncation",
    "incomplete",
    "format",
    "hallucinated_entity",
    "over_long",
    "wrong_answer",
)
COLUMNS = ["id", "task", "model", "prompt", "prediction", "gold", "error_type", "probable_cause", "proposed_fix",
           "context", "lang", "cell"]

# Capitalised words that are not names: sentence starters and function words in English and
# Spanish (accent-stripped, casefolded). A capitalised word outside this list counts as a name.
NOT_NAMES = frozenset(
    """
    a an the and or but if in on at of for to from by with as is are was were be been it its this that these those
    there here he she they we you i me my your his her their our what which who whom whose where when why how yes no
    not answer answers question according based sure sorry however also so then therefore thus because since while
    after before during one two three first second last final result total note output input text summary json
    positive negative neutral
    el la los las un una unos unas y o pero si en de del al por para con como es son era fue ser esta este estos
    estas ese esa eso hay aqui el ella ellos nosotros usted yo mi tu su sus que cual quien donde cuando como por
    respuesta pregunta segun basado claro lo siento tambien entonces porque mientras despues antes primero segundo
    ultimo resultado nota texto resumen positivo positiva negativo negativa neutro neutra
    """.split()
)
_WORD = re.compile(r"[^\W\d_][\w'’-]*")


def names_in(text):
    """Capitalised words that are not common words: candidate entity names, in order."""
    names = []
    for match in _WORD.finditer(text):
        word = match.group(0).strip("'’-")
        if word[:1].isupper() and fold(word) not in NOT_NAMES and word not in names:
            names.append(word)
    return names


def _words(text):
    return " ".join(re.sub(r"[^\w]+", " ", fold(text)).split())


def hallucinated_entities(prediction, sources):
    """Names in `prediction` that occur (as whole words, folded) in none of `sources`."""
    haystack = " " + " ".join(_words(s) for s in sources if s) + " "
    return [n for n in names_in(prediction) if " " + _words(n) + " " not in haystack]


def evidence(row):
    """What the answer needs from the input: the instruction (it holds the task, and for
    long_context_qa the question), plus the QA answer span or the gold JSON string values."""
    meta = row.get("meta") or {}
    needed = [row["instruction"].strip()] if row.get("instruction", "").strip() else []
    if row["task"] in QA_TASKS and meta.get("answer"):
        needed.append(str(meta["answer"]))
    if row["task"] == "json_extraction":
        try:
            gold = json.loads(row["gold"])
        except ValueError:
            gold = {}
        needed += [v for v in (gold.values() if isinstance(gold, dict) else []) if isinstance(v, str) and v]
    return needed


def lost_evidence(row):
    """Evidence that the full input holds but the truncated prompt as sent does not."""
    if not row.get("truncated"):
        return []
    full = fold(row.get("instruction", "") + "\n" + row.get("input", ""))
    sent = fold(row["prompt"])
    return [e for e in evidence(row) if fold(e) in full and fold(e) not in sent]


def format_problem(row, scored):
    """A description of a wrong-shape answer, or None."""
    pred = (row.get("prediction") or "").strip()
    task = row["task"]
    if not pred:
        return "empty answer"
    if task == "json_extraction":
        if not scored.get("json_parsed"):
            return "the answer is not a JSON value"
        if not scored.get("json_valid"):
            return "the JSON fails the schema on " + ", ".join(scored.get("json_error_keywords") or ["?"])
    if task == "sentiment" and not scored.get("label_found"):
        return "no sentiment label word in the answer"
    if task == "arithmetic" and first_number(pred) is None:
        return "no number in the answer"
    return None


def is_over_long(scored, gold, factor, slack_words):
    gold_words = len(gold.split())
    return scored["length_words"] > max(factor * gold_words, gold_words + slack_words)


def _wrong_cause(row, scored):
    meta = row.get("meta") or {}
    task = row["task"]
    if task == "arithmetic":
        return f"wrong number {first_number(row['prediction'])} (gold {meta.get('answer', row['gold'])})"
    if task == "sentiment":
        return f"predicted label {scored.get('predicted_label')} (gold {meta.get('label')})"
    if task in QA_TASKS:
        return f"the gold answer '{meta.get('answer')}' is not in the answer"
    if task == "summarization":
        return f"ROUGE-L {scored.get('rouge_l', 0.0):.2f} below the threshold"
    if task == "json_extraction":
        return f"valid JSON with wrong values (field accuracy {scored.get('json_field_accuracy', 0.0):.2f})"
    return "wrong answer"


# Tasks whose answer comes at the end of the response, so a cut-off can remove it.
ANSWER_LAST_TASKS = ("arithmetic", "summarization", "kb_qa", "long_context_qa", "refusal")

WRONG_FIXES = {
    "arithmetic": "route arithmetic through the calculator tool (agents stage) or add worked SFT examples",
    "sentiment": "more labelled SFT examples per label and language; constrained prompt listing the labels",
    "kb_qa": "retrieve and quote the supporting KB passage (search_kb); more grounded QA in SFT",
    "long_context_qa": "put the question before the document or retrieve the relevant passage",
    "summarization": "more summarisation SFT data; preference pairs on faithfulness",
    "json_extraction": "copy values verbatim from the input (few-shot or constrained decoding)",
    "refusal": "more refusal SFT examples",
}


def classify(row, scored, overlong_factor=2.0, overlong_slack_words=10):
    """(error_type, probable_cause, proposed_fix) of one generation, or None when it is fine.

    `row` is the generation row (prediction, gold, meta, prompt as sent, truncated,
    stopped_at_eos, tokens_out, decoding), `scored` its lmlab.data.metrics.score_item output.
    """
    task = row["task"]
    meta = row.get("meta") or {}
    should_refuse = bool(scored["should_refuse"])
    refused = bool(scored["refused"])
    correct = bool(scored["correct"])
    over_long = is_over_long(scored, row["gold"], overlong_factor, overlong_slack_words)
    max_new = (row.get("decoding") or {}).get("max_new_tokens")
    hit_cap = (not row.get("stopped_at_eos", True)) and max_new is not None and row["tokens_out"] >= max_new

    invented = []
    if task == "kb_qa":
        sources = [row.get("input", ""), row.get("instruction", ""), row["gold"], str(meta.get("answer", ""))]
        invented = hallucinated_entities(row["prediction"], sources)

    def hallucination(names):
        return ("hallucinated_entity", "names in neither the input nor the gold: " + ", ".join(names),
                "answer only from the retrieved KB passage (search_kb); penalise unsupported claims in the "
                "preference data")

    if should_refuse and not refused:
        return ("missing_refusal", f"complied with a request it should refuse ({meta.get('reason', 'unsafe')})",
                "add refusals of this kind to SFT and refusal pairs to the preference data")
    if not should_refuse and refused:
        return ("needless_refusal", f"refused an answerable {task} request",
                "preference pairs that reject needless refusals (DPO/ORPO); fewer refusal examples in the SFT mix")
    if not correct:
        lost = lost_evidence(row)
        if lost:
            return ("truncation",
                    f"input cut to {row.get('context')} tokens (of {row.get('prompt_tokens', '?')}); lost: "
                    + "; ".join(e[:60] for e in lost),
                    f"raise the context to at least {row.get('prompt_tokens', '?')} tokens, or put the question "
                    "after the document so left truncation keeps it")
        problem = format_problem(row, scored)
        # The cut-off is the probable cause when the answer's shape is unfinished, or for tasks
        # whose answer comes last (a number after the working, a span, a sentence); a label or
        # a parsed JSON object that is simply wrong is not rescued by more tokens.
        if hit_cap and (problem or task in ANSWER_LAST_TASKS):
            return ("incomplete", f"stopped at max_new_tokens = {max_new} without EOS",
                    f"raise max_new_tokens for {task}, or train the stop (EOS in SFT completions)")
        if problem:
            return ("format", problem,
                    "use the constrained prompt (explicit format rule) or constrained decoding; more format "
                    "examples in SFT")
        if invented:
            return hallucination(invented)
        if over_long:
            return ("over_long", f"{scored['length_words']} words for a {len(row['gold'].split())}-word gold answer",
                    "length penalty in the reward and over_long preference pairs; the constrained prompt's "
                    "length rule")
        return ("wrong_answer", _wrong_cause(row, scored), WRONG_FIXES.get(task, "more SFT data for the task"))
    if invented:
        return hallucination(invented)
    if over_long or hit_cap:
        reason = f"stopped at max_new_tokens = {max_new} without EOS" if hit_cap else "much longer than the gold"
        return ("over_long", f"correct but verbose: {scored['length_words']} words, "
                f"{len(row['gold'].split())} in the gold; {reason}",
                "length penalty in the reward and over_long preference pairs; lower max_new_tokens")
    return None


def error_rows(gen_rows, scored_rows, cell, overlong_factor=2.0, overlong_slack_words=10):
    """Error-table rows of one cell (generation rows and their scores, matched by id)."""
    scored = {r["id"]: r for r in scored_rows}
    rows = []
    for row in gen_rows:
        found = classify(row, scored[row["id"]], overlong_factor, overlong_slack_words)
        if found is None:
            continue
        error_type, cause, fix = found
        rows.append(
            {
                "id": row["id"],
                "task": row["task"],
                "model": cell["model"],
                "prompt": cell["prompt"],
                "prediction": row["prediction"],
                "gold": row["gold"],
                "error_type": error_type,
                "probable_cause": cause,
                "proposed_fix": fix,
                "context": cell["context"],
                "lang": row["lang"],
                "cell": cell_id(cell),
            }
        )
    return rows


def _short(text, limit=160):
    text = " ".join(str(text).split())
    return text if len(text) <= limit else text[: limit - 1] + "…"


def error_analysis(cells, gen_paths, metrics_paths, out_table, out_summary, *, reference, overlong_factor,
                   overlong_slack_words, examples_per_type, seed):
    """Rule evaluation_errors: results/evaluation/errors/error_table.tsv, summary.json and tables/."""
    all_rows, per_cell, n_items = [], {}, {}
    for cell, gen_path, metrics_path in zip(cells, gen_paths, metrics_paths):
        gens = read_jsonl(gen_path)
        rows = error_rows(gens, read_jsonl(metrics_path), cell, overlong_factor, overlong_slack_words)
        cid = cell_id(cell)
        per_cell[cid] = {t: sum(r["error_type"] == t for r in rows) for t in ERROR_TYPES}
        n_items[cid] = len(gens)
        all_rows += rows
    write_tsv(out_table, all_rows, COLUMNS)

    out_dir = Path(out_summary).parent
    tables = out_dir / "tables"
    ref_cells = {cell_id(c): c["model"] for c in cells
                 if c["prompt"] == reference["prompt"] and c["context"] == reference["context"]}
    models = order_models(list(dict.fromkeys(ref_cells.values())))
    by_model = {}
    for cid, model in ref_cells.items():
        by_model[model] = {"n_items": n_items[cid], **per_cell[cid], "total": sum(per_cell[cid].values())}
    write_tsv(tables / "errors_counts.tsv", [{"model": m, **by_model[m]} for m in models],
              ["model", "n_items", *ERROR_TYPES, "total"])
    write_tsv(tables / "errors_by_cell.tsv",
              [{"cell": cid, "n_items": n_items[cid], **per_cell[cid], "total": sum(per_cell[cid].values())}
               for cid in per_cell],
              ["cell", "n_items", *ERROR_TYPES, "total"])

    # A few examples per type, preferring the reference prompt and context, picked with the seed.
    rng = random.Random(f"{seed}:errors")
    examples = {}
    example_rows = []
    for error_type in ERROR_TYPES:
        pool = [r for r in all_rows if r["error_type"] == error_type]
        preferred = [r for r in pool if r["cell"] in ref_cells] or pool
        picked = rng.sample(preferred, min(examples_per_type, len(preferred)))
        picked.sort(key=lambda r: (r["model"], r["id"]))
        examples[error_type] = [
            {k: r[k] for k in ("id", "task", "model", "cell", "prediction", "gold", "probable_cause", "proposed_fix")}
            for r in picked
        ]
        for r in picked:
            example_rows.append({"error_type": error_type, "cell": r["cell"], "id": r["id"], "task": r["task"],
                                 "prediction": _short(r["prediction"]), "gold": _short(r["gold"], 80),
                                 "probable_cause": _short(r["probable_cause"], 120)})
    write_tsv(tables / "errors_examples.tsv", example_rows,
              ["error_type", "cell", "id", "task", "prediction", "gold", "probable_cause"])

    totals = {t: sum(c[t] for c in per_cell.values()) for t in ERROR_TYPES}
    ranked = sorted(((v, t) for t, v in totals.items() if v), reverse=True)
    headline = "No errors were found." if not ranked else (
        f"Across {len(per_cell)} evaluated cells ({sum(n_items.values())} generations) the rule-based error "
        f"analysis labels {sum(totals.values())} generations; the most common type is {ranked[0][1]} "
        f"({ranked[0][0]})."
    )
    summary = {
        "headline": headline,
        "types": list(ERROR_TYPES),
        "reference": reference,
        "models": models,
        "by_model": by_model,
        "by_cell": {cid: {"n_items": n_items[cid], **per_cell[cid]} for cid in per_cell},
        "totals": totals,
        "n_generations": sum(n_items.values()),
        "n_errors": len(all_rows),
        "examples": examples,
        "settings": {"overlong_factor": overlong_factor, "overlong_slack_words": overlong_slack_words,
                     "examples_per_type": examples_per_type},
    }
    write_json(out_summary, summary)
    return summary
