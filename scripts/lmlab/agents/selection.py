"""The agents stage's task subset: a seeded, category-stratified choice of original tasks
that keeps every repeat with its original and runs repeats after their originals."""

import random
from collections import Counter

from lmlab.core.errors import InputError


def _largest_remainder(total, counts):
    """Integer quotas proportional to `counts` that sum to `total` (ties by key order)."""
    size = sum(counts.values())
    raw = {key: total * count / size for key, count in counts.items()}
    quotas = {key: int(value) for key, value in raw.items()}
    left = total - sum(quotas.values())
    for key in sorted(raw, key=lambda k: (-(raw[k] - quotas[k]), k))[:left]:
        quotas[key] += 1
    return quotas


def select_tasks(tasks, max_tasks=0, min_repeats=0, seed=0):
    """A seeded, category-stratified subset of the original tasks plus their repeats.

    `max_tasks` originals (0 or more than there are = all) are drawn per category in
    proportion to the file's category counts (largest remainder). First the originals of
    `min_repeats` seeded-chosen repeats are forced in, so episodic memory has something to
    reuse; every repeat whose original is kept is then run too (repeats are extra to
    `max_tasks`). Order: the kept originals that have a kept repeat first, then the other
    originals, both in file order, then the repeats in the order of their originals, so
    every repeat runs in a later lockstep batch than its original whenever there are at
    least `batch_size` originals. Returns (tasks, info)."""
    ids = [task["id"] for task in tasks]
    if len(set(ids)) != len(ids):
        raise InputError("agent_tasks: task ids are not unique")
    by_id = {task["id"]: task for task in tasks}
    originals = [task for task in tasks if not task.get("repeat_of")]
    repeats = [task for task in tasks if task.get("repeat_of")]
    for task in repeats:
        if task["repeat_of"] not in by_id or by_id[task["repeat_of"]].get("repeat_of"):
            raise InputError(f"agent_tasks: {task['id']}: repeat_of {task['repeat_of']!r} is not an original task")
    rng = random.Random(seed)
    if max_tasks <= 0 or max_tasks >= len(originals):
        kept_ids = {task["id"] for task in originals}
        forced = []
    else:
        repeat_originals = sorted({task["repeat_of"] for task in repeats})
        forced = sorted(rng.sample(repeat_originals, min(min_repeats, len(repeat_originals), max_tasks)))
        category_counts = Counter(task["category"] for task in originals)
        quotas = _largest_remainder(max_tasks, category_counts)
        forced_counts = Counter(by_id[task_id]["category"] for task_id in forced)
        # Forced originals count toward their category; a category they overfill gives its
        # excess back from the categories with the largest remaining need.
        need = {cat: max(0, quotas[cat] - forced_counts[cat]) for cat in quotas}
        excess = sum(max(0, forced_counts[cat] - quotas[cat]) for cat in quotas)
        for _ in range(excess):
            cat = max(sorted(need), key=lambda c: need[c])
            need[cat] -= 1
        kept_ids = set(forced)
        for cat in sorted(need):
            pool = [task["id"] for task in originals if task["category"] == cat and task["id"] not in kept_ids]
            kept_ids.update(rng.sample(pool, min(need[cat], len(pool))))
    kept_repeats = [task for task in repeats if task["repeat_of"] in kept_ids]
    with_repeat = {task["repeat_of"] for task in kept_repeats}
    first = [task for task in originals if task["id"] in with_repeat]
    rank = {task["id"]: index for index, task in enumerate(first)}
    ordered = (
        first
        + [task for task in originals if task["id"] in kept_ids and task["id"] not in with_repeat]
        # Repeats in the order of their originals: the k-th repeat's original sits at an index
        # <= k, so at least n_originals positions separate them.
        + sorted(kept_repeats, key=lambda task: rank[task["repeat_of"]])
    )
    info = {
        "n_tasks": len(ordered),
        "n_originals": len(kept_ids),
        "n_repeats": len(kept_repeats),
        "n_originals_available": len(originals),
        "n_repeats_available": len(repeats),
        "forced_originals": forced,
        "per_category": dict(sorted(Counter(task["category"] for task in ordered).items())),
        "per_lang": dict(sorted(Counter(task.get("lang") for task in ordered).items())),
        "ids": [task["id"] for task in ordered],
    }
    return ordered, info


def repeats_after_their_original(tasks, batch_size):
    """Repeat ids whose original runs in an earlier lockstep batch (reuse is possible)."""
    position = {task["id"]: index for index, task in enumerate(tasks)}
    return [
        task["id"]
        for index, task in enumerate(tasks)
        if task.get("repeat_of") in position and position[task["repeat_of"]] // batch_size < index // batch_size
    ]
