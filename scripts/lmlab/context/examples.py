"""The datasets the context study reads, and the views of their rows it measures: the
instruction view the templates render, and the checked document/question/answer of a
long-context QA row with its answer depth.
"""

from lmlab.core.errors import InputError
from lmlab.core.io import read_jsonl

# Dataset name -> kind, in the order every table lists them.
DATASET_KINDS = {
    "sft_train": "sft",
    "sft_validation": "sft",
    "sft_test": "sft",
    "preferences_train": "preferences",
    "preferences_test": "preferences",
    "kb": "kb",
    "agent_tasks": "agent_tasks",
}
SFT_DATASETS = ("sft_train", "sft_validation", "sft_test")
LONG_TASK = "long_context_qa"
# Table order of datasets, then the pooled SFT splits and everything.
_DATASET_ORDER = list(DATASET_KINDS) + ["sft", "all"]


def load_datasets(paths):
    """{name: rows} for every dataset name in DATASET_KINDS that `paths` has."""
    return {name: read_jsonl(paths[name]) for name in DATASET_KINDS if name in paths}


def dataset_order(name):
    """Sort key of a dataset name (or 'sft', 'all') in the tables."""
    return _DATASET_ORDER.index(name) if name in _DATASET_ORDER else len(_DATASET_ORDER)


def as_instruction(row, kind):
    """The (instruction, input, output) view of a row that the templates render, or None
    for kb passages (documents, not instructions)."""
    if kind == "sft":
        return row
    if kind == "preferences":
        return {**row, "instruction": row["prompt"], "input": "", "output": row["chosen"], "meta": {}}
    if kind == "agent_tasks":
        return {**row, "instruction": row["question"], "input": "", "output": row["answer"], "meta": {}}
    return None


def long_context_doc(row, where):
    """Document, question and answer char span of a long_context_qa row (checked)."""
    meta = row.get("meta") or {}
    doc = row.get("input", "")
    answer = str(meta.get("answer", ""))
    start = meta.get("answer_char_start")
    if not answer or not isinstance(start, int) or doc[start : start + len(answer)] != answer:
        raise InputError(f"{where}: meta.answer_char_start: does not point at meta.answer in input")
    return {"doc": doc, "question": row["instruction"], "answer": answer, "start": start, "end": start + len(answer)}


def depth_bin(depth, edges):
    """Label of the depth bin holding `depth` (bins [e_i, e_i+1), the last one closed)."""
    for lo, hi in zip(edges[:-1], edges[1:]):
        if lo <= depth < hi or (hi == edges[-1] and depth == hi):
            return f"{lo:.2f}-{hi:.2f}"
    raise ValueError(f"depth {depth} outside the bins {edges}")


def row_depth(row):
    """Answer depth of a long_context_qa row (0 = start of the document, 1 = end)."""
    return float(row["meta"]["depth"])


def prompt_doc_offset(prompt, doc):
    """Where the (stripped) document starts inside a rendered prompt."""
    stripped = doc.strip()
    at = prompt.find(stripped)
    if at < 0:
        raise ValueError("the rendered prompt does not contain the document verbatim")
    return at - (len(doc) - len(doc.lstrip()))
