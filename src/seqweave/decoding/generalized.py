"""Generalized aggressive decoding (GAD, Ge et al. 2022): a non-autoregressive drafter
proposes a block of k tokens, the autoregressive model verifies it in one ``step``.

Verification is the decode loop's (``loop.advance``): the longest draft prefix
that agrees with the verifier's argmax is kept, plus the verifier's own token
at the first disagreement, so the output is exactly greedy's. The drafter
(``models.nar_drafter``) keeps each row's accepted tokens in its own decoder
state; accepted tokens are final, so after a pass it only queues what was
accepted (the agreeing draft prefix and the verifier's token) to be written
at the start of the next pass, and never rolls back.

GAD++ relaxes the verification (``loop.RelaxedAcceptance``): more tokens are
accepted per pass, and the output is no longer greedy's.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch

from seqweave.decoding.common import pad_batch


class BlockDrafter:
    """Drafts up to ``draft_block`` tokens per live row with a NAR drafter model.

    As with IAD, the rows of a batch share ``tokens_per_pass`` draft tokens (at
    least 2 each): on a CPU a large batch makes the verification pass
    compute-bound, and every rejected draft token then costs real time.
    """

    def __init__(self, nar, sources: Sequence[Sequence[int]], tokens_per_pass: int = 64):
        self.model = nar
        self.tokens_per_pass = tokens_per_pass
        src, lengths = pad_batch(sources, nar.config.pad_id, nar.device)
        self.state = nar.start(nar.encode(src, lengths))
        self.pending: list[list[int]] = [[nar.config.decoder_start_id] for _ in sources]
        self._drafts: list[list[int]] = []

    def propose(
        self, rows: Sequence[int], generated: Sequence[list[int]], room: Sequence[int]
    ) -> list[list[int]]:
        """k tokens per row (fewer where the row's budget ends), cut after the first end
        token."""
        cfg = self.model.config
        share = max(2, self.tokens_per_pass // max(len(rows), 1))
        limits = [min(cfg.draft_block, share, space) for space in room]
        if max(limits, default=0) <= 0:
            self._drafts = [[] for _ in rows]
            return self._drafts
        device = self.state.lengths.device
        width = max(len(p) for p in self.pending)
        feed = torch.full((len(self.pending), width), cfg.pad_id, dtype=torch.long)
        for i, tokens in enumerate(self.pending):
            if tokens:
                feed[i, : len(tokens)] = torch.tensor(tokens, dtype=torch.long)
        n_new = torch.tensor([len(p) for p in self.pending], device=device)
        logits = self.model.draft_cached(self.state, feed.to(device), n_new, max(limits))
        self.pending = [[] for _ in self.pending]
        drafts = []
        for tokens, limit in zip(logits.argmax(-1).tolist(), limits, strict=True):
            draft = tokens[: max(limit, 0)]
            if cfg.eos_id in draft:
                draft = draft[: draft.index(cfg.eos_id) + 1]
            drafts.append(draft)
        self._drafts = drafts
        return drafts

    def observe(self, accepted: Sequence[int], next_tokens: Sequence[int]) -> None:
        """Queue each row's newly accepted tokens for the next pass."""
        rows = zip(self.pending, self._drafts, accepted, next_tokens, strict=True)
        self.pending = [[*p, *d[:a], t] for p, d, a, t in rows]

    def select(self, index: Sequence[int]) -> None:
        rows = torch.tensor(index, dtype=torch.long, device=self.state.lengths.device)
        self.model.reorder(self.state, rows)
        self.pending = [self.pending[i] for i in index]

    def extend(self, other: BlockDrafter) -> None:
        """Take on the rows of another drafter over the same model (new requests joining a
        running batch, between passes)."""
        self.state.extend(other.state)
        self.pending += other.pending
