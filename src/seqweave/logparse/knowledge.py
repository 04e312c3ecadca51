"""A knowledge base of concept-instance pairs, accumulated over parsed logs.

SemParser (Huo et al. 2023) names an instance that has no concept in its own message
(``<*>``) from what other messages said about it: ``blk_38865`` named ``block`` in one
line is a block wherever it appears. ``ConceptBase`` counts the (concept, instance)
pairs read off conceptualized templates and names an unnamed slot when its instance was
seen named at least ``min_count`` times, by one concept at least ``min_share`` of the
time (a value like ``0`` is a uid here and a port there, and stays unnamed).
"""

from __future__ import annotations

from collections import Counter, defaultdict

from seqweave.logparse.templates import SLOT, parameters, slot_names


class ConceptBase:
    def __init__(self, min_count: int = 2, min_share: float = 0.9) -> None:
        self.min_count = min_count
        self.min_share = min_share
        self.concepts: dict[str, Counter[str]] = defaultdict(Counter)

    def add(self, template: str, message: str) -> None:
        """Count the named slots of ``template`` over ``message``."""
        values = parameters(template, message)
        for name, value in zip(slot_names(template), values or [], strict=False):
            if name:
                self.concepts[value][name] += 1

    def name(self, instance: str) -> str | None:
        """The concept the base gives ``instance``, or None when unknown or ambiguous."""
        counts = self.concepts.get(instance)
        if not counts:
            return None
        concept, n = counts.most_common(1)[0]
        total = sum(counts.values())
        return concept if n >= self.min_count and n >= self.min_share * total else None

    def fill(self, template: str, message: str) -> str:
        """``template`` with each unnamed slot whose instance the base knows named."""
        values = parameters(template, message)
        if values is None:
            return template
        pieces, last = [], 0
        for match, value in zip(SLOT.finditer(template), values, strict=True):
            concept = None if match.group(1) else self.name(value)
            pieces += [template[last : match.start()], f"<*{concept}*>" if concept else match[0]]
            last = match.end()
        return "".join(pieces) + template[last:]
