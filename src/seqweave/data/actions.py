"""Edit actions between a source and a target, for the sequence-to-action model (S2A).

Li et al. 2022 ("Sequence-to-Action: Grammatical Error Correction with Action
Guided Sequence Generation") decode with a pointer into the source and one
action per output step: COPY the source token under the pointer and advance,
SKIP it (a deletion) and advance, or GENerate a vocabulary token without
advancing. Substitutions are a SKIP and a GEN; insertions are GENs.

How seqweave writes actions as tokens: the decoder emits one token per step,
so a SKIP is the special token ``<skip>`` (a tokenizer task token, which
``Tokenizer.decode`` drops from the text), a COPY is the source token itself
and a GEN is the generated token. The pointer is then a pure function of the
emitted tokens (:func:`actions_of_tokens`): it advances on ``<skip>`` and on a
token equal to the source token under it. A GEN therefore never emits the
token under the pointer (that would be a COPY), and the alignment below never
asks for one: wherever the target token equals the source token under the
pointer, it copies, which an optimal alignment may always do (matching equal
heads never lengthens an insert/delete edit script).

The gold actions are the shortest such script (fewest SKIPs plus GENs, i.e.
the token-level Levenshtein alignment without substitutions); between equally
short scripts a SKIP comes before a GEN, so a substitution reads ``<skip> new``.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

SKIP_TOKEN = "<skip>"
SKIP, COPY, GEN = 0, 1, 2  # action ids, in the order of the model's action head
ACTION_NAMES = ("SKIP", "COPY", "GEN")


@dataclass(frozen=True)
class Action:
    """One output step: ``kind`` is SKIP, COPY or GEN; ``token`` is the generated id (GEN)."""

    kind: int
    token: int | None = None

    def __repr__(self) -> str:
        name = ACTION_NAMES[self.kind]
        return f"{name}({self.token})" if self.kind == GEN else name


def align(source: Sequence[int], target: Sequence[int]) -> list[Action]:
    """The shortest action script that turns ``source`` into ``target``.

    The common prefix is copied outright, and so is the common suffix where that
    keeps the script shortest (it may not: the GENs at the end of the edited
    middle happen with the pointer on the suffix's first token, and must not
    emit it); the quadratic search then runs on the edited middle alone, which
    in error correction is short.
    """
    source, target = list(source), list(target)
    head = 0
    while head < min(len(source), len(target)) and source[head] == target[head]:
        head += 1
    tail = 0
    while tail < min(len(source), len(target)) - head and source[-1 - tail] == target[-1 - tail]:
        tail += 1
    source, target = source[head:], target[head:]
    shortest = len(source) + len(target) - 2 * _common_subsequence(source, target)
    for cut in range(tail, -1, -1):  # at cut 0 the search is exact, so the loop returns
        following = source[len(source) - cut] if cut else None
        middle = _align_middle(source[: len(source) - cut], target[: len(target) - cut], following)
        if middle is not None and sum(a.kind != COPY for a in middle) == shortest:
            return [Action(COPY)] * head + middle + [Action(COPY)] * cut
    raise AssertionError("unreachable: the uncut search is exact")


def _common_subsequence(a: list[int], b: list[int]) -> int:
    """Length of the longest common subsequence of ``a`` and ``b``."""
    previous = [0] * (len(b) + 1)
    for x in a:
        row = [0]
        for j, y in enumerate(b):
            row.append(previous[j] + 1 if x == y else max(previous[j + 1], row[j]))
        previous = row
    return previous[-1]


INFEASIBLE = 1 << 30


def _align_middle(
    source: list[int], target: list[int], following: int | None
) -> list[Action] | None:
    """Dynamic programme over (source position i, target position j): cost[i][j] is the
    fewest SKIPs + GENs that finish from there; equal tokens must be copied, and once
    the source is used up the pointer rests on ``following``, which no GEN may emit.
    None when no script exists."""
    n, m = len(source), len(target)
    cost = [[0] * (m + 1) for _ in range(n + 1)]
    for j in range(m, -1, -1):
        blocked = j < m and (target[j] == following or cost[n][j + 1] >= INFEASIBLE)
        cost[n][j] = INFEASIBLE if blocked else m - j
    for i in range(n - 1, -1, -1):
        cost[i][m] = n - i
        for j in range(m - 1, -1, -1):
            if source[i] == target[j]:
                cost[i][j] = min(cost[i + 1][j + 1], 1 + cost[i + 1][j])
            else:
                cost[i][j] = 1 + min(cost[i + 1][j], cost[i][j + 1])
    if cost[0][0] >= INFEASIBLE:
        return None
    actions, i, j = [], 0, 0
    while i < n or j < m:
        if i < n and j < m and source[i] == target[j] and cost[i][j] == cost[i + 1][j + 1]:
            actions.append(Action(COPY))
            i, j = i + 1, j + 1
        elif i < n and cost[i][j] == 1 + cost[i + 1][j]:
            actions.append(Action(SKIP))
            i += 1
        else:
            actions.append(Action(GEN, target[j]))
            j += 1
    return actions


def replay(source: Sequence[int], actions: Sequence[Action]) -> list[int]:
    """The target an action script writes from ``source``.

    Raises:
        ValueError: a COPY or SKIP with the pointer past the end of the source, or a GEN of
            the token under the pointer (the pointer rule reads that as a COPY).
    """
    out, pointer = [], 0
    for step, action in enumerate(actions):
        under = source[pointer] if pointer < len(source) else None
        if action.kind == GEN:
            if action.token == under:
                raise ValueError(f"step {step}: GEN({action.token}) is the token under the pointer")
            out.append(action.token)
            continue
        if under is None:
            raise ValueError(f"step {step}: {action!r} with the pointer past the source's end")
        if action.kind == COPY:
            out.append(under)
        pointer += 1
    return out


def action_tokens(source: Sequence[int], actions: Sequence[Action], skip_id: int) -> list[int]:
    """The decoder's token sequence of an action script: ``<skip>`` for SKIP, the source
    token for COPY, the generated token for GEN."""
    tokens, pointer = [], 0
    for action in actions:
        if action.kind == SKIP:
            tokens.append(skip_id)
            pointer += 1
        elif action.kind == COPY:
            tokens.append(source[pointer])
            pointer += 1
        else:
            tokens.append(action.token)
    return tokens


def actions_of_tokens(source: Sequence[int], tokens: Sequence[int], skip_id: int) -> list[Action]:
    """Read emitted tokens back as actions by the pointer rule the model uses: ``<skip>``
    skips (a no-op past the source's end), the token under the pointer copies, any other
    token is generated."""
    actions, pointer = [], 0
    for token in tokens:
        if token == skip_id:
            actions.append(Action(SKIP))
            pointer = min(pointer + 1, len(source))
        elif pointer < len(source) and token == source[pointer]:
            actions.append(Action(COPY))
            pointer += 1
        else:
            actions.append(Action(GEN, token))
    return actions


def strip_skips(tokens: Sequence[int], skip_id: int) -> list[int]:
    """The text tokens of an output: its ``<skip>`` tokens removed."""
    return [t for t in tokens if t != skip_id]


def skip_target(
    source: Sequence[int], target: Sequence[int], eos_id: int, skip_id: int
) -> list[int]:
    """A training target with ``<skip>`` tokens where the gold script deletes.

    ``source`` is framed (it ends with the end token), ``target`` is not; the two
    are aligned with the end token on both, so the end token is copied, and the
    result is returned without it (the batch collation appends it)."""
    if not source or source[-1] != eos_id:
        raise ValueError(f"the source must end with the end token {eos_id}: {list(source)}")
    # align copies the common suffix, so the script ends by copying the end token
    return action_tokens(source, align(source, [*target, eos_id]), skip_id)[:-1]
