"""Batched beam search over the decoder-state API.

Each batch item keeps ``beam_size`` live hypotheses as rows of one decoder
state; ``reorder`` gathers the cache rows of the surviving beams after every
step, and items that are done leave the state. Finished hypotheses are ranked
by ``sum log p / length ** length_penalty`` (length counts the end token).

Stopping follows the common convention: with ``early_stopping`` an item is
done once it holds ``beam_size`` finished hypotheses; without it, once no live
beam can still beat the worst finished one at the current length.

``beam_search`` runs a batch of items on its own (the offline path);
``BeamGroup`` is one item's search as ``beam_size`` rows of a ``DecodeSession``,
sharing its passes with row-wise decoders. Both rank and stop through the same
helpers, so they return the same hypotheses.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import torch
from torch import Tensor

from seqweave.decoding.common import Generation, RowStats
from seqweave.decoding.constraint import Constraint, allowed_row
from seqweave.models.state import Memory


@dataclass
class _Item:
    """Finished hypotheses of one batch item: (normalised score, tokens, ended by eos)."""

    finished: list[tuple[float, list[int], bool]] = field(default_factory=list)
    done: bool = False

    def add(self, score: float, tokens: list[int], ended: bool, beam_size: int) -> None:
        self.finished.append((score, tokens, ended))
        self.finished.sort(key=lambda h: -h[0])
        del self.finished[beam_size:]

    def worst(self) -> float:
        return self.finished[-1][0]


@dataclass(frozen=True)
class _Rules:
    """What every item's bookkeeping needs: beam width, end token, ranking and stopping."""

    width: int
    eos_id: int
    length_penalty: float
    early_stopping: bool

    def normalise(self, score: float, step: int) -> float:
        return score / step**self.length_penalty


def beam_search(
    model,
    memory: Memory,
    budgets: Sequence[int],
    stats: list[RowStats],
    beam_size: int = 4,
    length_penalty: float = 1.0,
    early_stopping: bool = True,
    constraint: Constraint | None = None,
    sources: Sequence[Sequence[int]] = (),
) -> list[Generation]:
    """Decode every row of ``memory`` with beam search; returns the best hypothesis per row.
    ``constraint`` (with the rows' framed ``sources``) puts every beam's disallowed tokens at
    -inf before scoring, so no hypothesis leaves the grammar."""
    if beam_size < 1:
        raise ValueError(f"beam_size must be >= 1, got {beam_size}")
    cfg = model.config
    rules = _Rules(beam_size, cfg.eos_id, length_penalty, early_stopping)
    device = memory.lengths.device
    W = beam_size
    items = [_Item() for _ in budgets]
    alive = [b for b in range(len(budgets)) if budgets[b] > 0]
    state = model.start(memory)
    model.reorder(state, torch.tensor(alive, dtype=torch.long, device=device).repeat_interleave(W))
    scores = torch.full((len(alive), W), float("-inf"), device=device)
    scores[:, 0] = 0.0  # all beams start identical: only the first may expand
    history = torch.empty(len(alive) * W, 0, dtype=torch.long, device=device)
    last = torch.full((len(alive) * W,), cfg.decoder_start_id, dtype=torch.long, device=device)
    step = 0
    while alive:
        logits = model.step(state, last[:, None])[:, 0]  # (N * W, V)
        if constraint is not None:
            logits = _constrain(logits, constraint, sources, alive, scores, history, cfg.eos_id)
        step += 1
        for b in alive:
            stats[b].passes += 1
        scores, origin, token = _next_beams(items, alive, scores, logits, history, step, rules)
        flat = (torch.arange(len(alive), device=device)[:, None] * W + origin).view(-1)
        history = torch.cat([history[flat], token.view(-1, 1)], dim=1)  # (N * W, step)
        for n, b in enumerate(alive):
            if step >= budgets[b]:
                _finish_at_length(items[b], scores[n], history[n * W : (n + 1) * W], step, rules)
        keep = [n for n, b in enumerate(alive) if not items[b].done]
        if len(keep) < len(alive):
            rows = torch.tensor(keep, dtype=torch.long, device=device)
            flat_keep = (rows[:, None] * W + torch.arange(W, device=device)[None, :]).view(-1)
            flat, history = flat[flat_keep], history[flat_keep]
            scores, token = scores[rows], token[rows]
            alive = [alive[n] for n in keep]
        if alive:
            model.reorder(state, flat)
        last = token.view(-1)
    return [_best(item) for item in items]


