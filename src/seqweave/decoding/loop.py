"""The one decode loop: draft, verify in one ``step``, accept per row, drop finished rows.

Greedy decoding is the case without a draft: each pass feeds the last token
and takes the argmax. With a drafter (input-guided aggressive decoding,
speculative decoding) each row feeds its last token followed by its draft
``d_1 .. d_k``; the model's argmax after every prefix is read off the same
pass, the longest agreeing prefix ``d_1 .. d_m`` is accepted together with the
model's own token at position m + 1, and ``rollback`` forgets the rest. Every
accepted token is therefore the argmax given the tokens before it: the output
is greedy's, in fewer passes. Rows accept different numbers of tokens; the
per-row lengths of the decoder state absorb that.

The loop is a generator of :class:`Event` lists, one list per pass, so the
CLI, the benchmark and the server consume the same stream.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from typing import Protocol

import torch
from torch import Tensor

from seqweave.decoding.common import Generation, RowStats
from seqweave.decoding.constraint import apply_mask
from seqweave.models.state import Memory

Chooser = Callable[[Tensor], Tensor]  # logits (B, V) -> tokens (B,)


def argmax_choice(logits: Tensor) -> Tensor:
    return logits.argmax(dim=-1)


@dataclass(frozen=True)
class RelaxedAcceptance:
    """GAD++ verification (Ge et al. 2022), lossy: a draft token is accepted where it is
    among the verifier's ``top`` best tokens and its log-probability is at most ``gap``
    below the best token's. More tokens are accepted per pass; the output is no longer
    greedy's."""

    top: int
    gap: float

    def __call__(self, logits: Tensor, drafts: Tensor) -> Tensor:
        """logits (B, K, V), drafts (B, K) -> (B, K) bool, True where a draft is accepted."""
        logp = logits.float().log_softmax(dim=-1)
        best = logp.topk(self.top, dim=-1)  # (B, K, top)
        in_top = (best.indices == drafts[..., None]).any(dim=-1)
        close = best.values[..., 0] - logp.gather(-1, drafts[..., None])[..., 0] <= self.gap
        return in_top & close


@dataclass
class Event:
    """Tokens a row accepted in one pass (without the end token).

    ``finish`` is None while the row goes on, ``"stop"`` when it produced the end
    token and ``"length"`` when it ran out of budget (the OpenAI ``finish_reason``).
    The first ``drafted`` tokens are accepted draft tokens; the rest the model wrote.
    """

    row: int
    tokens: list[int]
    finish: str | None = None
    drafted: int = 0


class Drafter(Protocol):
    """Proposes draft continuations for the rows still decoding, in the drafter's order.

    ``propose`` gets, for each live row (in the drafter's order: the order its rows were
    given, less those that left), its row key (its batch index in this drafter), the
    tokens generated so far and the most draft tokens it may use; ``observe`` is told how
    many of each row's draft tokens were accepted and the token the model chose next;
    ``select`` keeps live rows ``index`` (in that order) when others leave; ``extend``
    (optional) takes on another drafter's rows, keyed after its own, when rows join a
    running batch. The session keeps this order even where the target's state does not
    (a slot cache moves rows into holes).
    """

    def propose(
        self, rows: Sequence[int], generated: Sequence[list[int]], room: Sequence[int]
    ) -> list[list[int]]: ...

    def observe(self, accepted: Sequence[int], next_tokens: Sequence[int]) -> None: ...

    def select(self, index: Sequence[int]) -> None: ...


def draft_verify(
    model,
    memory: Memory,
    budgets: Sequence[int],
    stats: list[RowStats],
    drafter: Drafter | None = None,
    choose: Chooser = argmax_choice,
    relaxed: RelaxedAcceptance | None = None,
) -> Iterator[list[Event]]:
    """Decode every row of ``memory``, yielding the events of each pass.

    ``budgets[b]`` is the most tokens row b may generate; ``stats[b]`` is filled in;
    events name rows by b. ``relaxed`` replaces exact verification by GAD++'s (lossy).
    A driver of :class:`~seqweave.decoding.session.DecodeSession`, which keeps the rows.
    """
    from seqweave.decoding.session import DecodeSession, Group  # built on advance, below

    session = DecodeSession(model, relaxed=relaxed)
    group = Group(drafter, None if choose is argmax_choice else choose)
    session.join(memory, budgets, [group], stats)
    while session:
        yield session.run_pass()


