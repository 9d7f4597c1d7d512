"""The data stage: the task vocabulary (`tasks`), the seeded generator of data/raw
(`generate`, a package with one module per task family), and the validation of raw
inputs with its manifests (`validate`)."""
