# Tokenization and context-window study (issue 4; rules/context.smk).
