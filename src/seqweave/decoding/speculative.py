"""Speculative decoding with a draft model (Leviathan et al. 2023; Chen et al. 2023),
greedy verification: lossless.

A smaller seqweave model with the same tokenizer proposes ``k`` tokens per row
by its own greedy decoding; the target verifies them in one ``step`` (in
``loop.draft_verify``). The draft model keeps its own decoder state: after
each verification it rolls back to the accepted prefix, and the tokens it has
not yet seen (the target's correction, and the last draft token when every
draft was accepted) are fed at the start of the next round, ragged per row.

``k`` adapts per row: it grows by 2 when a whole draft is accepted and
shrinks by 1 otherwise (the rule Hugging Face's assisted decoding uses).

It pays off when a draft pass is much cheaper than a target pass and the
draft model agrees with the target often; a draft model that is nearly as
slow as the target, or one that disagrees early, makes it slower than greedy.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch

from seqweave.models.state import Memory


class ModelDrafter:
    def __init__(
        self,
        draft_model,
        sources: Sequence[Sequence[int]],
        k: int = 4,
        max_k: int = 16,
        adaptive: bool = True,
    ):
        if k < 1 or max_k < k:
            raise ValueError(f"need 1 <= k <= max_k, got k={k}, max_k={max_k}")
        from seqweave.decoding.common import pad_batch

        self.model = draft_model
        self.max_k = max_k
        self.adaptive = adaptive
        src, lengths = pad_batch(sources, draft_model.config.pad_id, draft_model.device)
        memory: Memory = draft_model.encode(src, lengths)
        self.state = draft_model.start(memory)
        start = draft_model.config.decoder_start_id
        self.pending: list[list[int]] = [[start] for _ in sources]  # per live row, state order
        self.k: list[int] = [k] * len(sources)
        self._last: list[list[int]] = []

    def propose(
        self, rows: Sequence[int], generated: Sequence[list[int]], room: Sequence[int]
    ) -> list[list[int]]:
        """Draft min(k, room) tokens per live row with the draft model's greedy decoding.

        Every row is stepped ``steps = max k`` times; a row's tokens past its own k
        are still fed (they are its greedy continuation) and rolled back in ``observe``.
        """
        limits = [min(k, space) for k, space in zip(self.k, room, strict=True)]
        self._steps = max(limits, default=0)
        self._fed = [len(p) for p in self.pending]
        self._last = [[] for _ in limits]
        if self._steps == 0:
            return self._last
        device = self.state.lengths.device
        feed = torch.zeros(len(self.pending), max(self._fed), dtype=torch.long)
        for i, tokens in enumerate(self.pending):
            feed[i, : len(tokens)] = torch.tensor(tokens)
        fed = torch.tensor(self._fed, device=device)
        logits = self.model.step(self.state, feed.to(device), fed)  # (B, width, V)
        token = logits[torch.arange(len(limits), device=device), fed - 1].argmax(-1)  # (B,)
        eos = self.model.config.eos_id
        for step in range(self._steps):
            for draft, limit, value in zip(self._last, limits, token.tolist(), strict=True):
                if len(draft) < limit and (not draft or draft[-1] != eos):
                    draft.append(value)
            if step + 1 < self._steps:
                token = self.model.step(self.state, token[:, None])[:, 0].argmax(-1)
        return self._last

    def observe(self, accepted: Sequence[int], next_tokens: Sequence[int]) -> None:
        """Roll the draft cache back to the accepted prefix; queue what it has not seen."""
        if self._steps == 0:  # nothing was fed: the target's token joins the queue
            self.pending = [[*p, t] for p, t in zip(self.pending, next_tokens, strict=True)]
            return
        fed_drafts = self._steps - 1  # draft tokens fed back into the draft model
        keep, pending = [], []
        lengths = self.state.lengths.tolist()
        rows = zip(self._last, accepted, next_tokens, lengths, strict=True)
        for i, (draft, taken, token, length) in enumerate(rows):
            in_cache = min(taken, fed_drafts)
            keep.append(length - fed_drafts + in_cache)
            pending.append([*draft[in_cache:taken], token])
            if self.adaptive:
                full = bool(draft) and taken == len(draft)
                self.k[i] = min(self.max_k, self.k[i] + 2) if full else max(1, self.k[i] - 1)
        self.model.rollback(self.state, torch.tensor(keep, device=self.state.lengths.device))
        self.pending = pending

    def extend(self, other: ModelDrafter) -> None:
        """Take on the rows of another drafter over the same draft model (new requests
        joining a running batch)."""
        self.state.extend(other.state)
        self.pending += other.pending
        self.k += other.k

    def select(self, index: Sequence[int]) -> None:
        self.model.reorder(
            self.state, torch.tensor(index, dtype=torch.long, device=self.state.lengths.device)
        )
        self.pending = [self.pending[i] for i in index]
        self.k = [self.k[i] for i in index]
