"""The data stage: the task vocabulary (`tasks`), how an answer to each task family is scored
(`metrics`, shared by evaluation, context accuracy and the alignment heuristics), the seeded
generator of data/raw (`generate`, a package with one module per task family), and the
validation of raw inputs with its manifests (`validate`)."""
