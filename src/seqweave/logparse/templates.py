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
def template_regex(template: str) -> re.Pattern[str]:
    """The template as a regular expression: literal text escaped, each slot one lazy
    group, anchored at both ends. A slot may hold spaces (a value of several words)."""
    pattern, last = [], 0
    for match in SLOT.finditer(template):
        pattern += [re.escape(template[last : match.start()]), "(.*?)"]
        last = match.end()
    pattern.append(re.escape(template[last:]))
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
