"""Reward models: the seq2seq RM's token rewards on hand-made corrections, the Bradley-Terry
loss against its definition and a brute-force likelihood, both models as rewards end to
end, and the preference reader's errors."""

from __future__ import annotations

import itertools
import math
from types import SimpleNamespace

import pytest
import torch

from seqweave.config import ModelConfig
from seqweave.config_rl import RLConfig
from seqweave.data.framing import frame_source
from seqweave.data.preferences import PreferencePair, read_preferences, write_preferences
from seqweave.errors import CheckpointError, ConfigError, DataError
from seqweave.rewards import build_reward
from seqweave.rewards.bradley_terry import (
    BradleyTerryTraining,
    bradley_terry_loss,
    build_bradley_terry,
    train_bradley_terry,
)
from seqweave.rewards.seq2seq_rm import (
    Seq2SeqRewardModel,
    build_seq2seq_rm,
    lcs_match,
    rm_input,
    rm_training_rows,
    token_rewards,
)
from seqweave.tokenizers.words import words_tokenizer

# (response, correction, token rewards, missing)
HAND_MADE = [
    ([1, 2, 3, 4], [1, 2, 3, 4], [1, 1, 1, 1], 0),  # agrees throughout
    ([1, 2, 9, 4], [1, 2, 3, 4], [1, 1, -1, 1], 0),  # one wrong token, then agrees again
    ([1, 2, 3, 4, 7, 7], [1, 2, 3, 4], [1, 1, 1, 1, -1, -1], 0),  # appended junk
    ([1, 3, 4], [1, 2, 3, 4], [1, 1, 1], 1),  # a token left out: missing, no token to blame
    ([9, 1, 2], [1, 2], [-1, 1, 1], 0),  # wrong from the first token, then re-synchronised
    ([5, 6], [1, 2], [-1, -1], 0),  # nothing in common: two replacements
    ([5, 6], [1, 2, 3], [-1, -1], 1),  # two replacements and one token missing
    ([], [1, 2], [], 2),
    ([1, 2], [], [-1, -1], 0),
    ([2, 1, 2], [1, 2, 1], [-1, 1, 1], 1),  # matched as soon as equal tokens meet
]


@pytest.mark.parametrize(("response", "correction", "rewards", "missing"), HAND_MADE)
def test_token_rewards_on_hand_made_cases(response, correction, rewards, missing):
    result = token_rewards(response, correction)
    assert result.rewards == rewards
    assert result.missing == missing
    matched = rewards.count(1)
    columns = len(rewards) + missing
    expected = (matched - rewards.count(-1) - missing) / columns if columns else 1.0
    assert result.sequence == pytest.approx(expected)


def longest_common_subsequence(a, b) -> int:
    """Brute force over the response's subsequences, for small cases."""
    for size in range(len(a), -1, -1):
        for kept in itertools.combinations(range(len(a)), size):
            rest = iter(b)
            if all(any(a[i] == x for x in rest) for i in kept):
                return size
    return 0


def test_matches_are_a_longest_common_subsequence_and_keep_the_common_prefix():
    generator = torch.Generator().manual_seed(0)
    for _ in range(200):
        n, m = torch.randint(0, 7, (2,), generator=generator).tolist()
        a = torch.randint(0, 3, (n,), generator=generator).tolist()
        b = torch.randint(0, 3, (m,), generator=generator).tolist()
        matched = lcs_match(a, b)
        assert sum(matched) == longest_common_subsequence(a, b)
        prefix = next((i for i, (x, y) in enumerate(zip(a, b, strict=False)) if x != y), min(n, m))
        assert all(matched[:prefix])


def test_sequence_reward_ranks_a_correct_answer_above_junk_truncation_and_errors():
    correction = [1, 2, 3, 4]
    correct = token_rewards([1, 2, 3, 4], correction).sequence
    for worse in ([1, 2, 3, 4, 5], [1, 2, 3], [1, 2, 7, 4], []):
        assert token_rewards(worse, correction).sequence < correct == 1.0


def test_bradley_terry_loss_is_the_negative_log_likelihood_of_the_preferences():
    chosen = torch.tensor([2.0, -1.0, 0.5])
    rejected = torch.tensor([1.0, 1.0, 0.5])
    expected = (
        -sum(
            math.log(1 / (1 + math.exp(-(c - r))))
            for c, r in zip(chosen.tolist(), rejected.tolist(), strict=True)
        )
        / 3
    )
    assert bradley_terry_loss(chosen, rejected).item() == pytest.approx(expected)
    # shifting both rewards changes nothing; a wider margin for the chosen one lowers the loss
    assert bradley_terry_loss(chosen + 5, rejected + 5).item() == pytest.approx(expected)
    assert bradley_terry_loss(chosen + 1, rejected).item() < expected
    assert bradley_terry_loss(torch.zeros(4), torch.zeros(4)).item() == pytest.approx(math.log(2))


