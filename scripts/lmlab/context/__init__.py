"""The context stage: tokenization and context windows.

windows (truncation and sliding-window arithmetic), retriever (window terms, BM25 top-1),
examples (the datasets and their long-context rows), records (per-example rows),
tokenizers (the tokenizers compared, BPE training, fertility), stats (the context_stats
step), accuracy (context_accuracy: the model run), bpb (context_bpb: tiny LMs' bits per
byte), figures and report (context_report: tables, figures, summary; TABLES, FIGURES).
"""
