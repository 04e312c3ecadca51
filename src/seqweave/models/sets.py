"""Sets as inputs and outputs: Read-Process-Write and pointer networks (Vinyals et al. 2016).

"Order Matters: Sequence to sequence for sets" shows that reading a set with
an RNN makes the result depend on an order the set does not have, and
proposes a *Read-Process-Write* network instead:

- **read**: each element is embedded on its own (a small MLP), giving the
  memory ``m_1 .. m_N``;
- **process**: P steps of an LSTM that takes no input from the set; at each
  step its state ``q_t`` attends over the memory by content, ``r_t = sum_i
  softmax(m_i . q_t) m_i``, and ``q*_t = [q_t, r_t]`` feeds the next step.
  Attention is a sum over the set, so ``q*_P`` does not depend on the order of
  the elements;
- **write**: a pointer network (Vinyals et al. 2015) whose LSTM starts from
  ``q*_P`` and at each step points at an input element (optionally after a
  *glimpse*, one more content-attention read of the memory).

The pointer-network baseline reads the elements in their given order with an
LSTM instead (``reader="lstm"``). With ``mask_written`` (the default) elements
already written are masked out of later pointing, so the output is always a
permutation. The paper's sorting experiments do not mask, and should not: with
masking, any scorer that is monotone in the value sorts perfectly (even an
untrained one, half the time), while without it the writer has to learn which
elements it has already written.

These models point into their input rather than into a vocabulary, so they
have their own small interface (``loss``, ``order_log_prob``, ``sample`` and
``decode``) instead of the token decoder-state API.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from seqweave.errors import ConfigError


def content_attention(memory: Tensor, query: Tensor) -> Tensor:
    """``sum_i softmax_i(m_i . q) m_i``: memory (B, N, H), query (B, H) -> (B, H)."""
    weights = torch.softmax(torch.einsum("bnh,bh->bn", memory, query), dim=-1)
    return torch.einsum("bn,bnh->bh", weights, memory)


class SetPointerNetwork(nn.Module):
    """Read (set MLP or ordered LSTM), process P steps, write by pointing."""

    def __init__(
        self,
        input_dim: int = 1,
        hidden: int = 128,
        process_steps: int = 5,
        glimpse: bool = True,
        reader: str = "set",
        mask_written: bool = True,
    ):
        super().__init__()
        if reader not in ("set", "lstm"):
            raise ConfigError(f"reader={reader!r} is not one of set, lstm")
        if process_steps < 0:
            raise ConfigError(f"process_steps must be >= 0, got {process_steps}")
        self.hidden = hidden
        self.process_steps = process_steps
        self.glimpse = glimpse
        self.reader = reader
        self.mask_written = mask_written
        self.embed = nn.Sequential(
            nn.Linear(input_dim, hidden), nn.ReLU(), nn.Linear(hidden, hidden)
        )
        self.read_lstm = nn.LSTM(hidden, hidden, batch_first=True) if reader == "lstm" else None
        self.process_cell = nn.LSTMCell(2 * hidden, hidden)
        self.start_state = nn.Linear(2 * hidden, 2 * hidden)  # q*_P -> writer's (h, c)
        self.write_cell = nn.LSTMCell(hidden, hidden)
        self.first_input = nn.Parameter(torch.zeros(hidden))
        self.point_memory = nn.Linear(hidden, hidden, bias=False)
        self.point_query = nn.Linear(2 * hidden if glimpse else hidden, hidden)
        self.point_out = nn.Linear(hidden, 1, bias=False)

    # -- read and process ---------------------------------------------------------------------

    def read(self, x: Tensor) -> tuple[Tensor, Tensor | None]:
        """x (B, N, input_dim) -> memory (B, N, H) and, for the LSTM reader, its final state."""
        memory = self.embed(x)
        if self.read_lstm is None:
            return memory, None
        memory, (h, _) = self.read_lstm(memory)
        return memory, h[-1]

    def process(self, memory: Tensor) -> Tensor:
        """``q*_P`` (B, 2H): P attention steps of an LSTM with no input from the set."""
        B = memory.shape[0]
        q_star = memory.new_zeros(B, 2 * self.hidden)
        h = c = memory.new_zeros(B, self.hidden)
        for _ in range(self.process_steps):
            h, c = self.process_cell(q_star, (h, c))
            q_star = torch.cat([h, content_attention(memory, h)], dim=-1)
        return q_star

    def encode(self, x: Tensor) -> tuple[Tensor, Tensor]:
        """The memory and the writer's starting summary of the set (B, 2H)."""
        memory, last = self.read(x)
        summary = self.process(memory)
        if last is not None:  # the ordered reader's final state joins the summary
            summary = summary + torch.cat([last, torch.zeros_like(last)], dim=-1)
        return memory, summary

    # -- write --------------------------------------------------------------------------------

    def _pointer_scores(self, memory: Tensor, keys: Tensor, h: Tensor, taken: Tensor) -> Tensor:
        """Scores (B, N) of pointing at each element; ``keys`` is ``point_memory(memory)``."""
        query = torch.cat([h, content_attention(memory, h)], dim=-1) if self.glimpse else h
        scores = self.point_out(torch.tanh(keys + self.point_query(query)[:, None, :])).squeeze(-1)
        return scores.masked_fill(taken, float("-inf"))

    def order_log_prob(self, x: Tensor, order: Tensor) -> Tensor:
        """log p(order | x) (B,), teacher-forced: ``order`` (B, T) holds input indices."""
        memory, summary = self.encode(x)
        B, N, _ = memory.shape
        h, c = self.start_state(summary).chunk(2, dim=-1)
        keys = self.point_memory(memory)
        taken = torch.zeros(B, N, dtype=torch.bool, device=x.device)
        inputs = self.first_input.expand(B, -1)
        rows = torch.arange(B, device=x.device)
        total = memory.new_zeros(B)
        for t in range(order.shape[1]):
            h, c = self.write_cell(inputs, (h, c))
            logp = F.log_softmax(self._pointer_scores(memory, keys, h, taken), dim=-1)
            pick = order[:, t]
            total = total + logp[rows, pick]
            if self.mask_written:
                taken = taken.clone()
                taken[rows, pick] = True
            inputs = memory[rows, pick]
        return total

    def loss(self, x: Tensor, order: Tensor) -> Tensor:
        """Mean negative log-likelihood per output step of the given orders."""
        return -self.order_log_prob(x, order).mean() / order.shape[1]

    @torch.no_grad()
    def sample(
        self,
        x: Tensor,
        steps: int | None = None,
        greedy: bool = False,
        allowed: Tensor | None = None,
        generator: torch.Generator | None = None,
    ) -> Tensor:
        """Orders (B, steps) drawn from the model (or its greedy choice at each step);
        ``allowed`` (B, N) restricts the pointer to some elements (a target set), each
        written once."""
        memory, summary = self.encode(x)
        B, N, _ = memory.shape
        steps = N if steps is None else steps
        h, c = self.start_state(summary).chunk(2, dim=-1)
        keys = self.point_memory(memory)
        taken = torch.zeros(B, N, dtype=torch.bool, device=x.device)
        if allowed is not None:
            taken = ~allowed
        inputs = self.first_input.expand(B, -1)
        rows = torch.arange(B, device=x.device)
        picks = []
        for _ in range(steps):
            h, c = self.write_cell(inputs, (h, c))
            scores = self._pointer_scores(memory, keys, h, taken)
            if greedy:
                pick = scores.argmax(-1)
            else:
                probs = torch.softmax(scores, dim=-1)
                pick = torch.multinomial(probs, 1, generator=generator).squeeze(-1)
            picks.append(pick)
            if self.mask_written or allowed is not None:  # a set's orders are permutations
                taken = taken.clone()
                taken[rows, pick] = True
            inputs = memory[rows, pick]
        return torch.stack(picks, dim=1)

    def decode(self, x: Tensor) -> Tensor:
        """The greedy permutation (B, N)."""
        return self.sample(x, greedy=True)