def tiny_config(vocab_size: int, decoder_layers: int = 0) -> ModelConfig:
    return ModelConfig(
        vocab_size=vocab_size, d_model=16, num_heads=2, encoder_layers=1,
        decoder_layers=decoder_layers, ffn_dim=32, dropout=0.0, max_positions=32,
    )  # fmt: skip


PAIRS = [
    PreferencePair("3 1 2", "1 2 3", "1 2"),
    PreferencePair("2 1", "1 2", "1"),
    PreferencePair("1 3 2", "1 2 3", "1 3"),
    PreferencePair("3 2", "2 3", "2"),
]


def test_bradley_terry_learns_its_pairs_and_round_trips_through_a_directory(tmp_path):
    tokenizer = words_tokenizer(rm_input(p.source, p.chosen) for p in PAIRS)
    training = BradleyTerryTraining(steps=60, batch_size=4, lr=3e-3, seed=0)
    reward, losses = train_bradley_terry(
        PAIRS, tokenizer, tiny_config(tokenizer.vocab_size), training
    )
    assert sum(losses[-10:]) / 10 < 0.5 * losses[0]
    sources = [p.source for p in PAIRS]
    chosen = reward.score(sources, [p.chosen for p in PAIRS])
    rejected = reward.score(sources, [p.rejected for p in PAIRS])
    assert all(c > r for c, r in zip(chosen, rejected, strict=True))
    directory = reward.save(tmp_path / "bt")
    loaded = build_bradley_terry(SimpleNamespace(reward_model=str(directory)))  # an [rl] section
    named = build_reward(
        "bradley_terry", RLConfig(reward="bradley_terry", reward_model=str(directory))
    )
    assert named(PAIRS[1].source, PAIRS[1].chosen, "") == pytest.approx(chosen[1], abs=1e-6)
    assert loaded.score(sources, [p.chosen for p in PAIRS]) == pytest.approx(chosen, abs=1e-6)
    assert loaded(PAIRS[0].source, PAIRS[0].chosen) == pytest.approx(chosen[0], abs=1e-6)


def test_seq2seq_reward_model_scores_against_its_own_greedy_correction():
    from seqweave.decoding import decode_many
    from seqweave.models import build_model

    rows = rm_training_rows(PAIRS)
    assert rows[0] == {"source": "3 1 2 => 1 2", "target": "1 2 3"}
    assert rows[1] == {"source": "3 1 2 => 1 2 3", "target": "1 2 3"}
    tokenizer = words_tokenizer(r["source"] + " " + r["target"] for r in rows)
    torch.manual_seed(0)
    network = build_model(tiny_config(tokenizer.vocab_size, decoder_layers=1))
    rm = Seq2SeqRewardModel(network, tokenizer, max_new_tokens=6)
    sources, responses = ["3 1 2", "2 1"], ["1 2 3", "2 2 2 2"]
    scored = rm.score(sources, responses)
    # the reference: the untrained network's own greedy output, aligned by hand
    inputs = [
        frame_source(tokenizer.encode(rm_input(s, r)), network.config)
        for s, r in zip(sources, responses, strict=True)
    ]
    greedy = [g.tokens for g in decode_many(network, inputs, rm.decode)]
    for result, response, correction in zip(scored, responses, greedy, strict=True):
        assert result.correction == correction
        assert result == token_rewards(tokenizer.encode(response), correction)
    assert rm(sources[0], responses[0], "ignored") == scored[0].sequence


def test_preferences_round_trip_and_bad_lines_name_file_and_line(tmp_path):
    path = write_preferences(PAIRS, tmp_path / "pairs.jsonl")
    assert read_preferences(path) == PAIRS
    bad = tmp_path / "bad.jsonl"
    cases = {
        '{"source": "a", "chosen": "b"}': "missing field 'rejected'",
        '{"source": "a", "chosen": "b", "rejected": 3}': "'rejected' must be a string",
        '{"source": "a", "chosen": "b", "rejected": "b"}': "same text",
        "not json": "invalid JSON",
    }
    for line, message in cases.items():
        bad.write_text('{"source": "a", "chosen": "b", "rejected": "c"}\n\n' + line + "\n")
        with pytest.raises(DataError, match=message) as error:
            read_preferences(bad)
        assert "bad.jsonl" in str(error.value) and "3" in str(error.value)
    bad.write_text("\n \n")
    with pytest.raises(DataError, match="empty"):
        read_preferences(bad)


def test_builders_need_a_model_directory_and_refuse_the_wrong_kind(tmp_path):
    for build in (build_seq2seq_rm, build_bradley_terry):
        with pytest.raises(ConfigError, match=r"rl\.reward_model"):
            build(SimpleNamespace(reward_model=""))
    (tmp_path / "config.json").write_text('{"kind": "dna_encoder"}')
    with pytest.raises(CheckpointError, match="no Bradley-Terry"):
        build_bradley_terry({"reward_model": str(tmp_path)})
