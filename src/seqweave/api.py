"""The Python API: ``seqweave.load(DIR)`` returns a model ready to generate.

>>> model = seqweave.load("runs/gec/best")              # doctest: +SKIP
>>> model.generate(["He go to school every days."])      # doctest: +SKIP
['He goes to school every day.']
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from pathlib import Path

import torch

from seqweave.checkpoint import (
    load_decode_config,
    load_model_config,
    load_tokenizer,
    load_weights,
    require_weights,
    save_model_dir,
)
from seqweave.config import DecodeConfig, ModelConfig
from seqweave.data.copy_words import SENTENCE, Marked, mark_with, restore
from seqweave.data.framing import frame_source, max_source_tokens
from seqweave.data.proteins import clean_protein, is_protein_vocabulary
from seqweave.data.unicode import unencodable
from seqweave.decoding import Generation, decode_many
from seqweave.decoding.grammars import build_constraint
from seqweave.device import resolve_device
from seqweave.errors import CheckpointError, ConfigError, DataError
from seqweave.models import Seq2SeqBase, build_model
from seqweave.objectives.pretraining import tag_predictions
from seqweave.tokenizers import Tokenizer


def source_ids(
    tokenizer: Tokenizer, config: ModelConfig, texts: Sequence[str], clip: bool = True
) -> list[list[int]]:
    """Token ids of source texts, framed as the model was trained; with ``clip``, sources
    longer than the model's positions allow are cut to fit.

    Raises:
        DataError: a text is not a string or not valid Unicode (a lone surrogate), which the
            tokenizer would otherwise reject with a bare ``TypeError``; for a protein model,
            a character that is not an amino-acid letter (``data.proteins.clean_protein``).
    """
    texts = list(texts)
    for i, text in enumerate(texts):
        problem = "not a string" if not isinstance(text, str) else unencodable(text)
        if problem is not None:
            raise DataError(f"input {i}: {problem}")
    if is_protein_vocabulary(tokenizer):
        texts = [clean_protein(text, f"input {i}") for i, text in enumerate(texts)]
    limit = max_source_tokens(config) if clip else None
    return [frame_source(ids, config, limit) for ids in tokenizer.encode_batch(texts)]


class Seq2Seq:
    """A network with its tokenizer and default decoding settings."""

    def __init__(self, network: Seq2SeqBase, tokenizer: Tokenizer, decode: DecodeConfig):
        self.network = network
        self.tokenizer = tokenizer
        self.decode_config = decode
        self.draft: Seq2Seq | None = None

    def attach_draft(self, draft: Seq2Seq) -> None:
        """Draft with ``draft``: a small autoregressive model for speculative decoding
        (``decoder="spec"``) or a nar_drafter for generalized aggressive decoding
        (``decoder="gad"``).

        Raises:
            ConfigError: the draft model reads or writes tokens differently.
        """
        if draft.tokenizer.backend.get_vocab() != self.tokenizer.backend.get_vocab():
            raise ConfigError("the draft model's tokenizer differs from the model's")
        for name in ("pad_id", "eos_id", "decoder_start_id", "source_bos"):
            if getattr(draft.config, name) != getattr(self.config, name):
                raise ConfigError(f"the draft model's {name} differs from the model's")
        self.draft = draft

    @property
    def config(self) -> ModelConfig:
        return self.network.config

    @property
    def device(self) -> torch.device:
        return self.network.device

    def encode_sources(self, texts: Sequence[str], clip: bool = True) -> list[list[int]]:
        return source_ids(self.tokenizer, self.config, texts, clip)

    def decode_settings(self, **overrides) -> DecodeConfig:
        return dataclasses.replace(self.decode_config, **overrides)

    def generate_tokens(self, texts: Sequence[str], **overrides) -> list[Generation]:
        """Decode texts; keyword arguments override fields of the default DecodeConfig."""
        self.network.eval()
        settings = self.decode_settings(**overrides)
        draft = self.draft.network.eval() if self.draft is not None else None
        constraint = build_constraint(settings.constraint, self.tokenizer)
        sources = self.encode_sources(texts)
        return decode_many(self.network, sources, settings, draft, constraint)

    def generate(self, texts: Sequence[str], **overrides) -> list[str]:
        return self.generate_texts(texts, **overrides)[0]

    def generate_texts(
        self, texts: Sequence[str], **overrides
    ) -> tuple[list[str], list[Generation]]:
        """The decoded texts and the generations behind them.

        A ``hier_nse`` model reads its sources marked (``<sent>`` at each sentence, a copy
        slot for each out-of-vocabulary word; ``data/copy_words.py``): plain text is marked
        here and the copied words are put back in the output, so a user hands it text as
        to any other model. A source that already starts with ``<sent>`` is taken as
        marked."""
        marked = self._copy_marks(texts)
        sources = [m.source for m in marked] if marked else texts
        outputs = self.generate_tokens(sources, **overrides)
        decoded = self.tokenizer.decode_batch([o.tokens for o in outputs])
        if marked:
            decoded = [restore(t, m.unknown) for t, m in zip(decoded, marked, strict=True)]
        return decoded, outputs

    def _copy_marks(self, texts: Sequence[str]) -> list[Marked] | None:
        if self.config.architecture != "hier_nse":
            return None
        mark = mark_with(self.tokenizer, self.config.hier_nse.copy_slots)
        return [Marked(t, "", ()) if t.lstrip().startswith(SENTENCE) else mark(t) for t in texts]

    @torch.inference_mode()
    def tag(self, texts: Sequence[str], labels: Sequence[str] = (), batch_size: int = 32):
        """One label per source token from the tagging head (``model.tag_head``, trained
        by ``train.objective = "tag"``): one encoder pass, no decoding. ``labels``: the
        label tokens the argmax may pick (``"HEC"`` for 3-state secondary structure); empty:
        any token. Returns one string per text, the labels decoded like a target.

        Raises:
            ConfigError: the model has no tagging head, or a label is not a token.
            DataError: bad input (as ``generate``), or a source longer than the model's
                positions (a label per residue cannot be given for a cut source).
        """
        if getattr(self.network, "tag_head", None) is None:
            raise ConfigError("this model has no tagging head (model.tag_head)")
        self.network.eval()
        allowed = self._label_mask(labels)
        sources = self.encode_sources(texts, clip=False)
        offset = 1 if self.config.source_bos else 0
        outputs = []
        for first in range(0, len(sources), batch_size):
            chunk = sources[first : first + batch_size]
            longest = max(len(s) for s in chunk)
            if longest > max_source_tokens(self.config):
                raise DataError(f"a source of {longest} tokens is past the model's positions")
            src = torch.full((len(chunk), longest), self.config.pad_id, dtype=torch.long)
            for row, ids in enumerate(chunk):
                src[row, : len(ids)] = torch.tensor(ids)
            lengths = torch.tensor([len(s) for s in chunk])
            predicted = tag_predictions(
                self.network, src.to(self.device), lengths.to(self.device), allowed
            ).cpu()
            rows = [predicted[r, offset : len(s) - 1].tolist() for r, s in enumerate(chunk)]
            outputs.extend(self.tokenizer.decode_batch(rows))
        return outputs

    def _label_mask(self, labels: Sequence[str]) -> torch.Tensor | None:
        if not labels:
            return None
        allowed = torch.zeros(self.config.vocab_size, dtype=torch.bool)
        for label in labels:
            token = self.tokenizer.token_to_id(label)
            if token is None:
                raise ConfigError(f"label {label!r} is not a token of this model's tokenizer")
            allowed[token] = True
        return allowed

    def save(self, directory: str | Path) -> Path:
        return save_model_dir(directory, self.network, self.tokenizer, self.decode_config)


def load(directory: str | Path, device: str = "cpu") -> Seq2Seq:
    """Load a model directory (config.json, model.safetensors, tokenizer.json,
    generation_config.json). Pickle files are never read.

    Raises:
        CheckpointError: the directory or a file in it is missing, corrupt or does not
            fit the configuration.
    """
    directory = Path(directory)
    if not directory.is_dir():
        raise CheckpointError(f"model directory {directory} does not exist")
    require_weights(directory)
    config = load_model_config(directory)
    tokenizer = load_tokenizer(directory, config)
    if tokenizer.vocab_size > config.vocab_size:
        raise CheckpointError(
            f"{directory}: tokenizer has {tokenizer.vocab_size} tokens but the model only "
            f"{config.vocab_size}"
        )
    network = build_model(config)
    load_weights(network, directory)
    network.to(resolve_device(device)).eval()
    return Seq2Seq(network, tokenizer, load_decode_config(directory))
