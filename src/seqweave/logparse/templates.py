"""Event templates: a message's constant text with its variables as slots.

A slot is ``<*>`` (Loghub) or ``<*concept*>`` (SemParser's conceptualized templates, the
slot named by the concept of its instance). A template matches a message when the
message is the template's text with some text in each slot; what fills the slots is
the message's ``ParameterList``.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Sequence
from functools import lru_cache

SLOT = re.compile(r"<\*([^*<>]*)\*>|<\*>")


def slot_names(template: str) -> list[str]:
    """The concept of each slot, ``""`` for an unnamed ``<*>``."""
    return [m.group(1) or "" for m in SLOT.finditer(template)]


@lru_cache(maxsize=65536)
def template_pieces(template: str) -> tuple[str, ...]:
    """The literal text before, between and after the slots (one more than slots)."""
    return tuple(SLOT.split(template)[0::2])


def slot_spans(pieces: Sequence[str], text: str) -> list[tuple[int, int]] | None:
    """Where each slot lies in ``text`` when the literal ``pieces`` match it in order with
    any text (or none) in each slot between them, else None.

    Like the regular expression with one lazy group per slot, but linear: with ``*`` as
    the only wildcard, taking each middle piece at its leftmost place never loses a match
    (a later place leaves less room for what follows), so nothing is backtracked; a
    regular expression over a message that does not match can backtrack for minutes.
    """
    first, last = pieces[0], pieces[-1]
    if len(pieces) == 1:
        return [] if text == first else None
    end = len(text) - len(last)
    if not text.startswith(first) or not text.endswith(last) or end < len(first):
        return None
    spans, position = [], len(first)
    for piece in pieces[1:-1]:
        found = text.find(piece, position, end)
        if found < 0:
            return None
        spans.append((position, found))
        position = found + len(piece)
    return [*spans, (position, end)]


def parameters(template: str, message: str) -> list[str] | None:
    """The text in each slot of ``template`` when it matches ``message``, else None.

    Where template and message have as many words and every slot is a whole word (the
    usual form), the words are aligned one to one, which is fast and never ambiguous;
    otherwise ``slot_spans`` decides (each slot ends at the earliest place that works).
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
    spans = slot_spans(template_pieces(template), message)
    return None if spans is None else [message[start:end] for start, end in spans]


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
    this puts the slot where the word is. Whitespace is ignored in the matching (both
    sides without it); a template that does not match its message even so is returned
    as it is."""
    kept = [i for i, ch in enumerate(message) if not ch.isspace()]
    squeezed = "".join(message[i] for i in kept)
    pieces = ["".join(piece.split()) for piece in template_pieces(template)]
    spans = slot_spans(pieces, squeezed)
    if spans is None:
        return template
    slots = [(kept[start], kept[end - 1] + 1) for start, end in spans if end > start]
    pieces, last = [], 0
    for word in re.finditer(r"\S+", message):
        start, end = word.span()
        variable = any(s < end and start < e for s, e in slots)
        pieces += [message[last:start], "<*>" if variable else word.group()]
        last = end
    return "".join(pieces) + message[last:]
