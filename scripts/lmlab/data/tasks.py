"""The task vocabulary of lmlab's data: SFT task families, preference failure modes, agent
task categories and languages. The generator writes these values and the validator accepts
exactly these, so both take them from here."""

SFT_TASKS = (
    "json_extraction",
    "arithmetic",
    "sentiment",
    "summarization",
    "kb_qa",
    "refusal",
    "long_context_qa",
)
FAILURE_MODES = ("wrong_format", "factual_error", "over_long", "unsupported_claim", "needless_refusal")
AGENT_CATEGORIES = ("calculation", "kb_lookup", "extraction", "multi_step")
LANGS = ("en", "es")

# The meta fields each task's metric reads (lmlab.data.metrics.score_item): a file the
# evaluation scores must carry them.
META_NEEDED = {"json_extraction": ("schema",), "kb_qa": ("answer",), "long_context_qa": ("answer",),
               "sentiment": ("label",)}
