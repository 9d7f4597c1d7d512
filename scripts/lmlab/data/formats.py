"""The input formats accepted as they are, and their conversion into lmlab's internal rows.

Instruction data (kind "sft"), detected per row:
  - "instruction": `instruction`, `input`, `output` (the seed notebook's rows, Alpaca files,
    and lmlab's own rows, which add `id`, `task`, `lang`, `meta`); `input` may be absent;
  - "messages": `messages: [{role, content}, ...]` (system|user|assistant, ending with the
    assistant's answer);
  - "sharegpt": `conversations: [{from, value}, ...]` (human|gpt|system; user|assistant too).
  A conversation becomes `instruction` (the turns before the last answer, joined by blank
  lines: the flat view the seed and minimal templates and the overlap check read), `input` ""
  and `output` (the last answer); a conversation that is more than one user turn and its
  answer also keeps `messages`, which the chat template renders turn by turn
  (`lmlab.models.templates.render_prompt`) and SFT trains on (`sft.multi_turn_loss`).

Preference data (kind "preferences"):
  - "strings": `prompt`, `chosen`, `rejected` as strings;
  - "conversational": TRL's form, `prompt` a list of messages ending with a user turn and
    `chosen`/`rejected` each one assistant message (`[{"role": "assistant", "content": ...}]`),
    or TRL's implicit-prompt form without `prompt`, where `chosen` and `rejected` are whole
    conversations sharing every turn before their last (the shared turns are the prompt).
    The prompt turns are joined by blank lines into the string `prompt`.

Knowledge base and agent tasks have one format each ("internal").

Fields that are bookkeeping for this study are optional (`DEFAULTS` in lmlab.data.validate
lists each and its default); the language of a row without `lang` is guessed by `detect_lang`.
"""

import re

from lmlab.core.errors import input_error
from lmlab.core.text import fold

ROLES = ("system", "user", "assistant")
SHAREGPT_ROLES = {"human": "user", "user": "user", "gpt": "assistant", "assistant": "assistant", "system": "system"}
SFT_FORMATS = ("instruction", "messages", "sharegpt")
PREFERENCE_FORMATS = ("strings", "conversational")

# Language guess for rows without `lang`: common function words of the study's two languages.
_WORDS = {
    "en": set(
        "the a an and or of to in on for with is are was were be been it this that these those "
        "what which who how why when where do does did not no you your i we they he she his her "
        "their our my me can could would should will from by at as if then than there here".split()
    ),
    "es": set(
        "el la los las un una unos unas y o de del al en con por para es son era fue ser esta este "
        "estos estas que qué cual cuál quien quién como cómo cuando cuándo donde dónde no sí tu tú "
        "su sus yo nosotros ellos ella él mi me se le lo muy más pero si entre sobre hay".split()
    ),
}
_SPANISH_MARKS = set("ñ¿¡áéíóú")
UNDETERMINED_LANG = "und"


def detect_lang(text):
    """"en" or "es" when the function words (and Spanish accents) clearly say so, else "und"."""
    words = re.findall(r"\w+", text.casefold())
    scores = {lang: sum(w in vocab for w in words) for lang, vocab in _WORDS.items()}
    scores["es"] += sum(ch in _SPANISH_MARKS for ch in text.casefold())
    best = max(scores, key=lambda lang: (scores[lang], lang))
    other = min(scores.values())
    if scores[best] >= 2 and scores[best] >= 2 * other:
        return best
    return UNDETERMINED_LANG


def has_text(text):
    """A letter or digit somewhere: what a row needs to carry any signal."""
    return any(ch.isalnum() for ch in fold(text))


