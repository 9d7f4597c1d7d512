"""The evaluation test set: a stratified, seeded subset of sft_test that every cell of the
matrix is evaluated on, so any two cells can be compared item by item."""

import logging
import random

from lmlab.core.errors import InputError
from lmlab.core.io import read_jsonl, write_jsonl

log = logging.getLogger(__name__)


def interleave(queues, limit):
    """Up to `limit` entries taken from the queues in turn, one from each while it lasts
    (the queues are emptied from the front)."""
    chosen = []
    while len(chosen) < limit and any(queues):
        for queue in queues:
            if queue and len(chosen) < limit:
                chosen.append(queue.pop(0))
    return chosen


def select_test_items(rows, max_items_per_task, seed, max_items_by_task=None):
    """A stratified, seeded subset: per task, up to `max_items_per_task` rows (or the task's
    own limit in `max_items_by_task`), languages alternated so each task is balanced between
    en and es where it can be. 0 = all rows. The subset keeps the file's order."""
    by_task = {}
    for index, row in enumerate(rows):
        by_task.setdefault(row["task"], []).append(index)
    keep = []
    for task in sorted(by_task):
        indices = by_task[task]
        limit = (max_items_by_task or {}).get(task, max_items_per_task)
        if not limit or limit >= len(indices):
            keep += indices
            continue
        rng = random.Random(f"{seed}:eval:{task}")
        by_lang = {}
        for i in indices:
            by_lang.setdefault(rows[i]["lang"], []).append(i)
        queues = []
        for lang in sorted(by_lang):
            queue = list(by_lang[lang])
            rng.shuffle(queue)
            queues.append(queue)
        keep += interleave(queues, limit)
    return [rows[i] for i in sorted(keep)]


def counts(rows, key):
    """{value of `key`: number of rows}, sorted by value."""
    found = {}
    for row in rows:
        found[row[key]] = found.get(row[key], 0) + 1
    return dict(sorted(found.items()))


def write_test_items(sft_test, out_path, max_items_per_task, seed, max_items_by_task=None):
    """Rule evaluation_testset: the items every cell is evaluated on."""
    rows = select_test_items(read_jsonl(sft_test), max_items_per_task, seed, max_items_by_task)
    if not rows:
        raise InputError(f"{sft_test}: no test items")
    write_jsonl(out_path, rows)
    log.info("%d test items: %s", len(rows), counts(rows, "task"))
    return rows
