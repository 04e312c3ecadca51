"""seqweave's own seq2seq model as a next-event predictor, behind ``NextEventPredictor``.

A model trained on prefix -> suffix rows (one ``words`` token per activity; the whole
rest of the case, or only its first event for a next-event classifier) says what comes
next in its first decoder step: the softmax over the vocabulary given the encoded prefix
and the decoder's start token. The distribution kept is that softmax restricted to the
activity tokens and end of sequence, renormalised; end of sequence is ``END``. So the
model can only say ``END`` if its training rows include whole cases with an empty target
(just end of sequence); trained on k = 1 .. n-1 rows only, it learns that a case always
goes on.

The model is trained by ``seqweave.train`` (a config, not ``fit``): this class wraps a
loaded one (``seqweave.load``), scores prefixes in batches, and remembers the answer
for every prefix it has seen, so greedy suffixes cost one new prefix per step.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any, Protocol

import torch

from seqweave.baselines.next_event import END, Distribution

MAX_CACHED = 200_000  # prefixes remembered (greedy suffixes of long cases make many)


class LoadedModel(Protocol):
    """What this predictor reads of a model: ``seqweave.load``'s ``Seq2Seq`` has it (the
    baselines are library code and do not import the API built on them)."""

    network: torch.nn.Module
    tokenizer: Any
    config: Any
    device: torch.device

    def encode_sources(self, texts: Sequence[str], clip: bool = True) -> list[list[int]]: ...


class Seq2SeqNextEvent:
    def __init__(self, model: LoadedModel, batch_size: int = 256):
        self.model, self.batch_size = model, batch_size
        tokenizer, config = model.tokenizer, model.config
        specials = tokenizer.special_ids
        vocabulary = tokenizer.backend.get_vocab(with_added_tokens=True)
        events = sorted((i, t) for t, i in vocabulary.items() if i not in specials)
        self.names = [t for _, t in events] + [END]
        self.ids = torch.tensor([i for i, _ in events] + [config.eos_id])
        self._cache: dict[tuple[str, ...], Distribution] = {}

    def fit(self, traces: Iterable[Sequence[str]]) -> Seq2SeqNextEvent:
        raise TypeError(
            "Seq2SeqNextEvent wraps a trained seqweave model; train it with seqweave.train "
            "on prefix -> suffix rows and pass seqweave.load(DIR)"
        )

    def predict_proba(self, prefix: Sequence[str]) -> Distribution:
        return self.predict_proba_batch([prefix])[0]

    def predict_proba_batch(self, prefixes: Sequence[Sequence[str]]) -> list[Distribution]:
        """The next-event distribution of every prefix, the unseen ones scored
        ``batch_size`` at a time."""
        keys = [tuple(p) for p in prefixes]
        todo = list(dict.fromkeys(k for k in keys if k not in self._cache))
        for first in range(0, len(todo), self.batch_size):
            batch = todo[first : first + self.batch_size]
            for key, row in zip(batch, self._first_step(batch), strict=True):
                if len(self._cache) >= MAX_CACHED:
                    self._cache.clear()
                self._cache[key] = dict(zip(self.names, row, strict=True))
        return [dict(self._cache[k]) for k in keys]

    @torch.no_grad()
    def _first_step(self, prefixes: Sequence[tuple[str, ...]]) -> list[list[float]]:
        """Softmax of the first decoder step over events and end of sequence, per prefix."""
        network, config = self.model.network.eval(), self.model.config
        sources = self.model.encode_sources([" ".join(p) for p in prefixes])
        device = self.model.device
        lengths = torch.tensor([len(s) for s in sources], device=device)
        src = torch.full((len(sources), int(lengths.max())), config.pad_id, device=device)
        for row, ids in enumerate(sources):
            src[row, : len(ids)] = torch.tensor(ids, device=device)
        start = torch.full((len(sources), 1), config.decoder_start_id, device=device)
        logits = network(src, lengths, start)[:, 0, :]  # (B, V)
        return logits[:, self.ids.to(device)].float().softmax(-1).tolist()
