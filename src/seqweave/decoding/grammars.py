"""The grammars a config can name as ``decode.constraint``, as token-level constraints.

Each grammar is a function of the text written so far (one character per token, as the
alphabet tokenizers write) and of the number of residues in the source:

- ``per_residue[:LABELS]``: only label tokens (default ``HEC``, the 3-state secondary
  structure), exactly one per source residue, then eos;
- ``number[:DECIMALS]``: a well-formed fixed-decimal number (default 3 decimals,
  ``data/digits.py``), then eos;
- ``sorted_indices``: sorted distinct 1-based residue indices separated by ``,``, each at
  most the source's residue count, then eos;
- ``tasks``: the grammar of the row's task, read from its source's task token
  ``<task=NAME>`` (``TASK_GRAMMARS``: ss -> per_residue, fitness -> number, helix_starts ->
  sorted_indices); a source without a known task token is unconstrained.

A source residue is a source token that stands for one character (or is ``<unk>``, which
stands for one unknown character): task tokens, bos and eos are not residues.

``GRAMMARS`` maps each name to its builder; ``build_constraint(spec, tokenizer)`` builds one
from ``name[:argument]``, and ``check_constraint_spec`` lets the config refuse an unknown
name before any decoding.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

from seqweave.data.digits import DIGITS, END, SEPARATOR, fixed_next, indices_next
from seqweave.errors import ConfigError

# (residues in the source, text written so far) -> the characters allowed next (END: eos)
CharRule = Callable[[int, str], frozenset[str]]
TASK_GRAMMARS = {"ss": "per_residue", "fitness": "number", "helix_starts": "sorted_indices"}


@dataclass
class CharGrammar:
    """A character-level rule over a tokenizer whose tokens it needs are single characters."""

    rule: CharRule
    ids: dict[str, int]  # character -> token id, for every character the rule can allow
    residue_ids: frozenset[int]
    eos_id: int
    chars: dict[int, str] = field(init=False)  # token id -> character

    def __post_init__(self) -> None:
        self.chars = {token: char for char, token in self.ids.items()}

    def allowed(self, source: Sequence[int], generated: Sequence[int]) -> list[int]:
        chars = self.chars
        if any(token not in chars for token in generated):
            return []  # outside the grammar already (a forbidden draft): nothing continues it
        text = "".join(chars[token] for token in generated)
        residues = sum(token in self.residue_ids for token in source)
        return [self.eos_id if c == END else self.ids[c] for c in self.rule(residues, text)]


@dataclass(frozen=True)
class TaskGrammars:
    """The grammar of each row's task, chosen by the task token in its source."""

    by_token: dict[int, CharGrammar]

    def allowed(self, source: Sequence[int], generated: Sequence[int]) -> list[int] | None:
        grammar = next((self.by_token[t] for t in source if t in self.by_token), None)
        return None if grammar is None else grammar.allowed(source, generated)


def _char_grammar(tokenizer, rule: CharRule, chars: str) -> CharGrammar:
    ids, missing = {}, []
    for char in chars:
        token = tokenizer.token_to_id(char)
        if token is None:
            missing.append(char)
        else:
            ids[char] = token
    if missing:
        raise ConfigError(f"the tokenizer has no token for {''.join(missing)!r}, which it needs")
    return CharGrammar(rule, ids, residue_ids(tokenizer), tokenizer.eos_id)


def residue_ids(tokenizer) -> frozenset[int]:
    """Ids of the tokens that stand for one source character (and ``<unk>``)."""
    specials = tokenizer.special_ids - {tokenizer.unk_id}
    ids = {tokenizer.unk_id}
    for token_id in range(tokenizer.vocab_size):
        token = tokenizer.id_to_token(token_id)
        if token is not None and len(token) == 1 and token_id not in specials:
            ids.add(token_id)
    return frozenset(ids)


def per_residue(tokenizer, argument: str = "") -> CharGrammar:
    labels = argument or "HEC"
    allowed = frozenset(labels)

    def rule(residues: int, text: str) -> frozenset[str]:
        return allowed if len(text) < residues else frozenset({END})

    return _char_grammar(tokenizer, rule, labels)


def number(tokenizer, argument: str = "") -> CharGrammar:
    try:
        decimals = int(argument or 3)
    except ValueError:
        raise ConfigError(f"number:DECIMALS needs an integer, got {argument!r}") from None
    if decimals < 0:
        raise ConfigError(f"number:DECIMALS must be >= 0, got {decimals}")
    chars = "".join(sorted(DIGITS)) + "-" + ("." if decimals else "")
    return _char_grammar(tokenizer, lambda residues, text: fixed_next(text, decimals), chars)


def sorted_indices(tokenizer, argument: str = "") -> CharGrammar:
    if argument:
        raise ConfigError(f"sorted_indices takes no argument, got {argument!r}")
    chars = "".join(sorted(DIGITS)) + SEPARATOR
    return _char_grammar(tokenizer, lambda residues, text: indices_next(text, residues), chars)


def tasks(tokenizer, argument: str = "") -> TaskGrammars:
    if argument:
        raise ConfigError(f"tasks takes no argument, got {argument!r}")
    by_token = {}
    for task, grammar in TASK_GRAMMARS.items():
        token = tokenizer.token_to_id(f"<task={task}>")
        if token is not None:
            by_token[token] = GRAMMARS[grammar](tokenizer, "")
    if not by_token:
        names = ", ".join(f"<task={task}>" for task in TASK_GRAMMARS)
        raise ConfigError(f"constraint 'tasks' needs task tokens in the tokenizer ({names})")
    return TaskGrammars(by_token)


GRAMMARS: dict[str, Callable] = {
    "per_residue": per_residue,
    "number": number,
    "sorted_indices": sorted_indices,
    "tasks": tasks,
}


def check_constraint_spec(spec: str) -> None:
    """Refuse an unknown grammar name (``""`` is no constraint)."""
    name = spec.split(":", 1)[0]
    if spec and name not in GRAMMARS:
        raise ConfigError(
            f"unknown decode.constraint {name!r}; valid constraints: {', '.join(GRAMMARS)}"
        )


def build_constraint(spec: str, tokenizer):
    """The constraint ``name[:argument]`` over ``tokenizer``'s tokens; None for ``""``."""
    check_constraint_spec(spec)
    if not spec:
        return None
    name, _, argument = spec.partition(":")
    return GRAMMARS[name](tokenizer, argument)
