"""Log parsers behind one small interface: ``parse(messages) -> one template each``.

- ``Seq2SeqParser``: a trained seqweave model maps a message to its template; a
  ``TemplateCache`` in front answers every message that fits a template already found,
  so the model sees only the messages that miss (and input-guided aggressive decoding,
  ``decoder="iad"``, drafts each template from its message, which it mostly copies).
- ``CopyParser``: the template is the message itself (no variable found): the floor a
  seq2seq parser starts from, since copying is what an untrained copy-biased model does.
- Drain lives in ``seqweave.baselines.drain`` with the same ``parse``.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol

from seqweave.logparse.cache import TemplateCache
from seqweave.logparse.templates import whole_words


class Parser(Protocol):
    def parse(self, messages: Sequence[str]) -> list[str]: ...


class Generator(Protocol):
    """What the parser needs of a model: ``seqweave.load(DIR)`` gives one."""

    def generate(self, texts: Sequence[str], **overrides) -> list[str]: ...


class CopyParser:
    def parse(self, messages: Sequence[str]) -> list[str]:
        return list(messages)


class Seq2SeqParser:
    """Templates from a model, with a template cache in front (``cache=None``: none).

    Messages are read in order; a message that misses the cache waits in a batch of up
    to ``batch_size`` distinct messages, which is decoded at once and whose templates
    then join the cache. With ``batch_size=1`` every message sees the templates of all
    messages before it; a larger batch decodes faster but may decode a few messages that
    an earlier one in the same batch would have answered. ``decoded`` counts the
    messages that reached the model. ``whole_words``: a slot covers whole words
    (``templates.whole_words``), as Drain's do.
    """

    def __init__(
        self,
        model: Generator,
        cache: TemplateCache | None = None,
        decoder: str = "iad",
        batch_size: int = 32,
        max_new_tokens: int = 256,
        whole_words: bool = False,
    ) -> None:
        self.model = model
        self.cache = cache
        self.settings = {"decoder": decoder, "batch_size": batch_size}
        self.settings["max_new_tokens"] = max_new_tokens
        self.batch_size = batch_size
        self.whole_words = whole_words
        self.decoded = 0
        # a decoded message whose template could not be cached (it fixes no word, or does
        # not fit its message): the same message again gets the same template undecoded
        self.uncached: dict[str, str] = {}

    def _decode(self, messages: list[str]) -> list[str]:
        self.decoded += len(messages)
        templates = self.model.generate(messages, **self.settings)
        if self.whole_words:
            templates = [whole_words(t, m) for t, m in zip(templates, messages, strict=True)]
        if self.cache is not None:
            for message, template in zip(messages, templates, strict=True):
                if not self.cache.add(template, message):
                    self.uncached[message] = template
        return templates

    def parse(self, messages: Sequence[str]) -> list[str]:
        if self.cache is None:
            unique = list(dict.fromkeys(messages))
            answer = dict(zip(unique, self._decode(unique), strict=True))
            return [answer[m] for m in messages]
        templates: list[str | None] = [None] * len(messages)
        waiting: dict[str, list[int]] = {}
        for index, message in enumerate(messages):
            if message in waiting:
                waiting[message].append(index)
                continue
            templates[index] = self.uncached.get(message) or self.cache.match(message)
            if templates[index] is None:
                waiting[message] = [index]
            if len(waiting) >= self.batch_size:
                self._flush(waiting, templates)
        self._flush(waiting, templates)
        return templates  # type: ignore[return-value]

    def _flush(self, waiting: dict[str, list[int]], templates: list[str | None]) -> None:
        if not waiting:
            return
        for message, template in zip(waiting, self._decode(list(waiting)), strict=True):
            for index in waiting[message]:
                templates[index] = template
        waiting.clear()
