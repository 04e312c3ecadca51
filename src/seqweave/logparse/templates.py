"""Event templates: a message's constant text with its variables as slots.

A slot is ``<*>`` (Loghub) or ``<*concept*>`` (SemParser's conceptualized templates, the
slot named by the concept of its instance). A template matches a message when the
message is the template's text with some text in each slot; what fills the slots is
the message's ``ParameterList``.
"""

from __future__ import annotations

import hashlib
import re
from functools import lru_cache

SLOT = re.compile(r"<\*([^*<>]*)\*>|<\*>")


def slot_names(template: str) -> list[str]:
    """The concept of each slot, ``""`` for an unnamed ``<*>``."""
    return [m.group(1) or "" for m in SLOT.finditer(template)]


@lru_cache(maxsize=65536)
def template_regex(template: str, loose_spaces: bool = False) -> re.Pattern[str]:
    """The template as a regular expression: literal text escaped, each slot one lazy
    group (use ``fullmatch``). A slot may hold spaces (a value of several words). With
    ``loose_spaces`` a run of spaces in the literal text matches any whitespace or none."""

    def literal(text: str) -> str:
        if not loose_spaces:
            return re.escape(text)
        return r"\s*".join(re.escape(piece) for piece in re.split(r"\s+", text))

    pattern, last = [], 0
    for match in SLOT.finditer(template):
        pattern += [literal(template[last : match.start()]), "(.*?)"]
        last = match.end()
    pattern.append(literal(template[last:]))
    return re.compile("".join(pattern), re.DOTALL)


def parameters(template: str, message: str) -> list[str] | None:
    """The text in each slot of ``template`` when it matches ``message``, else None.

    Where template and message have as many words and every slot is a whole word (the
    usual form), the words are aligned one to one, which is fast and never ambiguous;
    otherwise a regular expression decides (its lazy groups give the earliest split).
    """
    words, tokens = template.split(), message.split()
    if len(words) == len(tokens) and " ".join(tokens) == message and " ".join(words) == template:
        values = []
        for word, token in zip(words, tokens, strict=True):
            if SLOT.fullmatch(word):
                values.append(token)
            elif word != token:
                break
        else:
            return values
    found = template_regex(template).fullmatch(message)
    return list(found.groups()) if found else None


def literal_size(template: str) -> int:
    """How many letters and digits a template fixes: a template with none (``<*> <*>``)
    says nothing about a message, and the more it fixes the more specific it is."""
    return sum(ch.isalnum() for ch in SLOT.sub("", template))


def event_id(template: str) -> str:
    """A stable id for a template: the first 8 hex digits of its MD5, as Loghub's
    parsers write ``EventId`` (the same template gets the same id in every run)."""
    return hashlib.md5(template.encode("utf-8")).hexdigest()[:8]


def whole_words(template: str, message: str) -> str:
    """``template`` with every message word that a slot touches made a whole ``<*>``
    (Drain's and the corrected Loghub templates' notion of a variable: a word, not part
    of one). A subword model may copy the first pieces of a long id before it decides the
    word is a variable, and write the slot with a space of its own (``blk_3886 <*>``);
    this puts the slot where the word is. The template is matched with its spaces loose
    (``template_regex(..., loose_spaces=True)``); one that does not match its message
    even so is returned as it is."""
    found = template_regex(template, loose_spaces=True).fullmatch(message)
    if found is None:
        return template
    slots = [found.span(i) for i in range(1, len(found.groups()) + 1)]
    slots = [(start, end) for start, end in slots if end > start]
    pieces, last = [], 0
    for word in re.finditer(r"\S+", message):
        start, end = word.span()
        variable = any(s < end and start < e for s, e in slots)
        pieces += [message[last:start], "<*>" if variable else word.group()]
        last = end
    return "".join(pieces) + message[last:]