def advance(
    model,
    state,
    last: Tensor,
    drafts: list[list[int]],
    choose: Chooser = argmax_choice,
    idle: Tensor | None = None,
    relaxed: RelaxedAcceptance | None = None,
    allowed: Tensor | None = None,
    screen: bool = False,
) -> tuple[list[int], Tensor]:
    """One decoder pass for every row: feed its last token and its draft, accept the
    longest draft prefix that agrees with the model's argmax, roll back the rest.

    Returns the accepted draft count per row and each row's next token (B,): the
    model's argmax after the accepted prefix, or for rows without a draft the
    choice of ``choose`` (sampling rows must not draft). Rows marked in ``idle``
    (B,) bool take part without a real token: their cache does not grow and the
    packed step spends no work on them (the server parks finished rows so). Used
    by the decode loop and by the server's continuous batching alike. ``relaxed``
    accepts draft tokens by GAD++'s rule instead of exact agreement (lossy). ``allowed``
    (B, >= 1 + K, V) bool (``constraint.draft_masks``) puts disallowed tokens at -inf before
    the argmax, the acceptance and the chooser read the logits (constrained decoding).
    With ``screen`` (``decode.screen``), a pass whose logits only the argmax reads (exact
    acceptance, argmax chooser, no constraint) asks the model for its argmax alone
    (``step_argmax``, the same tokens for less work; models/argmax_screen.py).
    """
    B = len(drafts)
    K = max((len(d) for d in drafts), default=0)
    device = last.device
    real = None if idle is None else (~idle).long()
    argmax_only = screen and choose is argmax_choice and relaxed is None and allowed is None
    if K == 0:
        if argmax_only:
            return [0] * B, step_argmax(model, state, last[:, None], real)[:, 0]
        logits = apply_mask(model.step(state, last[:, None], real), allowed)  # (B, 1, V)
        return [0] * B, choose(logits[:, 0])
    padded = torch.zeros(B, K, dtype=torch.long)
    for i, d in enumerate(drafts):
        if d:
            padded[i, : len(d)] = torch.as_tensor(d, dtype=torch.long)
    draft_lens = torch.tensor([len(d) for d in drafts], dtype=torch.long, device=device)
    padded = padded.to(device)
    tokens = torch.cat([last[:, None], padded], dim=1)  # (B, 1 + K)
    n_new = draft_lens + 1 if real is None else (draft_lens + 1) * real
    logits, predicted = _verify(model, state, tokens, n_new, allowed, argmax_only)
    valid = torch.arange(K, device=device)[None, :] < draft_lens[:, None]
    if relaxed is None:
        agree = (predicted[:, :K] == padded) & valid  # (B, K)
    else:
        agree = relaxed(logits[:, :K], padded) & valid
    accepted = agree.long().cumprod(dim=1).sum(dim=1)  # (B,) longest agreeing prefix
    model.rollback(state, state.lengths - (n_new - 1 - accepted).clamp(min=0))
    next_tokens = predicted.gather(1, accepted[:, None])[:, 0]
    if choose is not argmax_choice:  # rows without a draft take the chooser's token
        next_tokens = torch.where(draft_lens == 0, choose(logits[:, 0]), next_tokens)
    return accepted.tolist(), next_tokens


def _verify(model, state, tokens, n_new, allowed, argmax_only: bool):
    """One pass over tokens (B, 1 + K): (logits (B, 1 + K, V) or None, argmax (B, 1 + K))."""
    if argmax_only:
        return None, step_argmax(model, state, tokens, n_new)
    logits = apply_mask(model.step(state, tokens, n_new), allowed)
    return logits, logits.argmax(dim=-1)


def step_argmax(model, state, tokens: Tensor, n_new: Tensor | None) -> Tensor:
    """The argmax (B, K) of ``model.step``'s logits: the model's own ``step_argmax`` where it
    has one (the encoder-decoder), else the argmax of ``step``."""
    own = getattr(model, "step_argmax", None)
    if own is not None:
        return own(state, tokens, n_new)
    return model.step(state, tokens, n_new).argmax(dim=-1)


def collect(events: Iterator[list[Event]], stats: list[RowStats]) -> list[Generation]:
    """Run a decode stream to the end and gather one :class:`Generation` per row."""
    outputs = [Generation(tokens=[], stats=s) for s in stats]
    for batch in events:
        for event in batch:
            outputs[event.row].tokens.extend(event.tokens)
            if event.finish is not None:
                outputs[event.row].finished = event.finish == "stop"
    return outputs
