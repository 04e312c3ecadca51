"""Token + position embedding shared by the encoder, the decoder and the prefix LM."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from seqweave.config import ModelConfig
from seqweave.models.positions import AbsolutePositions, RotaryPositions, embedding_scale
from seqweave.models.seqpe import SequentialPositions


class Embedder(nn.Module):
    """tokens (B, T) + position ids (B, T) -> (B, T, D).

    Scaling, absolute positions and the embedding layer norm follow the config
    so that BART- and Marian-style models fit the same module. With RoPE the
    positions are applied inside attention instead, through ``rope``; SeqPE
    vectors are computed from the position's digits and added like learned ones.
    """

    def __init__(self, cfg: ModelConfig, tokens: nn.Embedding):
        super().__init__()
        self.tokens = tokens
        self.scale = embedding_scale(cfg.d_model, cfg.scales_embedding)
        self.positions: AbsolutePositions | SequentialPositions | None = None
        self.rope = None
        if cfg.position == "rope":
            self.rope = RotaryPositions(cfg.d_model // cfg.num_heads, cfg.max_positions)
        elif cfg.position == "seqpe":
            self.positions = SequentialPositions(cfg)
        else:
            self.positions = AbsolutePositions(
                cfg.position, cfg.max_positions, cfg.d_model, cfg.position_offset
            )
        self.norm = (
            nn.LayerNorm(cfg.d_model, eps=cfg.layer_norm_eps) if cfg.embedding_layer_norm else None
        )
        self.dropout_p = cfg.dropout
        # PALM's segment embedding: row 0 marks source tokens, row 1 target tokens
        self.segments = None
        if cfg.partial_attention:
            self.segments = nn.Parameter(torch.empty(2, cfg.d_model))
            nn.init.normal_(self.segments, std=self.scale * cfg.d_model**-0.5)
        # analysis only: a list that receives each output, to take gradients against
        self.probe: list | None = None

    def forward(
        self,
        tokens: Tensor,
        position_ids: Tensor,
        segment_ids: Tensor | None = None,
        added: Tensor | None = None,
    ) -> Tensor:
        """tokens, position_ids (B, T); segment_ids (T,) or (B, T), needed exactly when
        the model has a segment embedding; ``added`` (B, T, D) joins the scaled token
        embeddings (scalar values, models/scalars.py)."""
        x = F.embedding(tokens, self.tokens.weight)
        if self.scale != 1.0:
            x = x * self.scale
        if added is not None:
            x = x + added
        if self.positions is not None:
            x = x + self.positions.forward(position_ids)
        if self.segments is not None:
            x = x + self.segments[segment_ids]
        if self.norm is not None:
            n = self.norm
            x = F.layer_norm(x, n.normalized_shape, n.weight, n.bias, n.eps)
        if self.training and self.dropout_p > 0:
            x = F.dropout(x, self.dropout_p, True)
        if self.probe is not None:
            self.probe.append(x)
        return x

    def rotary(self, position_ids: Tensor) -> tuple[Tensor, Tensor] | None:
        """RoPE angles for position_ids (B, T), computed once per pass for all layers."""
        return None if self.rope is None else self.rope.angles(position_ids)


def token_embedding(cfg: ModelConfig) -> nn.Embedding:
    embedding = nn.Embedding(cfg.vocab_size, cfg.d_model, padding_idx=cfg.pad_id)
    nn.init.normal_(embedding.weight, std=cfg.d_model**-0.5)
    embedding.weight.data[cfg.pad_id].zero_()
    return embedding
