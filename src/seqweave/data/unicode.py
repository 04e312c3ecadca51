"""Text that is not valid Unicode: lone surrogates, which UTF-8 cannot encode.

Python strings can hold them, through an escape (a JSON ``"\\ud800"`` without its pair) or a
lossy decoder (``surrogateescape``), but the tokenizer cannot encode them and neither can a
UTF-8 output file. Every boundary where text enters (the readers, the model's inputs, the
HTTP bodies) checks with these, so the error names where the text came from.
"""

from __future__ import annotations

from typing import Any

from seqweave.errors import DataError


def unencodable(text: str) -> str | None:
    """Why ``text`` is not valid Unicode (a lone surrogate, with its position), or None."""
    try:
        text.encode("utf-8")
    except UnicodeEncodeError as err:
        char = ord(text[err.start])
        return f"lone surrogate U+{char:04X} at character {err.start} is not valid Unicode"
    return None


def require_encodable(value: Any, where: str, name: str, number: int) -> None:
    """Every string of a parsed record, keys included, must be valid Unicode: a lone surrogate
    written as a JSON escape would otherwise fail in the tokenizer or when outputs are
    written, far from the line that holds it. ``where`` is the field's path, e.g. ``refs[1]``."""
    if isinstance(value, str):
        problem = unencodable(value)
        if problem is not None:
            field = f"field {where!r}" if where else "the value"
            raise DataError(f"{field}: {problem}", path=name, line=number)
    elif isinstance(value, dict):
        for key, item in value.items():
            require_encodable(key, f"{where}.<key>" if where else "<key>", name, number)
            require_encodable(item, f"{where}.{key}" if where else key, name, number)
    elif isinstance(value, list):
        for i, item in enumerate(value):
            require_encodable(item, f"{where}[{i}]", name, number)
