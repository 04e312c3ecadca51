"""LSTM and GRU next-event classifiers, the shape of Tax et al. 2017 (activities only).

One recurrent layer reads ``START`` and the events of a trace, and at every position a
linear layer scores the next event over the training events, ``END`` and nothing else;
training is cross-entropy over every position of every trace (so every prefix of a case
counts once, its end included). ``predict_proba`` runs the network one event at a time and
keeps the state of every prefix it has seen, so a prefix one event longer than a known one,
as in greedy suffixes, costs one step. An event never seen in training reads as ``UNKNOWN``
(an untrained embedding).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

import torch
from torch import nn

from seqweave.baselines.next_event import END, Distribution

PAD, START, UNKNOWN = 0, 1, 2
MAX_CACHED = 100_000  # prefix states kept (greedy suffixes of long cases make many)


class _Network(nn.Module):
    def __init__(self, inputs: int, outputs: int, hidden: int, cell: str):
        super().__init__()
        self.embed = nn.Embedding(inputs, hidden, padding_idx=PAD)
        self.rnn = {"lstm": nn.LSTM, "gru": nn.GRU}[cell](hidden, hidden, batch_first=True)
        self.out = nn.Linear(hidden, outputs)

    def forward(self, ids: torch.Tensor, state=None):
        hidden, state = self.rnn(self.embed(ids), state)  # (B, T, H)
        return self.out(hidden), state  # (B, T, V)


class RecurrentPredictor:
    def __init__(
        self,
        cell: str = "lstm",
        hidden: int = 64,
        epochs: int = 10,
        batch_size: int = 64,
        lr: float = 5e-3,
        seed: int = 1,
    ):
        if cell not in ("lstm", "gru"):
            raise ValueError(f"cell must be 'lstm' or 'gru', got {cell!r}")
        self.cell, self.hidden, self.epochs = cell, hidden, epochs
        self.batch_size, self.lr, self.seed = batch_size, lr, seed

    def fit(self, traces: Iterable[Sequence[str]]) -> RecurrentPredictor:
        traces = [list(t) for t in traces]
        self.outputs = [*sorted({e for t in traces for e in t}), END]
        self.input_ids = {e: i + 3 for i, e in enumerate(self.outputs[:-1])}
        target_ids = {e: i for i, e in enumerate(self.outputs)}
        generator = torch.Generator().manual_seed(self.seed)
        torch.manual_seed(self.seed)
        self.network = _Network(len(self.input_ids) + 3, len(self.outputs), self.hidden, self.cell)
        optimizer = torch.optim.Adam(self.network.parameters(), lr=self.lr)
        updates = self.epochs * -(-len(traces) // self.batch_size)
        # linear decay to 0: the last updates average out the noise of the early ones
        schedule = torch.optim.lr_scheduler.LambdaLR(optimizer, lambda step: 1 - step / updates)
        self.network.train()
        for _ in range(self.epochs):
            order = torch.randperm(len(traces), generator=generator).tolist()
            for first in range(0, len(order), self.batch_size):
                batch = [traces[i] for i in order[first : first + self.batch_size]]
                ids, targets = self._batch(batch, target_ids)
                logits, _ = self.network(ids)
                loss = nn.functional.cross_entropy(
                    logits.flatten(0, 1), targets.flatten(), ignore_index=-100
                )
                optimizer.zero_grad()
                loss.backward()
                nn.utils.clip_grad_norm_(self.network.parameters(), 1.0)
                optimizer.step()
                schedule.step()
        self.network.eval()
        self._states: dict[tuple, tuple] = {}
        return self

    def _batch(self, traces: list[list[str]], target_ids: dict) -> tuple[torch.Tensor, ...]:
        length = max(len(t) for t in traces) + 1
        ids = torch.full((len(traces), length), PAD)  # (B, T)
        targets = torch.full((len(traces), length), -100)  # (B, T)
        for row, trace in enumerate(traces):
            ids[row, : len(trace) + 1] = torch.tensor([START] + [self.input_ids[e] for e in trace])
            targets[row, : len(trace) + 1] = torch.tensor(
                [target_ids[e] for e in trace] + [target_ids[END]]
            )
        return ids, targets

    def predict_proba(self, prefix: Sequence[str]) -> Distribution:
        probabilities = torch.softmax(self._state(tuple(prefix))[0], dim=-1).tolist()
        return dict(zip(self.outputs, probabilities, strict=True))

    @torch.no_grad()
    def _state(self, prefix: tuple[str, ...]) -> tuple:
        """(logits after the prefix, recurrent state), computed from the prefix one shorter."""
        known = self._states.get(prefix)
        if known is not None:
            return known
        if len(self._states) >= MAX_CACHED:  # bounded memory; recomputed on demand
            self._states.clear()
        if prefix:
            state = self._state(prefix[:-1])[1]
            token = self.input_ids.get(prefix[-1], UNKNOWN)
        else:
            state, token = None, START
        logits, state = self.network(torch.tensor([[token]]), state)
        self._states[prefix] = (logits[0, -1], state)
        return self._states[prefix]
