# Reward model, DPO, ORPO, policy optimisation (issue 5; rules/preference.smk).