class BeamGroup:
    """One request's beam search as ``width`` rows of a ``DecodeSession`` (a group).

    The session calls the group as the chooser of its rows: with the rows' logits of a
    pass (W, V) it expands the beams and returns each new beam's token (W,); ``origin``
    (W,) then says which row each new beam continues, for the session to gather the
    group's cache rows. ``done`` once the item is finished; ``result()`` is the best
    hypothesis, as ``beam_search`` would return it for this source alone.
    """

    def __init__(
        self,
        width: int,
        budget: int,
        eos_id: int,
        length_penalty: float = 1.0,
        early_stopping: bool = True,
        constraint: Constraint | None = None,
        source: Sequence[int] = (),
    ):
        if width < 1:
            raise ValueError(f"beam_size must be >= 1, got {width}")
        self.rules = _Rules(width, eos_id, length_penalty, early_stopping)
        self.budget = budget
        self.stats = RowStats()
        self.constraint, self.source = constraint, source
        self.origin: Tensor | None = None  # (W,) the row each beam of the last pass continues
        self._item = _Item()
        self._scores: Tensor | None = None  # (1, W)
        self._history: Tensor | None = None  # (W, steps)
        self._step = 0

    @property
    def width(self) -> int:
        return self.rules.width

    @property
    def done(self) -> bool:
        return self._item.done

    def __call__(self, logits: Tensor) -> Tensor:
        """logits (W, V) of the group's rows, in beam order -> the new beams' tokens (W,)."""
        W = self.width
        if self._scores is None:  # all beams start identical: only the first may expand
            self._scores = torch.full((1, W), float("-inf"), device=logits.device)
            self._scores[0, 0] = 0.0
            self._history = torch.empty(W, 0, dtype=torch.long, device=logits.device)
        if self.constraint is not None:
            logits = _constrain(
                logits,
                self.constraint,
                [self.source],
                [0],
                self._scores,
                self._history,
                self.rules.eos_id,
            )
        self._step += 1
        self.stats.passes += 1
        items, step = [self._item], self._step
        scores, origin, token = _next_beams(
            items, [0], self._scores, logits, self._history, step, self.rules
        )
        self.origin = origin.view(-1)
        self._history = torch.cat([self._history[self.origin], token.view(-1, 1)], dim=1)
        self._scores = scores
        if step >= self.budget:
            _finish_at_length(self._item, scores[0], self._history, step, self.rules)
        return token.view(-1)

    def result(self) -> Generation:
        output = _best(self._item)
        output.stats = self.stats
        return output


def _constrain(
    logits: Tensor,
    constraint: Constraint,
    sources: Sequence[Sequence[int]],
    alive: list[int],
    scores: Tensor,
    history: Tensor,
    eos_id: int,
) -> Tensor:
    """logits (N * W, V) with each live beam's disallowed tokens at -inf (missing beams,
    scored -inf, are left as they are)."""
    W = scores.shape[1]
    allowed = torch.ones_like(logits, dtype=torch.bool)
    live = (scores > float("-inf")).view(-1).tolist()
    for row, tokens in enumerate(history.tolist()):
        if live[row]:
            source = sources[alive[row // W]]
            allowed[row] = allowed_row(constraint, source, tokens, logits.shape[-1], eos_id)
    return logits.masked_fill(~allowed, float("-inf"))


def _next_beams(
    items: list[_Item],
    alive: list[int],
    scores: Tensor,
    logits: Tensor,
    history: Tensor,
    step: int,
    rules: _Rules,
) -> tuple[Tensor, Tensor, Tensor]:
    """Expand every live beam by every token: per item, the best 2W continuations are ranked;
    those among the first W that end become finished hypotheses, and the first W that do not
    end are the new beams. Returns their scores (N, W), the beam each came from (N, W) and
    its token (N, W); missing beams score -inf."""
    N, W = scores.shape
    V = logits.shape[-1]
    logp = torch.log_softmax(logits.float(), dim=-1)  # (N * W, V)
    candidates = (scores[:, :, None] + logp.view(N, W, V)).view(N, W * V)
    top_scores, top_index = candidates.topk(2 * W, dim=1)  # (N, 2W)
    origin, token = top_index // V, top_index % V
    next_scores = torch.full_like(scores, float("-inf"))
    next_origin = torch.zeros_like(origin[:, :W])
    next_token = torch.full_like(origin[:, :W], rules.eos_id)
    top_s, top_o, top_t = top_scores.tolist(), origin.tolist(), token.tolist()
    for n, b in enumerate(alive):
        width = 0
        for rank, (s, o, t) in enumerate(zip(top_s[n], top_o[n], top_t[n], strict=True)):
            if t == rules.eos_id:
                if rank < W and s > float("-inf"):
                    tokens = history[n * W + o].tolist()
                    items[b].add(rules.normalise(s, step), tokens, True, W)
                continue
            next_scores[n, width], next_origin[n, width], next_token[n, width] = s, o, t
            width += 1
            if width == W:
                break
        _check_done(items[b], next_scores[n], step, rules)
    return next_scores, next_origin, next_token


def _check_done(item: _Item, beam_scores: Tensor, step: int, rules: _Rules) -> None:
    if len(item.finished) < rules.width:
        return
    if rules.early_stopping:
        item.done = True
        return
    best_live = rules.normalise(float(beam_scores.max()), step)
    if item.worst() >= best_live:
        item.done = True


def _finish_at_length(
    item: _Item, beam_scores: Tensor, beam_history: Tensor, step: int, rules: _Rules
) -> None:
    """The length limit ends an item: its live beams count as (unended) hypotheses."""
    item.done = True
    for w in range(rules.width):
        score = float(beam_scores[w])
        if score > float("-inf"):
            item.add(rules.normalise(score, step), beam_history[w].tolist(), False, rules.width)


def _best(item: _Item) -> Generation:
    if not item.finished:
        return Generation(tokens=[], finished=False, score=None)
    score, tokens, ended = item.finished[0]
    return Generation(tokens=tokens, finished=ended, score=score)
