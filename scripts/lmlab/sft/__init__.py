"""Instruction tuning (SFT) of the base model: one LoRA adapter per prompt template.

    config   the `sft` settings and their checks
    data     the training mix and the prompt-completion pairs
    train    the SFTTrainer run (`train_sft`, `run_sft`)
    outputs  train_log.tsv rows and the adapter's README.md card
    summary  the stage's summary, tables and figure for the paper
"""
