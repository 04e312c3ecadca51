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
