"""The decoders by name: one table, one entry per decoder.

Every place that needs to know about a decoder (config validation, the decode
loop, the CLI's choices, the server's engine, its request schema and OpenAPI
document) looks it up here instead of switching on its name, so adding a
decoder is one entry in ``DECODER_SPECS`` plus its drafter.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from seqweave.decoding.aggressive import SourceDrafter
from seqweave.decoding.generalized import BlockDrafter
from seqweave.decoding.loop import Chooser, Drafter
from seqweave.decoding.sampling import sampling_choice
from seqweave.decoding.speculative import ModelDrafter
from seqweave.errors import ConfigError

# (settings, sources, draft model or None) -> a drafter for those rows. ``settings`` is a
# DecodeConfig (or anything with its drafting fields, such as the server's defaults).
DrafterBuilder = Callable[[Any, Sequence[Sequence[int]], Any], Drafter]
# (settings) -> the chooser of rows without a draft; ``settings`` has temperature, top_k,
# top_p and seed (a DecodeConfig or a server request's options).
ChooserBuilder = Callable[[Any], Chooser]

DRAFT_MODEL_KINDS = ("none", "autoregressive", "nar_drafter")
_KIND_WORDS = {"autoregressive": "an autoregressive", "nar_drafter": "a nar_drafter"}


@dataclass(frozen=True)
class DecoderSpec:
    """What a decoder is made of.

    ``lossless``: returns greedy's tokens exactly (with exact verification).
    ``draft_model``: the kind of draft model it needs (one of ``DRAFT_MODEL_KINDS``).
    ``grouped``: a request is several rows that reorder together (beam search), so it
    cannot share a row-wise batch. ``drafter`` builds its drafter (None: it drafts
    nothing); ``chooser`` builds how rows pick a token when not the argmax (sampling).
    """

    lossless: bool
    draft_model: str = "none"
    grouped: bool = False
    drafter: DrafterBuilder | None = None
    chooser: ChooserBuilder | None = None

    @property
    def drafts(self) -> bool:
        """Draft and verify: the decoders GAD++'s relaxed acceptance applies to."""
        return self.drafter is not None


def _source_drafter(settings, sources, draft_model) -> Drafter:
    return SourceDrafter(
        sources,
        settings.draft_len,
        settings.ngram,
        settings.draft_tokens_per_pass,
        settings.adaptive_draft,
    )


def _model_drafter(settings, sources, draft_model) -> Drafter:
    return ModelDrafter(draft_model, sources, settings.draft_k, settings.max_draft_k)


def _block_drafter(settings, sources, draft_model) -> Drafter:
    return BlockDrafter(draft_model, sources, settings.draft_tokens_per_pass)


def _sampler(settings) -> Chooser:
    return sampling_choice(settings.temperature, settings.top_k, settings.top_p, settings.seed)


DECODER_SPECS: dict[str, DecoderSpec] = {
    "greedy": DecoderSpec(lossless=True),
    "iad": DecoderSpec(lossless=True, drafter=_source_drafter),
    "spec": DecoderSpec(lossless=True, draft_model="autoregressive", drafter=_model_drafter),
    "gad": DecoderSpec(lossless=True, draft_model="nar_drafter", drafter=_block_drafter),
    "beam": DecoderSpec(lossless=False, grouped=True),
    "sample": DecoderSpec(lossless=False, chooser=_sampler),
}
DECODERS = tuple(DECODER_SPECS)  # the names, in the order help texts and schemas list them


def decoder_spec(name: str) -> DecoderSpec:
    """The spec of decoder ``name``. Raises ConfigError naming the valid decoders."""
    spec = DECODER_SPECS.get(name)
    if spec is None:
        raise ConfigError(f"unknown decoder {name!r}; valid decoders: {', '.join(DECODERS)}")
    return spec


def draft_model_kind(draft_model) -> str:
    """``"none"``, ``"nar_drafter"`` or ``"autoregressive"``: what a draft model network is."""
    if draft_model is None:
        return "none"
    return "nar_drafter" if draft_model.config.architecture == "nar_drafter" else "autoregressive"


def draft_decoder(draft_model) -> str | None:
    """The decoder that drafts with this draft model (None without one)."""
    kind = draft_model_kind(draft_model)
    if kind == "none":
        return None
    return next((name for name, spec in DECODER_SPECS.items() if spec.draft_model == kind), None)


def needs_words(name: str) -> str:
    """How an error names the draft model decoder ``name`` needs ("an autoregressive")."""
    return _KIND_WORDS[DECODER_SPECS[name].draft_model]


def check_decoder(name: str, draft_model=None, relaxed_top: int = 1) -> DecoderSpec:
    """The spec of ``name`` after checking that it can run with this draft model and
    acceptance rule: unsupported combinations fail before any decoding."""
    spec = decoder_spec(name)
    if spec.draft_model != "none" and draft_model_kind(draft_model) != spec.draft_model:
        raise ConfigError(
            f"decoder {name!r} needs {needs_words(name)} draft model (--draft-model DIR)"
        )
    if relaxed_top < 1:
        raise ConfigError(f"decode.relaxed_top must be >= 1, got {relaxed_top}")
    if relaxed_top > 1 and not spec.drafts:
        drafting = ", ".join(n for n, s in DECODER_SPECS.items() if s.drafts)
        raise ConfigError(f"relaxed acceptance needs a drafting decoder ({drafting}), not {name!r}")
    return spec
