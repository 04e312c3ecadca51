"""The template cache: a message that fits a template already known is not parsed again.

A seq2seq parser costs a model call per message, and a log repeats a few hundred
templates over millions of lines; LILAC (Jiang et al. 2024) puts an adaptive cache in
front of its LLM for this reason. Here a message hits the cache when some known template
matches it exactly, its variables in the ``<*>`` slots (``templates.parameters``); the
parser's answer for a message that missed is added, so the next message of that event
is a hit. The cache is saved as JSON (never pickle) and can be pre-loaded, e.g. with the
templates of yesterday's logs.

Lookup: templates are filed under their first word when it is plain text, else under
``None``; a message is tried against the templates filed under its own first word and
those under ``None``, the most specific first (the most literal letters and digits), so
``open <*>`` wins over ``<*> <*>`` when both fit. A template with no letter or digit of
its own (``<*>``) would swallow every message and is never cached.
"""

from __future__ import annotations

import bisect
import heapq
import json
from collections import defaultdict
from collections.abc import Iterable
from pathlib import Path

from seqweave.errors import DataError
from seqweave.logparse.templates import SLOT, literal_size, parameters

VERSION = 1


def _key(text: str) -> str | None:
    words = text.split(maxsplit=1)
    if not words:
        return ""
    return None if SLOT.search(words[0]) else words[0]


class TemplateCache:
    """Known templates, how often each was matched or added, and hit/miss counts."""

    def __init__(self, templates: Iterable[str] = ()) -> None:
        self.occurrences: dict[str, int] = {}
        # first word -> (-literal size, template), kept sorted: most specific first
        self._filed: dict[str | None, list[tuple[int, str]]] = defaultdict(list)
        self.hits = 0
        self.misses = 0
        for template in templates:
            self.add(template)

    def __len__(self) -> int:
        return len(self.occurrences)

    def __contains__(self, template: str) -> bool:
        return template in self.occurrences

    def match(self, message: str) -> str | None:
        """The most specific known template that fits ``message``, counted as a hit; None
        (a miss) when none does."""
        key = _key(message)
        own = self._filed.get(key, []) if key is not None else []
        for _, template in heapq.merge(own, self._filed.get(None, [])):
            if parameters(template, message) is not None:
                self.hits += 1
                self.occurrences[template] += 1
                return template
        self.misses += 1
        return None

    def add(self, template: str, message: str | None = None) -> bool:
        """Remember ``template`` (as the parse of ``message``, when given); returns whether
        it is cached. Refused: a template with no letter or digit of its own, and one that
        does not match the message it was parsed from (it could never hit)."""
        if literal_size(template) == 0:
            return False
        if message is not None and parameters(template, message) is None:
            return False
        if template not in self.occurrences:
            self.occurrences[template] = 0
            bisect.insort(self._filed[_key(template)], (-literal_size(template), template))
        if message is not None:
            self.occurrences[template] += 1
        return True

    def save(self, path: str | Path) -> Path:
        """Write the cache as JSON, atomically (a crash never leaves half a file)."""
        path = Path(path)
        rows = [{"template": t, "occurrences": n} for t, n in self.occurrences.items()]
        tmp = path.with_name(f".{path.name}.tmp")
        tmp.write_text(json.dumps({"version": VERSION, "templates": rows}, indent=1) + "\n")
        tmp.replace(path)
        return path

    @classmethod
    def load(cls, path: str | Path) -> TemplateCache:
        """Read a cache written by ``save``.

        Raises:
            DataError: the file is not JSON or not a template cache of this version.
        """
        try:
            data = json.loads(Path(path).read_text(encoding="utf-8"))
        except (OSError, UnicodeDecodeError, json.JSONDecodeError) as error:
            raise DataError(f"{path}: cannot read the template cache: {error}") from error
        if not isinstance(data, dict) or data.get("version") != VERSION:
            raise DataError(f"{path}: not a version-{VERSION} template cache")
        cache = cls()
        for index, row in enumerate(data.get("templates", [])):
            ok = isinstance(row, dict) and isinstance(row.get("template"), str)
            if not ok or not isinstance(row.get("occurrences", 0), int):
                raise DataError(f"{path}: template {index} is not {{template, occurrences}}")
            if cache.add(row["template"]):
                cache.occurrences[row["template"]] = row.get("occurrences", 0)
        return cache
