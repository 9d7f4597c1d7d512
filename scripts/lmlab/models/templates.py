"""Prompt templates: how an (instruction, input) pair becomes the text a model sees.

The same functions serve SFT (prompt + completion), the context study (token counts per
template) and evaluation (prompts as sent), so every stage measures the same strings.
"""

import json

TEMPLATE_NAMES = ("seed", "minimal", "chat")

# Task-specific format constraints, appended by the "constrained" prompt style.
FORMAT_CONSTRAINTS = {
    "json_extraction": "Return only a JSON object that matches this JSON Schema: {schema}",
    "arithmetic": "Answer with the final number only.",
    "sentiment": "Answer with one word: positive, negative or neutral.",
    "summarization": "Answer with one sentence of at most 25 words.",
    "kb_qa": "Answer with the short answer only, taken from the text.",
    "long_context_qa": "Answer with the short answer only, taken from the document.",
    "refusal": "If the request is unsafe or impossible, refuse in one sentence.",
}


def format_rule(row):
    """The task's explicit output-format constraint ('' for unknown tasks)."""
    rule = FORMAT_CONSTRAINTS.get(row.get("task"), "")
    if "{schema}" in rule:
        schema = (row.get("meta") or {}).get("schema", {})
        rule = rule.format(schema=json.dumps(schema, ensure_ascii=False, sort_keys=True))
    return rule


def user_text(row, constrained=False):
    """Instruction, optional input, and (for the constrained style) the task's format rule."""
    parts = [row["instruction"].strip()]
    if row.get("input", "").strip():
        parts.append(row["input"].strip())
    if constrained and format_rule(row):
        parts.append(format_rule(row))
    return "\n\n".join(parts)


def uses_seed_fallback(template, tokenizer):
    """A model without a chat template gets the seed template where `chat` is asked for (the
    paper says so: lmlab.paper.claims, from base_model.json's has_chat_template)."""
    if template == "chat" and tokenizer is None:
        raise ValueError("the chat template needs the model's tokenizer")
    return template == "chat" and not tokenizer.chat_template


def render_prompt(row, template, tokenizer=None, constrained=False):
    """The prompt text (everything before the response) under a named template."""
    if uses_seed_fallback(template, tokenizer):
        template = "seed"
    if template == "seed":
        # The seed notebook's Spanish section headers; Entrada only when there is input.
        text = f"### Instrucción:\n{row['instruction'].strip()}\n\n"
        if row.get("input", "").strip():
            text += f"### Entrada:\n{row['input'].strip()}\n\n"
        if constrained and format_rule(row):
            text += f"### Formato:\n{format_rule(row)}\n\n"
        return text + "### Respuesta:\n"
    if template == "minimal":
        return user_text(row, constrained) + "\nAnswer: "
    if template == "chat":
        if row.get("messages"):
            # A conversation (lmlab.data.formats) goes turn by turn up to its last answer; the
            # format rule, when asked for, ends the last user turn.
            messages = [dict(m) for m in row["messages"][:-1]]
            if constrained and format_rule(row):
                messages[-1]["content"] = messages[-1]["content"].strip() + "\n\n" + format_rule(row)
        else:
            messages = [{"role": "user", "content": user_text(row, constrained)}]
        return tokenizer.apply_chat_template(messages, tokenize=False, add_generation_prompt=True)
    raise ValueError(f"unknown template {template!r}; known: {', '.join(TEMPLATE_NAMES)}")


def render_completion(row, template, tokenizer):
    """The response text, ending in the token that teaches the model to stop.

    For the chat template the end-of-turn token is the model's EOS (<|im_end|> for SmolLM2);
    for the plain templates we append the tokenizer's EOS token explicitly.
    """
    return row["output"].strip() + tokenizer.eos_token
