"""The sequence-to-action head (Li et al. 2022, "Sequence-to-Action: Grammatical Error
Correction with Action Guided Sequence Generation").

At every target step a small classifier reads the decoder state and the
encoder state of the source token under a pointer and predicts SKIP, COPY or
GEN; the step's distribution over tokens is the mixture

    P(y) = P(GEN) p_vocab(y) + P(COPY) [y = source[pointer]] + P(SKIP) [y = <skip>]

so copying the source is one confident decision instead of a vocabulary
prediction, which is how S2A keeps correct text unchanged. Where the pointer
has passed the source's end, SKIP and COPY are impossible and P = p_vocab.

The pointer is a pure function of the tokens fed to the decoder (see
``seqweave.data.actions``): it starts at 0, the start token leaves it, and
every later token moves it one on when it is ``<skip>`` or equals the source
token under it. ``step`` stores the pointer after each token in the decoder
state's ``slot_values["pointer"]``, at the token's cache slot, so ``rollback``
and ``reorder`` keep it right for free, and returns the fused *log*-probabilities:
every decoder (greedy, beam, sampling, IAD, speculative, GAD, the server) runs
on them unchanged, since argmax, log_softmax and softmax all take log-probabilities
as logits.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from seqweave.config import ModelConfig
from seqweave.data.actions import COPY, GEN, SKIP
from seqweave.errors import ConfigError
from seqweave.models.layers import Linear, linear
from seqweave.models.state import DecoderState, Memory, StepPlan


@dataclass
class ActionOutputs:
    """What the training pass of an action model returns (all (B, T, ...))."""

    log_probs: Tensor  # (B, T, V) the fused distribution
    action_log_probs: Tensor  # (B, T, 3) SKIP, COPY, GEN
    under: Tensor  # (B, T) the source token under the pointer, -1 past the source's end


class ActionHead(nn.Module):
    """A two-layer classifier over [decoder state; encoder state under the pointer]."""

    def __init__(self, cfg: ModelConfig):
        super().__init__()
        if cfg.skip_id < 0:
            raise ConfigError(
                "model.action_head needs model.skip_id, the id of the <skip> token "
                "(training sets it from the tokenizer)"
            )
        self.skip_id = cfg.skip_id
        self.hidden = Linear(2 * cfg.d_model, cfg.d_model)
        self.out = Linear(cfg.d_model, 3)

    def pointers(
        self, start: Tensor, first_position: Tensor, tokens: Tensor, source: Tensor, lengths: Tensor
    ) -> Tensor:
        """Pointer after each of ``tokens`` (B, K), fed at positions ``first_position`` (B,)
        on, starting from pointer ``start`` (B,); ``source`` (B, S) has ``lengths`` (B,)
        real tokens. Returns (B, K)."""
        pointer, out = start, []
        last = source.shape[1] - 1
        for k in range(tokens.shape[1]):
            token = tokens[:, k]
            inside = pointer < lengths
            under = source.gather(1, pointer.clamp(max=last)[:, None])[:, 0]
            moves = inside & ((token == self.skip_id) | (token == under))
            pointer = pointer + (moves & (first_position + k > 0)).long()
            out.append(pointer)
        return torch.stack(out, dim=1)

    def fuse(
        self,
        hidden: Tensor,
        vocab_logits: Tensor,
        pointers: Tensor,
        source: Tensor,
        states: Tensor,
        lengths: Tensor,
    ) -> ActionOutputs:
        """hidden (B, T, D), vocab_logits (B, T, V), pointers (B, T); source (B, S) ids and
        states (B, S, D) of the encoder, ``lengths`` (B,) real source tokens."""
        B, T = pointers.shape
        inside = pointers < lengths[:, None]  # (B, T)
        at = pointers.clamp(max=source.shape[1] - 1)
        under = source.gather(1, at).masked_fill(~inside, -1)  # (B, T)
        under_states = states.gather(1, at[..., None].expand(B, T, states.shape[-1]))
        under_states = under_states * inside[..., None]
        features = F.gelu(linear(self.hidden, torch.cat([hidden, under_states], dim=-1)))
        action_logits = linear(self.out, features).float()  # (B, T, 3)
        impossible = torch.zeros(3, dtype=torch.bool, device=hidden.device)
        impossible[SKIP] = impossible[COPY] = True
        action_logits = action_logits.masked_fill(~inside[..., None] & impossible, float("-inf"))
        actions = action_logits.log_softmax(dim=-1)
        fused = vocab_logits.float().log_softmax(dim=-1) + actions[..., GEN : GEN + 1]
        copy_at = under.clamp(min=0)[..., None]
        fused = fused.scatter(
            -1, copy_at, torch.logaddexp(fused.gather(-1, copy_at), actions[..., COPY : COPY + 1])
        )
        skip_at = torch.full_like(copy_at, self.skip_id)
        fused = fused.scatter(
            -1, skip_at, torch.logaddexp(fused.gather(-1, skip_at), actions[..., SKIP : SKIP + 1])
        )
        return ActionOutputs(fused, actions, under)

    # -- the readout (models/heads.py): what step and forward of the model return ------------

    def start(self, state: DecoderState, memory: Memory) -> None:
        """Keep what ``step`` needs in the decoder state."""
        state.memory_rows = {"source": memory.source, "states": memory.states}
        state.slot_values = {
            "pointer": torch.zeros_like(state.keys[0][:, 0, :, 0], dtype=torch.long)
        }

    def step(
        self,
        model,
        state: DecoderState,
        plan: StepPlan,
        before: Tensor,
        tokens: Tensor,
        x: Tensor,
    ) -> Tensor:
        """Pointers of the new ``tokens`` (B, K), fed after ``before`` (B,) decoded tokens,
        written at their slots; returns the fused log-probabilities (B, K, V). ``x`` is the
        last decoder layer's output, packed as ``plan`` says."""
        hidden = plan.dense(model.final_states(x))  # (B, K, D)
        vocab_logits = model.logits(hidden)
        stored = state.slot_values["pointer"]
        previous = (state.base + before - 1).clamp(min=0)
        start = stored.gather(1, previous[:, None])[:, 0].masked_fill(before == 0, 0)
        rows = state.memory_rows
        lengths = state.memory_lengths
        pointers = self.pointers(start, before, tokens, rows["source"], lengths)
        stored[plan.batch_index, plan.slots] = pointers
        fused = self.fuse(hidden, vocab_logits, pointers, rows["source"], rows["states"], lengths)
        return fused.log_probs

    def teacher_forced(
        self, model, memory: Memory, hidden: Tensor, tgt_in: Tensor, full: bool
    ) -> ActionOutputs | Tensor:
        """The fused log-probabilities (B, T, V) of decoder inputs ``tgt_in`` (B, T) from
        final decoder states ``hidden`` (B, T, D); with ``full``, the ActionOutputs."""
        outputs = self.forward_outputs(
            hidden, model.logits(hidden), tgt_in, memory.source, memory.states, memory.lengths
        )
        return outputs if full else outputs.log_probs

    def forward_outputs(
        self, hidden: Tensor, vocab_logits: Tensor, tgt_in: Tensor, source: Tensor, states, lengths
    ) -> ActionOutputs:
        """The teacher-forced pass: pointers of the whole decoder input ``tgt_in`` (B, T)."""
        zeros = torch.zeros_like(lengths)
        pointers = self.pointers(zeros, zeros, tgt_in, source, lengths)
        return self.fuse(hidden, vocab_logits, pointers, source, states, lengths)


def gold_actions(targets: Tensor, under: Tensor, skip_id: int) -> Tensor:
    """The action each target token (B, T) takes by the pointer rule: SKIP for ``<skip>``
    inside the source, COPY for the token under the pointer, GEN otherwise."""
    inside = under >= 0
    gold = torch.full_like(targets, GEN)
    gold = gold.masked_fill(inside & (targets == under), COPY)
    return gold.masked_fill(inside & (targets == skip_id), SKIP)
