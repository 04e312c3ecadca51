"""A non-autoregressive editor for simultaneous re-translation (FReTNA, Han et al. 2020).

In re-translation the source arrives a word at a time and the whole
translation is redone after each word. An autoregressive model redoes it from
scratch, in as many decoder passes as the output has tokens. The editor
instead starts from the previous translation and revises it in a fixed
number of parallel passes, whatever the length:

1. the encoder reads the source prefix, and a length head on its mean state
   predicts the new output length L (counting the end token);
2. the canvas holds the previous translation, cut or extended to L positions
   (the new positions are mask slots);
3. one decoder pass with bidirectional self-attention predicts every
   position, kept or masked (so earlier words can be revised too);
4. each further pass re-masks the least confident positions and predicts
   them again (mask-predict, Ghazvininejad et al. 2019), with fewer masks
   each time.

Training uses the ordinary loop: ``forward`` builds the canvas from the target
itself, corrupted either like a previous translation (a kept prefix, a few
tokens replaced, the rest masked) or like a mask-predict step (a random share
of positions masked), and returns logits for every target position. The
length head's loss is added by its token loss (``objectives.registry``,
``with_length=True``). Its data is sequence-level distillation: the target
model's translations of source prefixes, so the editor learns what the target
model would say. It shares the encoder-decoder's layers (``EncoderDecoderStack``)
but does not decode token by token, so it has no ``step``: what streaming asks
of it is the ``Editor`` protocol.
"""

from __future__ import annotations

from typing import ClassVar, Protocol

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from seqweave.config import ModelConfig
from seqweave.errors import ConfigError
from seqweave.models.layers import padding_mask
from seqweave.models.state import Memory
from seqweave.models.transformer import EncoderDecoderStack

FIRST_WORD_ID = 4  # ids below are pad, bos, eos, unk: never drawn as replacement tokens
REPLACE_RATE = 0.1  # kept canvas tokens replaced by random ones in training


class Editor(Protocol):
    """What simultaneous re-translation (``seqweave.streaming``) asks of an editor."""

    config: ModelConfig

    def edit(
        self, src: Tensor, src_lengths: Tensor, previous: list[list[int]], passes: int = 2
    ) -> list[list[int]]: ...