def _conversation(turns, field, path, line, roles=None, role_key="role", content_key="content", last="assistant"):
    """Checked turns as [{role, content}]: roles known, contents non-empty strings, a system
    turn only first, then user and assistant alternating from a user turn, ending with `last`."""
    if not isinstance(turns, list) or not turns:
        raise input_error(path, line, field, f"must be a non-empty array of {{{role_key}, {content_key}}}")
    roles = roles or {r: r for r in ROLES}
    out = []
    for i, turn in enumerate(turns):
        where = f"{field}[{i}]"
        if not isinstance(turn, dict):
            raise input_error(path, line, where, f"expected an object {{{role_key}, {content_key}}}, got {type(turn).__name__}")
        if turn.get(role_key) not in roles:
            raise input_error(path, line, f"{where}.{role_key}", f"{turn.get(role_key)!r} is not one of {', '.join(roles)}")
        content = turn.get(content_key)
        if not isinstance(content, str):
            raise input_error(path, line, f"{where}.{content_key}", f"expected string, got {type(content).__name__}")
        if not content.strip():
            raise input_error(path, line, f"{where}.{content_key}", "is empty")
        role = roles[turn[role_key]]
        if role == "system":
            if i != 0:
                raise input_error(path, line, f"{where}.{role_key}", "a system turn may only come first")
        else:
            expected = "user" if not out or out[-1]["role"] in ("system", "assistant") else "assistant"
            if role != expected:
                raise input_error(path, line, f"{where}.{role_key}", f"expected a {expected} turn (user and assistant turns alternate, from a user turn)")
        out.append({"role": role, "content": content})
    if out[-1]["role"] != last:
        what = "the assistant's answer" if last == "assistant" else "a user turn"
        raise input_error(path, line, field, f"the last turn must be {what}")
    return out


def flat_prompt(turns):
    """The turns as one text, joined by blank lines: the flat view of a conversation."""
    return "\n\n".join(t["content"] for t in turns)


def sft_format(row):
    if "instruction" not in row and "messages" in row:
        return "messages"
    if "instruction" not in row and "conversations" in row:
        return "sharegpt"
    return "instruction"


def _from_conversation(row, turns, drop):
    converted = {k: v for k, v in row.items() if k != drop}
    converted.update(instruction=flat_prompt(turns[:-1]), input="", output=turns[-1]["content"])
    converted.setdefault("meta", {})
    if not (len(turns) == 2 and turns[0]["role"] == "user"):
        converted["messages"] = turns
    return converted


def convert_sft(row, path, line):
    """(internal row, format name)."""
    fmt = sft_format(row)
    if fmt == "messages":
        return _from_conversation(row, _conversation(row["messages"], "messages", path, line), "messages"), fmt
    if fmt == "sharegpt":
        turns = _conversation(row["conversations"], "conversations", path, line, SHAREGPT_ROLES, "from", "value")
        return _from_conversation(row, turns, "conversations"), fmt
    if "output" not in row and "instruction" not in row:
        raise input_error(path, line, "format", "no instruction/output, messages or conversations field: not a known instruction format")
    return row, fmt


def _answer(value, field, path, line):
    """The one assistant message that answers an explicit prompt (TRL: `[{"role": "assistant", ...}]`)."""
    if len(value) != 1 or not isinstance(value[0], dict) or value[0].get("role") != "assistant":
        raise input_error(path, line, field, "expected one assistant message after the prompt")
    content = value[0].get("content")
    if not isinstance(content, str):
        raise input_error(path, line, f"{field}[0].content", f"expected string, got {type(content).__name__}")
    if not content.strip():
        raise input_error(path, line, f"{field}[0].content", "is empty")
    return content


def convert_preference(row, path, line):
    """(internal row, format name)."""
    if not isinstance(row.get("chosen"), list) and not isinstance(row.get("rejected"), list) and not isinstance(row.get("prompt"), list):
        return row, "strings"
    converted = dict(row)
    for field in ("chosen", "rejected"):
        if not isinstance(row.get(field), list):
            raise input_error(path, line, field, "expected a list of messages like the other fields (TRL's conversational form)")
    if "prompt" in row and row["prompt"] is not None:
        prompt = _conversation(row["prompt"], "prompt", path, line, last="user")
        converted["chosen"] = _answer(row["chosen"], "chosen", path, line)
        converted["rejected"] = _answer(row["rejected"], "rejected", path, line)
    else:
        chosen = _conversation(row["chosen"], "chosen", path, line)
        rejected = _conversation(row["rejected"], "rejected", path, line)
        if len(chosen) < 2 or chosen[:-1] != rejected[:-1]:
            raise input_error(path, line, "rejected", "the turns before the answer differ from chosen's (implicit prompt)")
        prompt = chosen[:-1]
        converted.update(chosen=chosen[-1]["content"], rejected=rejected[-1]["content"])
    converted["prompt"] = flat_prompt(prompt)
    return converted, "conversational"


def convert(row, kind, path, line):
    """(internal row, format name) for one raw row of a kind."""
    if kind == "sft":
        return convert_sft(row, path, line)
    if kind == "preferences":
        return convert_preference(row, path, line)
    return row, "internal"
