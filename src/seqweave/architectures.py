"""Options of an architecture beyond the Transformer's: one frozen dataclass per
architecture, a section of ``[model]`` (``[model.seqboat]``), so ``ModelConfig`` does not
grow a field per paper. Each section checks its own values; ``ModelConfig`` refuses a
section set away from its default on another architecture.
"""

from __future__ import annotations

from dataclasses import dataclass

from seqweave.errors import ConfigError

SEQBOAT_ROUTERS = ("learned", "all", "none")


@dataclass(frozen=True)
class SeqBoatConfig:
    """SeqBoat (Ren et al. 2023, sparse modular activation), ``architecture = "seqboat"``:
    each encoder layer is a multi-head damped EMA, a router that picks the tokens whose
    attention runs, and gated attention over those tokens only, in chunks.

    ``router``: learned (the paper: a tempered softmax over {skip, attend} per token,
    the argmax decides, its probability scales the attention output); all (every real
    token attends: MEGA with chunked attention); none (EMA only, no attention).
    """

    ema_heads: int = 8  # EMA dimensions per model dimension (MEGA's ndim)
    attention_dim: int = 64  # width of the shared query/key representation (MEGA's zdim)
    chunk: int = 128  # activated tokens per local-attention chunk; 0: one chunk
    temperature: float = 1.0  # of the router's softmax
    router: str = "learned"  # learned | all | none

    def __post_init__(self) -> None:
        if self.router not in SEQBOAT_ROUTERS:
            raise ConfigError(
                f"model.seqboat.router={self.router!r} is not one of {', '.join(SEQBOAT_ROUTERS)}"
            )
        for name in ("ema_heads", "attention_dim"):
            if getattr(self, name) < 1:
                raise ConfigError(f"model.seqboat.{name} must be >= 1, got {getattr(self, name)}")
        if self.chunk < 0:
            raise ConfigError(f"model.seqboat.chunk must be >= 0, got {self.chunk}")
        if not self.temperature > 0:
            raise ConfigError(f"model.seqboat.temperature must be > 0, got {self.temperature}")


@dataclass(frozen=True)
class HierNSEConfig:
    """The hierarchical Neural Semantic Encoder (Read, Highlight and Summarize),
    ``architecture = "hier_nse"``: sentence memories and a document memory that are read,
    composed and written while encoding and decoding, with a pointer-generator output
    (``models/hier_nse.py``).

    Sources arrive marked by ``data/copy_words.py``: each sentence starts with ``<sent>``
    and the k-th distinct out-of-vocabulary word of a source is the word ``<copyk>``, an
    id that only copying can produce. Training fills ``sentence_id`` and ``copy_start`` from
    the tokenizer (-1: not yet known; then the source is one sentence and nothing is
    copy-only).
    """

    copy_slots: int = 32  # out-of-vocabulary source words a row can copy: <copy0> .. <copyN-1>
    sentence_len: int = 40  # tokens per sentence memory; a longer sentence continues in the next
    sentence_id: int = -1  # the <sent> token
    copy_start: int = -1  # the id of <copy0>; <copyk> is copy_start + k

    def __post_init__(self) -> None:
        if self.copy_slots < 0:
            raise ConfigError(f"model.hier_nse.copy_slots must be >= 0, got {self.copy_slots}")
        if self.sentence_len < 1:
            raise ConfigError(f"model.hier_nse.sentence_len must be >= 1, got {self.sentence_len}")
