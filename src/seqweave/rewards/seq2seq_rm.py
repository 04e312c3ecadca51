"""Sequence-to-sequence reward modelling (Zhou et al. 2024): a reward model that corrects.

The reward model is an ordinary seqweave seq2seq model, trained by sequence MLE with the
ordinary trainer on rows made from preference pairs (``rm_training_rows``):

    source: "<source> => <rejected>"   target: "<chosen>"
    source: "<source> => <chosen>"     target: "<chosen>"

so it learns to rewrite any answer into the preferred one and to leave a preferred answer
as it is. The input format is ``rm_input``: the pair's source, the separator ``=>`` with a
space on either side, the response; the separator is a plain word, so any tokenizer
(``words``, BPE) reads it, and a task whose sources contain " => " should pick another
(``separator``).

Token rewards (``token_rewards``) compare a response y with the model's greedy correction
c of it, both as target-side token ids. Align y and c by a longest common subsequence,
walking both from the start and matching equal tokens as soon as they meet (a match is
always on some longest alignment, so the common prefix is matched whole, up to the first
divergence, and after it the response re-synchronises with the correction wherever it
agrees again):

    r_i = +1   y_i is matched: the response agrees with the correction here
    r_i = -1   y_i is unmatched: after a divergence, a token the correction replaces or drops

Between two matches (and before the first, after the last) the response has u unmatched
tokens and the correction v: min(u, v) of them are read as replacements, one column each,
and max(0, v - u) correction tokens as missing from the response. A missing token has no
response token to carry its -1; ``TokenRewards.missing`` counts them. The sequence reward
is the mean over the alignment's columns (matches, unmatched response tokens, missing
tokens), a missing token counting -1:

    R(y) = (matched - unmatched - missing) / (matched + unmatched + missing)  in [-1, 1]

so appended junk, a wrong token and a truncated answer all lower it, and an answer the
model would not change scores 1. An empty response against an empty correction scores 1.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import torch

from seqweave.checkpoint import (
    load_decode_config,
    load_model_config,
    load_tokenizer,
    load_weights,
)
from seqweave.config import DecodeConfig
from seqweave.data.framing import frame_source, max_source_tokens
from seqweave.data.preferences import PreferencePair
from seqweave.decoding import decode_many
from seqweave.errors import ConfigError
from seqweave.models import build_model
from seqweave.tokenizers import Tokenizer

SEPARATOR = "=>"


def rm_input(source: str, response: str, separator: str = SEPARATOR) -> str:
    """The reward model's input for one response: ``"<source> => <response>"``."""
    return f"{source} {separator} {response}"


def rm_training_rows(
    pairs: Sequence[PreferencePair], separator: str = SEPARATOR
) -> list[dict[str, str]]:
    """Two seq2seq rows per pair: (source + rejected) -> chosen, (source + chosen) -> chosen."""
    rows = []
    for pair in pairs:
        for response in (pair.rejected, pair.chosen):
            rows.append(
                {"source": rm_input(pair.source, response, separator), "target": pair.chosen}
            )
    return rows


def align(response: Sequence[int], correction: Sequence[int]) -> tuple[list[bool], int]:
    """The alignment of the module docstring: for each response token whether it is
    matched, and how many correction tokens are missing from the response (in each gap
    between matches, those beyond the response tokens that stand in for them)."""
    n, m = len(response), len(correction)
    # suffix[i][j]: length of a longest common subsequence of response[i:] and correction[j:]
    suffix = [[0] * (m + 1) for _ in range(n + 1)]
    for i in range(n - 1, -1, -1):
        for j in range(m - 1, -1, -1):
            if response[i] == correction[j]:
                suffix[i][j] = 1 + suffix[i + 1][j + 1]
            else:
                suffix[i][j] = max(suffix[i + 1][j], suffix[i][j + 1])
    pairs = []  # (i, j): response[i] matched to correction[j]
    i = j = 0
    while i < n and j < m:
        if response[i] == correction[j]:
            pairs.append((i, j))
            i, j = i + 1, j + 1
        elif suffix[i + 1][j] >= suffix[i][j + 1]:
            i += 1  # the response token is dropped or replaced by the correction
        else:
            j += 1  # the correction has a token the response lacks
    matched = [False] * n
    missing = 0
    before = (-1, -1)
    for i, j in [*pairs, (n, m)]:  # each gap between matches, and after the last
        unmatched_response, unmatched_correction = i - before[0] - 1, j - before[1] - 1
        missing += max(0, unmatched_correction - unmatched_response)
        if i < n:
            matched[i] = True
        before = (i, j)
    return matched, missing


