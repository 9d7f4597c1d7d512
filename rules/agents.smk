# Agent ablation (issue 7; rules/agents.smk).
