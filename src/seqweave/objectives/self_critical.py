"""Self-critical sequence training (Rennie et al. 2017) with a ROUGE-L reward.

Read, Highlight and Summarize (like Paulus et al. 2018) fine-tunes its MLE model on the
metric it is judged by: per source, one output is sampled and one decoded greedily, and
the sampled output's log-likelihood is weighted by how much better it scores than the
greedy one, ``-(r(y_s) - r(y_g)) * log p(y_s)``. The greedy output is the baseline, so an
output better than what the model would say anyway becomes more likely and a worse one
less, with no learned critic. The token loss (MLE) stays in the sum, which keeps the
outputs readable.

Both outputs are decoded through the decoder-state API (``encode``, ``start``, ``step``),
so any model that decodes can be fine-tuned this way; the log-likelihood comes from the
teacher-forced pass on the sampled tokens. The reward is ROUGE-L F1 on token ids (the
longest common subsequence), which for a ``words`` tokenizer is ROUGE-L on words.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import Tensor

from seqweave.objectives.settings import SelfCriticalConfig

Reward = Callable[[Sequence[int], Sequence[int]], float]


def lcs_length(a: Sequence[int], b: Sequence[int]) -> int:
    """Length of the longest common subsequence (dynamic programming, one row kept)."""
    row = [0] * (len(b) + 1)
    for x in a:
        diagonal = 0
        for j, y in enumerate(b, start=1):
            diagonal, row[j] = row[j], diagonal + 1 if x == y else max(row[j], row[j - 1])
    return row[-1]


def rouge_l(output: Sequence[int], reference: Sequence[int]) -> float:
    """ROUGE-L F1 in [0, 1] (precision and recall of the LCS, equally weighted)."""
    common = lcs_length(output, reference)
    if common == 0:
        return 0.0
    precision, recall = common / len(output), common / len(reference)
    return 2 * precision * recall / (precision + recall)


def until_end(ids: Sequence[int], eos_id: int, pad_id: int) -> list[int]:
    """The tokens before the first end or padding token."""
    out = []
    for token in ids:
        if token in (eos_id, pad_id):
            break
        out.append(token)
    return out


@torch.no_grad()
def rollout(
    model, src: Tensor, src_lengths: Tensor, ids: tuple[int, int, int], max_len: int, greedy: bool
) -> Tensor:
    """Outputs (B, T <= max_len) through the decoder-state API, sampled from the softmax of
    each step's scores or greedy; ``ids`` = (start, end, pad). A row ends with its end token
    and is padded after it."""
    start_id, eos_id, pad_id = ids
    state = model.start(model.encode(src, src_lengths))
    last = torch.full_like(src_lengths, start_id)
    done = torch.zeros_like(src_lengths, dtype=torch.bool)
    outputs = []
    for _ in range(max_len):
        scores = model.step(state, last[:, None])[:, 0].float()  # (B, V)
        if greedy:
            token = scores.argmax(-1)
        else:
            token = torch.multinomial(torch.softmax(scores, -1), 1).squeeze(1)
        token = token.masked_fill(done, pad_id)
        outputs.append(token)
        done = done | (token == eos_id)
        last = token.masked_fill(done, eos_id)
        if bool(done.all()):
            break
    return torch.stack(outputs, dim=1)


def sequence_log_prob(
    model, src: Tensor, src_lengths: Tensor, tokens: Tensor, start_id: int, pad_id: int
) -> Tensor:
    """log p(tokens | src) per row (B,), teacher-forced, with gradients; padding skipped."""
    start = torch.full_like(tokens[:, :1], start_id)
    scores = model(src, src_lengths, torch.cat([start, tokens[:, :-1]], dim=1))
    log_probs = F.log_softmax(scores.float(), dim=-1).gather(-1, tokens[..., None])[..., 0]
    return log_probs.masked_fill(tokens == pad_id, 0.0).sum(dim=1)


@dataclass(frozen=True)
class SelfCritical:
    """The additive objective: sampled vs greedy reward, REINFORCE on the sampled output."""

    settings: SelfCriticalConfig
    start_id: int
    eos_id: int
    pad_id: int
    reward: Reward = rouge_l
    needs_states: bool = False

    @classmethod
    def from_config(cls, cfg) -> SelfCritical:
        model = cfg.model
        return cls(cfg.objectives.self_critical, model.decoder_start_id, model.eos_id, model.pad_id)

    def rewards(self, outputs: Tensor, references: Tensor) -> Tensor:
        """Reward per row (B,) of outputs (B, T) against references (B, T')."""
        ends = (self.eos_id, self.pad_id)
        pairs = zip(outputs.tolist(), references.tolist(), strict=True)
        scores = [self.reward(until_end(o, *ends), until_end(r, *ends)) for o, r in pairs]
        return torch.tensor(scores, device=outputs.device)

    def loss(
        self, model, src: Tensor, src_lengths: Tensor, sampled: Tensor, advantage: Tensor
    ) -> Tensor:
        """Mean over rows of ``-advantage * log p(sampled)``."""
        log_p = sequence_log_prob(model, src, src_lengths, sampled, self.start_id, self.pad_id)
        return -(advantage * log_p).mean()

    def terms(self, model, micro, forward) -> dict[str, Tensor]:
        ids = (self.start_id, self.eos_id, self.pad_id)
        max_len = self.settings.max_len
        sampled = rollout(model, micro.src, micro.src_lengths, ids, max_len, greedy=False)
        greedy = rollout(model, micro.src, micro.src_lengths, ids, max_len, greedy=True)
        advantage = self.rewards(sampled, micro.tgt_out) - self.rewards(greedy, micro.tgt_out)
        loss = self.loss(model, micro.src, micro.src_lengths, sampled, advantage)
        return {"self_critical": self.settings.weight * loss * micro.num_tokens}
