"""Batched beam search over the decoder-state API.

Each batch item keeps ``beam_size`` live hypotheses as rows of one decoder
state; ``reorder`` gathers the cache rows of the surviving beams after every
step, and items that are done leave the state. Finished hypotheses are ranked
by ``sum log p / length ** length_penalty`` (length counts the end token).

Stopping follows the common convention: with ``early_stopping`` an item is
done once it holds ``beam_size`` finished hypotheses; without it, once no live
beam can still beat the worst finished one at the current length.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import torch

from seqweave.decoding.common import Generation, RowStats
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


def beam_search(
    model,
    memory: Memory,
    budgets: Sequence[int],
    stats: list[RowStats],
    beam_size: int = 4,
    length_penalty: float = 1.0,
    early_stopping: bool = True,
) -> list[Generation]:
    """Decode every row of ``memory`` with beam search; returns the best hypothesis per row."""
    if beam_size < 1:
        raise ValueError(f"beam_size must be >= 1, got {beam_size}")
    cfg = model.config
    device = memory.lengths.device
    B, W = len(budgets), beam_size
    items = [_Item() for _ in range(B)]
    alive = [b for b in range(B) if budgets[b] > 0]
    state = model.start(memory)
    model.reorder(state, torch.tensor(alive, device=device).repeat_interleave(W))
    scores = torch.full((len(alive), W), float("-inf"), device=device)
    scores[:, 0] = 0.0  # all beams start identical: only the first may expand
    history = torch.empty(len(alive) * W, 0, dtype=torch.long, device=device)
    last = torch.full((len(alive) * W,), cfg.decoder_start_id, dtype=torch.long, device=device)
    step = 0
    while alive:
        logits = model.step(state, last[:, None])[:, 0]  # (N * W, V)
        V = logits.shape[-1]
        logp = torch.log_softmax(logits.float(), dim=-1)
        candidates = (scores[:, :, None] + logp.view(len(alive), W, V)).view(len(alive), W * V)
        top_scores, top_index = candidates.topk(2 * W, dim=1)  # (N, 2W)
        origin, token = top_index // V, top_index % V
        step += 1
        next_scores = torch.full_like(scores, float("-inf"))
        next_origin = torch.zeros_like(origin[:, :W])
        next_token = torch.full_like(origin[:, :W], cfg.eos_id)
        top_s, top_o, top_t = top_scores.tolist(), origin.tolist(), token.tolist()
        for n, b in enumerate(alive):
            stats[b].passes += 1
            width = 0
            for rank in range(2 * W):
                s, o, t = top_s[n][rank], top_o[n][rank], top_t[n][rank]
                if t == cfg.eos_id:
                    if rank < W and s > float("-inf"):
                        tokens = history[n * W + o].tolist()
                        items[b].add(s / step**length_penalty, tokens, True, W)
                    continue
                next_scores[n, width], next_origin[n, width], next_token[n, width] = s, o, t
                width += 1
                if width == W:
                    break
            _check_done(
                items[b], next_scores[n], step, budgets[b], W, length_penalty, early_stopping
            )
            if step >= budgets[b] and not items[b].done:
                items[b].done = True
        flat = (torch.arange(len(alive), device=device)[:, None] * W + next_origin).view(-1)
        history = torch.cat([history[flat], next_token.view(-1, 1)], dim=1)
        for n, b in enumerate(alive):
            if items[b].done and step >= budgets[b]:
                _finish_at_length(
                    items[b], next_scores[n], history[n * W : (n + 1) * W], step, W, length_penalty
                )
        keep = [n for n, b in enumerate(alive) if not items[b].done]
        if len(keep) < len(alive):
            rows = torch.tensor(keep, dtype=torch.long, device=device)
            flat_keep = (rows[:, None] * W + torch.arange(W, device=device)[None, :]).view(-1)
            flat = flat[flat_keep]
            history = history[flat_keep]
            next_scores, next_token = next_scores[rows], next_token[rows]
            alive = [alive[n] for n in keep]
        if alive:
            model.reorder(state, flat)
        scores, last = next_scores, next_token.view(-1)
    return [_best(item) for item in items]


def _check_done(item, beam_scores, step, budget, W, length_penalty, early_stopping) -> None:
    if len(item.finished) < W:
        return
    if early_stopping:
        item.done = True
        return
    best_live = float(beam_scores.max()) / step**length_penalty
    if item.worst() >= best_live:
        item.done = True


def _finish_at_length(item, beam_scores, beam_history, step, W, length_penalty) -> None:
    """The length limit ends an item: its live beams count as (unended) hypotheses."""
    for w in range(W):
        score = float(beam_scores[w])
        if score > float("-inf"):
            item.add(score / step**length_penalty, beam_history[w].tolist(), False, W)


def _best(item: _Item) -> Generation:
    if not item.finished:
        return Generation(tokens=[], finished=False, score=None)
    score, tokens, ended = item.finished[0]
    return Generation(tokens=tokens, finished=ended, score=score)
