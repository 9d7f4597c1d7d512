"""Alignment of the SFT model: preference pairs, a learned reward model, DPO, ORPO and RLOO.

    scoring  the heuristic scorer and the gold score of one response
    pairs    shipped and on-policy preference pairs, the training prompts
    reward   the learned reward model: training, scoring, evaluation
    policy   what DPO, ORPO and RLOO share (start point, reference check, pair data)
    dpo, orpo, rloo  one module per algorithm
    summary  the stage's summary, tables and figures for the paper
"""
