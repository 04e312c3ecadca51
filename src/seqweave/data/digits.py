"""Numbers and residue indices written character by character, with one grammar each.

A model that writes a number digit by digit (Prot2Token's regression tasks) needs three
things that must agree exactly: how a value is written, how the text is read back, and what
may come next while it is being written (constrained decoding, ``decoding/grammars.py``).
Each grammar here is a ``next_chars(text so far) -> allowed characters`` function; the
reader walks the same function, so whatever constrained decoding can write parses, and
parsing accepts nothing it could not write.

Fixed-decimal numbers: ``-?(0|[1-9][0-9]*)`` with at most ``int_digits`` integer digits, then
(when ``decimals`` > 0) ``.`` and exactly ``decimals`` digits; no ``+``, no exponent, no
negative zero. ``format_fixed`` rounds half to even to ``decimals`` places; values are
``Decimal`` so that ``parse_fixed(format_fixed(x)) == x`` is exact for every ``x`` with at
most ``decimals`` places (floats are taken at their exact binary value, then rounded).

Residue indices: 1-based positions, strictly increasing (so distinct), each at most the
protein's length, separated by ``,`` (``"3,17,42"``); no sites is the empty text.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from decimal import ROUND_HALF_EVEN, Decimal

END = ""  # in a set of allowed characters: the text may end here
DIGITS = frozenset("0123456789")
SEPARATOR = ","
INT_DIGITS = 6  # most integer digits of a fixed-decimal number

NextChars = Callable[[str], frozenset[str]]


def fixed_next(text: str, decimals: int, int_digits: int = INT_DIGITS) -> frozenset[str]:
    """Characters that may follow ``text`` (a well-formed prefix) in a fixed-decimal number."""
    negative = text.startswith("-")
    body = text[1:] if negative else text
    if "." in body:
        integer, fraction = body.split(".")
        if len(fraction) == decimals:
            return frozenset({END})
        last = len(fraction) == decimals - 1
        if last and negative and integer == "0" and not fraction.strip("0"):
            return DIGITS - {"0"}  # "-0.000" would be negative zero
        return DIGITS
    if not text:
        return DIGITS | {"-"}
    if not body:  # just after the sign: "-0" would be negative zero without decimals
        return DIGITS - {"0"} if decimals == 0 else DIGITS
    allowed = set()
    if body != "0" and len(body) < int_digits:
        allowed |= DIGITS
    allowed.add("." if decimals > 0 else END)
    return frozenset(allowed)


def indices_next(text: str, length: int) -> frozenset[str]:
    """Characters that may follow ``text`` in sorted distinct 1-based indices up to ``length``."""
    *done, current = text.split(SEPARATOR)
    previous = int(done[-1]) if done else 0
    allowed = set()
    for digit in DIGITS:
        if _index_reachable(current + digit, previous, length):
            allowed.add(digit)
    if current:
        value = int(current)
        if previous < value <= length:
            allowed.add(END)
            if value < length:
                allowed.add(SEPARATOR)
    elif not done:
        allowed.add(END)  # no sites at all
    return frozenset(allowed)


def _index_reachable(prefix: str, previous: int, length: int) -> bool:
    """Whether some index written ``prefix...`` lies in ``previous + 1 .. length``."""
    if prefix.startswith("0"):
        return False
    value = int(prefix)
    for extra in range(len(str(length)) - len(prefix) + 1):
        low, high = value * 10**extra, (value + 1) * 10**extra - 1
        if low <= length and high > previous:
            return True
    return False


def walk(text: str, next_chars: NextChars, what: str) -> None:
    """Check ``text`` character by character against a grammar; raise ValueError where not."""
    for i, char in enumerate(text):
        if char not in next_chars(text[:i]):
            raise ValueError(f"not {what}: {text!r} (character {i + 1}, {char!r})")
    if END not in next_chars(text):
        raise ValueError(f"not {what}: {text!r} ends too early")


def format_fixed(value: Decimal | int | float, decimals: int, int_digits: int = INT_DIGITS) -> str:
    """``value`` rounded half to even to ``decimals`` places, as the grammar writes it.

    Raises:
        ValueError: the value is not finite or needs more than ``int_digits`` integer digits.
    """
    number = Decimal(value)
    if not number.is_finite():
        raise ValueError(f"cannot write {value!r} as a fixed-decimal number")
    rounded = number.quantize(Decimal(1).scaleb(-decimals), rounding=ROUND_HALF_EVEN)
    if rounded.is_zero():
        rounded = abs(rounded)
    text = f"{rounded:f}"
    if len(text.lstrip("-").split(".")[0]) > int_digits:
        raise ValueError(f"{value!r} has more than {int_digits} integer digits")
    return text


def parse_fixed(text: str, decimals: int, int_digits: int = INT_DIGITS) -> Decimal:
    """The value of a fixed-decimal number; ValueError if the grammar would not write it."""
    walk(text, lambda prefix: fixed_next(prefix, decimals, int_digits), "a fixed-decimal number")
    return Decimal(text)


def format_indices(indices: Sequence[int]) -> str:
    """``[3, 17, 42]`` -> ``"3,17,42"`` (the indices must already be sorted and distinct)."""
    return SEPARATOR.join(str(int(i)) for i in indices)


def parse_indices(text: str, length: int) -> list[int]:
    """Indices written by ``format_indices``; ValueError if the grammar would not write them."""
    walk(text, lambda prefix: indices_next(prefix, length), "sorted distinct residue indices")
    return [int(part) for part in text.split(SEPARATOR)] if text else []
