"""The evaluation test set: a stratified, language-balanced, seeded subset."""

from lmlab.evaluation.testset import select_test_items


def test_test_subset_is_stratified_balanced_and_seeded():
    rows = [
        {"id": f"{task}-{lang}-{i}", "task": task, "lang": lang}
        for task in ("arithmetic", "kb_qa")
        for lang in ("en", "es")
        for i in range(7)
    ]
    subset = select_test_items(rows, 4, seed=3)
    for task in ("arithmetic", "kb_qa"):
        mine = [r for r in subset if r["task"] == task]
        assert len(mine) == 4
        assert sum(r["lang"] == "en" for r in mine) == 2
    assert subset == select_test_items(rows, 4, seed=3)
    assert subset != select_test_items(rows, 4, seed=4)
    # File order is kept, and 0 means every row.
    assert [rows.index(r) for r in subset] == sorted(rows.index(r) for r in subset)
    assert select_test_items(rows, 0, seed=3) == rows
    # A task's own limit replaces the common one.
    limited = select_test_items(rows, 4, seed=3, max_items_by_task={"kb_qa": 2})
    assert sum(r["task"] == "kb_qa" for r in limited) == 2 and sum(r["task"] == "arithmetic" for r in limited) == 4
