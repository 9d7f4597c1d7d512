# Experiment matrix, metrics, win rates, statistics, errors (issue 6; rules/evaluate.smk).
