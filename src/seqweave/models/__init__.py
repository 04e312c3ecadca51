"""Model registry: architecture name -> class. Nothing registers itself on import."""

from __future__ import annotations

from seqweave.config import ModelConfig
from seqweave.models.base import Seq2SeqBase
from seqweave.models.hier_nse import HierNSE
from seqweave.models.nar_drafter import NARDrafter
from seqweave.models.nar_editor import NAREditor
from seqweave.models.prefix_lm import PrefixLM
from seqweave.models.sasrec import SASRec
from seqweave.models.seqboat import SeqBoat
from seqweave.models.state import DecoderState, Memory
from seqweave.models.transformer import EncoderDecoder

MODELS: dict[str, type[Seq2SeqBase]] = {
    "transformer": EncoderDecoder,
    "prefix_lm": PrefixLM,
    "nar_drafter": NARDrafter,
    "nar_editor": NAREditor,
    "seqboat": SeqBoat,  # the encoder-decoder with SeqBoat encoder layers
    "sasrec": SASRec,
    "hier_nse": HierNSE,  # hierarchical NSE with a pointer-generator (Read, Highlight ...)
}


def build_model(cfg: ModelConfig) -> Seq2SeqBase:
    """A freshly initialised model for ``cfg`` (the architecture was checked by the config)."""
    return MODELS[cfg.architecture](cfg)


__all__ = [
    "MODELS",
    "DecoderState",
    "EncoderDecoder",
    "HierNSE",
    "Memory",
    "NARDrafter",
    "NAREditor",
    "PrefixLM",
    "SASRec",
    "Seq2SeqBase",
    "SeqBoat",
    "build_model",
]
