"""Preference pairs: JSON Lines of ``{"source": ..., "chosen": ..., "rejected": ...}``.

The data of reward models (``seqweave.rewards.seq2seq_rm``, ``seqweave.rewards.bradley_terry``):
for one source, an answer a judge preferred and one it did not. Other fields are kept in
``extra``. Blank lines are skipped but counted, so an error's line number is an editor's.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from seqweave.data.readers import _is_blank, _parse_object, _string_field, read_text_lines
from seqweave.errors import DataError

FIELDS = ("source", "chosen", "rejected")


@dataclass(frozen=True)
class PreferencePair:
    source: str
    chosen: str
    rejected: str
    extra: dict[str, Any] = field(default_factory=dict)


def read_preferences(path: str | Path) -> list[PreferencePair]:
    """Every pair of a JSON Lines file.

    Raises:
        DataError: the file is missing, empty or not UTF-8; a line is not a JSON object, or
            lacks one of ``source``, ``chosen``, ``rejected`` or has a non-string one; a pair
            whose chosen and rejected answers are the same text (it prefers nothing). The
            message names the file and the line.
    """
    name = str(path)
    lines = read_text_lines(path)
    pairs = []
    for number, line in enumerate(lines, start=1):
        if _is_blank(line):
            continue
        record = _parse_object(line, name, number)
        source, chosen, rejected = (
            _string_field(record, key, name, number, required=True) for key in FIELDS
        )
        if chosen == rejected:
            raise DataError("chosen and rejected are the same text", path=name, line=number)
        extra = {k: v for k, v in record.items() if k not in FIELDS}
        pairs.append(PreferencePair(source, chosen, rejected, extra))  # type: ignore[arg-type]
    if not pairs:
        raise DataError("file is empty (no non-blank lines)", path=name)
    return pairs


def write_preferences(pairs: Iterable[PreferencePair], path: str | Path) -> Path:
    """Write pairs as JSON Lines (``extra`` fields after the three named ones)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w", encoding="utf-8") as handle:
        for pair in pairs:
            row = {"source": pair.source, "chosen": pair.chosen, "rejected": pair.rejected}
            handle.write(json.dumps(row | pair.extra, ensure_ascii=False) + "\n")
    return path
