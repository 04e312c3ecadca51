"""Thoth's Sketch-and-Fill answer format: write it, and read it back or say why not.

Thoth (Sun et al. 2025, "Unleashing Scientific Reasoning for Bio-experimental Protocol
Generation via Structured Component-based Reward Mechanism") answers a protocol question in
sections that separate analysis, structure and expression, so that each step can be checked
by a rule rather than by a judge model. The form used here::

    <think>
    free-text reasoning: what the steps are and why
    </think>
    <key>
    [
    {"action": "add", "objects": ["PBS", "tube"], "parameters": {"volume": "250 uL"}},
    {"action": "incubate", "objects": ["tube"], "parameters": {"temperature": "37 °C", ...}}
    ]
    </key>
    <orc>
    1. Add 250 uL of PBS to the tube.
    2. Incubate the tube at 37 °C for 30 min.
    </orc>

``<key>`` is a JSON array of atomic steps, each an object with an ``action`` (a non-empty
string), ``objects`` (strings) and ``parameters`` (string or number values by name);
``<orc>`` is the same protocol in prose, one numbered line per step, numbered from 1. Each
section appears exactly once, in this order; text around them (the paper's optional
``<note>`` among it) is ignored. The reward that reads this form is ``seqweave.rewards``.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

SECTIONS = ("think", "key", "orc")
_PROSE_LINE = re.compile(r"^\s*(\d+)[.)]\s+(\S.*?)\s*$")


class FormatError(ValueError):
    """An answer that does not follow the format; the message says which part."""


@dataclass(frozen=True)
class Step:
    """One atomic step of ``<key>``: what is done, to what, with which settings."""

    action: str
    objects: tuple[str, ...] = ()
    parameters: Mapping[str, str] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        return {
            "action": self.action,
            "objects": list(self.objects),
            "parameters": dict(self.parameters),
        }


@dataclass(frozen=True)
class Answer:
    """An answer read back: its reasoning, its steps and its prose lines (one per step)."""

    think: str
    steps: list[Step]
    prose: list[str]


def render_answer(think: str, steps: Sequence[Step], prose: Sequence[str]) -> str:
    """The answer text: the three sections, ``<key>`` one step per line."""
    key = ",\n".join(json.dumps(step.to_json(), ensure_ascii=False) for step in steps)
    lines = "\n".join(f"{number}. {line}" for number, line in enumerate(prose, start=1))
    return f"<think>\n{think}\n</think>\n<key>\n[\n{key}\n]\n</key>\n<orc>\n{lines}\n</orc>"


def split_sections(text: str) -> dict[str, str]:
    """Each section's inner text, stripped.

    Raises:
        FormatError: a section missing, repeated, or out of order.
    """
    found, end = {}, 0
    for name in SECTIONS:
        opening, closing = f"<{name}>", f"</{name}>"
        if text.count(opening) != 1 or text.count(closing) != 1:
            raise FormatError(f"<{name}> must appear exactly once, opened and closed")
        start = text.index(opening)
        stop = text.index(closing)
        if start < end or stop < start:
            raise FormatError(f"<{name}> is out of order or closed before it opens")
        found[name] = text[start + len(opening) : stop].strip()
        end = stop + len(closing)
    return found


def parse_steps(key: str) -> list[Step]:
    """The steps of a ``<key>`` section.

    Raises:
        FormatError: not JSON, not an array of step objects, or a step with a missing or
            mistyped field.
    """
    try:
        value = json.loads(key)
    except json.JSONDecodeError as error:
        raise FormatError(f"<key> is not valid JSON: {error.msg}") from None
    if not isinstance(value, list) or not value:
        raise FormatError("<key> must be a non-empty JSON array of steps")
    return [_step(item, number) for number, item in enumerate(value, start=1)]


def _step(item: Any, number: int) -> Step:
    if not isinstance(item, dict) or set(item) != {"action", "objects", "parameters"}:
        raise FormatError(f"step {number}: must have exactly action, objects and parameters")
    action, objects, parameters = item["action"], item["objects"], item["parameters"]
    if not isinstance(action, str) or not action.strip():
        raise FormatError(f"step {number}: action must be a non-empty string")
    if not isinstance(objects, list) or not all(isinstance(o, str) for o in objects):
        raise FormatError(f"step {number}: objects must be a list of strings")
    scalar = (str, int, float)
    if not isinstance(parameters, dict) or not all(
        isinstance(v, scalar) and not isinstance(v, bool) for v in parameters.values()
    ):
        raise FormatError(f"step {number}: parameters must map names to strings or numbers")
    return Step(action, tuple(objects), {k: str(v) for k, v in parameters.items()})


def parse_prose(orc: str) -> list[str]:
    """The prose steps of an ``<orc>`` section, without their numbers.

    Raises:
        FormatError: a non-blank line that is not a numbered step, or numbers that do not
            run 1, 2, 3...
    """
    lines = []
    for line in orc.splitlines():
        if not line.strip():
            continue
        match = _PROSE_LINE.match(line)
        if match is None:
            raise FormatError(f"<orc> line is not a numbered step: {line.strip()[:60]!r}")
        if int(match.group(1)) != len(lines) + 1:
            raise FormatError(f"<orc> step {match.group(1)} should be {len(lines) + 1}")
        lines.append(match.group(2))
    if not lines:
        raise FormatError("<orc> has no steps")
    return lines


def parse_answer(text: str) -> Answer:
    """An answer read back.

    Raises:
        FormatError: any part not in the format (see ``split_sections``, ``parse_steps``,
            ``parse_prose``).
    """
    sections = split_sections(text)
    return Answer(sections["think"], parse_steps(sections["key"]), parse_prose(sections["orc"]))