def lcs_match(response: Sequence[int], correction: Sequence[int]) -> list[bool]:
    """For each response token, whether ``align`` matches it."""
    return align(response, correction)[0]


@dataclass(frozen=True)
class TokenRewards:
    """Rewards of one response's tokens against a correction of it."""

    rewards: list[float]  # one per response token, +1 or -1
    missing: int  # correction tokens the response lacks
    correction: list[int]  # the greedy correction's token ids

    @property
    def sequence(self) -> float:
        """Mean over the alignment's columns (module docstring), in [-1, 1]."""
        columns = len(self.rewards) + self.missing
        if columns == 0:
            return 1.0
        return (sum(self.rewards) - self.missing) / columns


def token_rewards(response: Sequence[int], correction: Sequence[int]) -> TokenRewards:
    """+1 for each response token the correction keeps, -1 for each it does not."""
    matched, missing = align(response, correction)
    return TokenRewards([1.0 if m else -1.0 for m in matched], missing, list(correction))


class Seq2SeqRewardModel:
    """A trained correction model as a reward: ``reward(source, output, reference)``.

    The reference is not used: the reward model judges the output against its own
    correction, which is what lets it score answers to sources without a reference.
    """

    def __init__(
        self,
        network: torch.nn.Module,
        tokenizer: Tokenizer,
        separator: str = SEPARATOR,
        max_new_tokens: int = 128,
        batch_size: int = 64,
    ):
        self.network = network.eval()
        self.tokenizer = tokenizer
        self.separator = separator
        self.decode = DecodeConfig(max_new_tokens=max_new_tokens, batch_size=batch_size)

    @classmethod
    def load(cls, directory: str | Path, **options) -> Seq2SeqRewardModel:
        """A reward model from a seqweave model directory (``seqweave train``'s ``best``)."""
        directory = Path(directory)
        config = load_model_config(directory)
        network = build_model(config)
        load_weights(network, directory)
        options.setdefault("max_new_tokens", load_decode_config(directory).max_new_tokens)
        return cls(network, load_tokenizer(directory, config), **options)

    @torch.no_grad()
    def corrections(self, sources: Sequence[str], responses: Sequence[str]) -> list[list[int]]:
        """The greedy correction of each response, as target token ids."""
        config = self.network.config
        limit = max_source_tokens(config)
        texts = [rm_input(s, r, self.separator) for s, r in zip(sources, responses, strict=True)]
        ids = [frame_source(row, config, limit) for row in self.tokenizer.encode_batch(texts)]
        return [g.tokens for g in decode_many(self.network, ids, self.decode)]

    def score(self, sources: Sequence[str], responses: Sequence[str]) -> list[TokenRewards]:
        """Token rewards of each response (its tokens: ``tokenizer.encode(response)``)."""
        corrections = self.corrections(sources, responses)
        encoded = self.tokenizer.encode_batch(list(responses))
        return [token_rewards(y, c) for y, c in zip(encoded, corrections, strict=True)]

    def __call__(self, source: str, output: str, reference: str | None = None) -> float:
        return self.score([source], [output])[0].sequence


def reward_model_directory(config: object, what: str) -> str:
    """The model directory a reward builder is given: the ``reward_model`` field of the
    trainer's ``[rl]`` section, or the ``reward_model`` key of a mapping.

    Raises:
        ConfigError: none given; ``what`` names the reward in the message.
    """
    if isinstance(config, Mapping):
        directory = config.get("reward_model", "")
    else:
        directory = getattr(config, "reward_model", "")
    if not directory:
        raise ConfigError(f"the {what} reward needs rl.reward_model: its model directory")
    return str(directory)


def build_seq2seq_rm(config: object) -> Seq2SeqRewardModel:
    """The reward builder (``REWARDS``' protocol): the model from ``rl.reward_model``."""
    return Seq2SeqRewardModel.load(reward_model_directory(config, "seq2seq reward model"))
