# Instruction tuning with LoRA/QLoRA through TRL (issue 3; rules/sft.smk).