class NAREditor(EncoderDecoderStack):
    not_a_decoder: ClassVar[str] = (
        "a nar_editor model revises translations in fixed passes "
        "(seqweave generate --stream-source --editor DIR); it does not decode token by token"
    )

    def __init__(self, cfg: ModelConfig):
        super().__init__(cfg)
        self.mask_vector = nn.Parameter(torch.randn(cfg.d_model) * cfg.d_model**-0.5)
        self.length_head = nn.Linear(cfg.d_model, cfg.max_positions)

    # -- the two heads ------------------------------------------------------------------------

    def length_logits(self, memory: Memory) -> Tensor:
        """(B, max_positions): scores of each output length (end token included)."""
        real = memory.mask[..., None].to(memory.states.dtype)
        pooled = (memory.states * real).sum(1) / real.sum(1).clamp(min=1)
        return self.length_head(pooled)

    def canvas_logits(
        self,
        memory: Memory,
        canvas: Tensor,
        masked: Tensor,
        lengths: Tensor,
        cross: list[tuple[Tensor, Tensor]] | None = None,
    ) -> Tensor:
        """Logits (B, L, V) for every canvas position in one pass.

        ``canvas`` (B, L) holds token ids, ``masked`` (B, L) marks the mask slots
        (their ids are ignored) and ``lengths`` (B,) the real positions per row;
        ``cross`` is ``cross_memory(memory)`` when the caller reuses it across passes.
        """
        B, L = canvas.shape
        real = padding_mask(lengths, L)
        feed = canvas.masked_fill(masked | ~real, self.config.pad_id)  # the pad embedding is 0
        positions = torch.arange(L, device=canvas.device).expand(B, L)
        x = self.decoder_embed.forward(feed, positions) + masked[..., None] * self.mask_vector
        rotary = self.decoder_embed.rotary(positions)
        self_mask = real[:, None, None, :]  # bidirectional over the real positions
        cross_mask = self._cross_mask(memory)
        if cross is None:
            cross = self.cross_memory(memory)
        for layer, cross_kv in zip(self.decoder_layers, cross, strict=True):
            x = layer.forward(x, self_mask, rotary, cross_kv, cross_mask)
        return self._decoder_out(x)

    def cross_memory(self, memory: Memory) -> list[tuple[Tensor, Tensor]]:
        """Cross-attention keys and values of every decoder layer, projected once per source."""
        return [layer.cross.project_memory(memory.states) for layer in self.decoder_layers]

    # -- training -----------------------------------------------------------------------------

    def forward(
        self, src: Tensor, src_lengths: Tensor, tgt_in: Tensor, with_length: bool = False
    ) -> Tensor | tuple[Tensor, Tensor]:
        """Logits (B, T, V) aligned with the training targets (the target and its end token),
        predicted from a corrupted canvas of the target; with ``with_length`` also the
        length logits. In eval mode the corruption is seeded, so validation is repeatable."""
        memory = self.encode(src, src_lengths)
        lengths = (tgt_in != self.config.pad_id).sum(1)  # start + target = target + end
        pad = tgt_in.new_full((len(tgt_in), 1), self.config.pad_id)
        targets = torch.cat([tgt_in[:, 1:], pad], dim=1)
        targets = targets.masked_fill(~padding_mask(lengths, tgt_in.shape[1]), self.config.pad_id)
        rows = torch.arange(len(tgt_in), device=tgt_in.device)
        targets[rows, lengths - 1] = self.config.eos_id
        generator = None
        if not self.training:
            generator = torch.Generator(device=tgt_in.device).manual_seed(0)
        canvas, masked = self.corrupt(targets, lengths, generator)
        logits = self.canvas_logits(memory, canvas, masked, lengths)
        if with_length:
            return logits, self.length_logits(memory)
        return logits

    def corrupt(
        self, targets: Tensor, lengths: Tensor, generator: torch.Generator | None = None
    ) -> tuple[Tensor, Tensor]:
        """A training canvas from ``targets`` (B, T): half the rows look like a previous
        translation (a random prefix kept, 10% of it replaced, the rest masked), the
        others like a mask-predict step (each position masked with a random row rate)."""
        B, T = targets.shape
        device = targets.device

        def uniform(*shape):
            return torch.rand(*shape, generator=generator, device=device)

        position = torch.arange(T, device=device)[None, :]
        kept = (uniform(B, 1) * lengths[:, None]).long()  # 0 .. length - 1 tokens kept
        like_previous = position >= kept
        like_refinement = uniform(B, T) < uniform(B, 1)
        masked = torch.where(uniform(B, 1) < 0.5, like_previous, like_refinement)
        masked &= padding_mask(lengths, T)
        replace = ~masked & (uniform(B, T) < REPLACE_RATE)
        draws = FIRST_WORD_ID + (uniform(B, T) * (self.config.vocab_size - FIRST_WORD_ID)).long()
        return torch.where(replace, draws, targets), masked

    # -- editing ------------------------------------------------------------------------------

    @torch.inference_mode()
    def edit(
        self, src: Tensor, src_lengths: Tensor, previous: list[list[int]], passes: int = 2
    ) -> list[list[int]]:
        """The revised outputs (without the end token) of a batch of source prefixes, each
        starting from its previous output, in ``passes`` decoder passes."""
        if passes < 1:
            raise ConfigError(f"the editor needs at least one pass, got {passes}")
        memory = self.encode(src, src_lengths)
        lengths = self.length_logits(memory)[:, 1:].argmax(-1) + 1  # at least the end token
        L = int(lengths.max())
        B = len(previous)
        device = src.device
        canvas = torch.full((B, L), self.config.pad_id, dtype=torch.long, device=device)
        masked = padding_mask(lengths, L).clone()
        for b, tokens in enumerate(previous):
            keep = min(len(tokens), int(lengths[b]) - 1)
            if keep:
                canvas[b, :keep] = torch.tensor(tokens[:keep], device=device)
                masked[b, :keep] = False
        real = padding_mask(lengths, L)
        confidence = torch.zeros(B, L, device=device)
        cross = self.cross_memory(memory)
        for n in range(passes):
            logits = self.canvas_logits(memory, canvas, masked, lengths, cross)
            logp = F.log_softmax(logits.float(), -1)
            best, tokens = logp.max(-1)
            update = real if n == 0 else masked  # the first pass may revise every position
            canvas = torch.where(update, tokens, canvas)
            confidence = torch.where(update, best, confidence)
            remask = lengths * (passes - 1 - n) // passes  # mask-predict's schedule
            order = confidence.masked_fill(~real, float("inf")).argsort(dim=1)
            masked = torch.zeros_like(real)
            masked.scatter_(1, order, torch.arange(L, device=device)[None, :] < remask[:, None])
            masked &= real
        specials = {self.config.pad_id, self.config.bos_id, self.config.eos_id}
        out = []
        for b in range(B):
            row = canvas[b, : int(lengths[b]) - 1].tolist()
            out.append([t for t in row if t not in specials])
        return out
