"""Loghub log formats: ``'<Date> <Time> <Level>: <Content>'`` -> a regular expression.

A format names the header fields of a log line in angle brackets; the text between them
is literal, a run of spaces in it matching any run of whitespace (log writers pad
columns). ``<Content>`` is the message the parsers see. A line the format does not
match, or one that is not valid UTF-8, is *malformed*: it is reported with its file and
line number and kept as a row of its own, so the line numbers of every other line stay
what they are in the file.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

from seqweave.errors import ConfigError

_FIELD = re.compile(r"<([^<>]+)>")
CONTENT = "Content"


@dataclass(frozen=True)
class LogFormat:
    """A compiled log format: its header names in order and the regex over a line."""

    headers: tuple[str, ...]
    regex: re.Pattern[str]

    def fields(self, line: str) -> dict[str, str] | None:
        """The header fields of ``line``, or None when the line does not fit."""
        found = self.regex.fullmatch(line)
        return found.groupdict() if found else None


def log_format(text: str) -> LogFormat:
    """Compile a Loghub format string. Each field is a lazy named group (the last one
    takes the rest of the line); literal text is escaped, spaces match ``\\s+``.

    Raises:
        ConfigError: no ``<Content>`` field, a repeated or unusable field name, or no
            fields at all.
    """
    parts = _FIELD.split(text)  # literal, name, literal, name, ..., literal
    literals, names = parts[0::2], parts[1::2]
    if CONTENT not in names:
        raise ConfigError(f"log format {text!r} has no <{CONTENT}> field")
    if len(set(names)) != len(names):
        raise ConfigError(f"log format {text!r} names a field twice")
    for name in names:
        if not name.isidentifier():
            raise ConfigError(f"log format field <{name}> is not a plain name")
    pattern = []
    for index, name in enumerate(names):
        pattern.append(_literal(literals[index]))
        pattern.append(f"(?P<{name}>.*?)" if index < len(names) - 1 else f"(?P<{name}>.*)")
    pattern.append(_literal(literals[-1]))
    return LogFormat(tuple(names), re.compile("".join(pattern)))


def _literal(text: str) -> str:
    return r"\s+".join(re.escape(piece) for piece in re.split(r" +", text))


@dataclass(frozen=True)
class LogLine:
    """One line of a log: its 1-based number, header fields (Content among them) or,
    for a malformed line, the reason and the raw text."""

    line_id: int
    fields: dict[str, str] = field(default_factory=dict)
    raw: str = ""
    problem: str = ""

    @property
    def content(self) -> str:
        return self.fields.get(CONTENT, "")

    @property
    def malformed(self) -> bool:
        return bool(self.problem)


def read_log(path: str | Path, fmt: LogFormat | None = None) -> Iterator[LogLine]:
    """Every line of a log file, in order, malformed ones included (``problem`` set).
    Without a format each line is its own Content. Line ends (``\\n``, ``\\r\\n``) are
    stripped; nothing else is."""
    with Path(path).open("rb") as handle:
        for number, data in enumerate(handle, start=1):
            data = data.rstrip(b"\n").removesuffix(b"\r")
            try:
                line = data.decode("utf-8")
            except UnicodeDecodeError as error:
                raw = data.decode("utf-8", errors="replace")
                yield LogLine(number, raw=raw, problem=f"not valid UTF-8 ({error.reason})")
                continue
            if fmt is None:
                yield LogLine(number, {CONTENT: line}, raw=line)
                continue
            fields = fmt.fields(line)
            if fields is None:
                yield LogLine(number, raw=line, problem="does not match the log format")
            else:
                yield LogLine(number, fields, raw=line)
