"""seqweave's seq2seq model as a next-event predictor: its distribution is the first
decoder step's, read the way decoding reads it, whatever the batch."""

from __future__ import annotations

import pytest
import torch

from seqweave.api import Seq2Seq
from seqweave.baselines import END, Seq2SeqNextEvent
from seqweave.config import DecodeConfig
from seqweave.tokenizers import words_tokenizer
from tests.conftest import tiny_model

pytestmark = pytest.mark.usefixtures("one_torch_thread")

PREFIXES = [["A"], ["A", "B"], ["C", "D", "A", "B", "B"], ["D"], ["B", "C", "C"]]


def _model(seed: int = 0) -> Seq2Seq:
    tokenizer = words_tokenizer(["A B C D", "A B", "C D"])
    network = tiny_model(seed, vocab_size=tokenizer.vocab_size)
    return Seq2Seq(network, tokenizer, DecodeConfig(max_new_tokens=8))


def _incremental(model: Seq2Seq, prefix: list[str]) -> dict[str, float]:
    """The reference: one prefix alone through encode / start / step (the cached path
    greedy decoding takes), softmax over the activity tokens and end of sequence."""
    network, config, tokenizer = model.network, model.config, model.tokenizer
    ids = model.encode_sources([" ".join(prefix)])[0]
    with torch.no_grad():
        memory = network.encode(torch.tensor([ids]), torch.tensor([len(ids)]))
        state = network.start(memory)
        logits = network.step(state, torch.tensor([[config.decoder_start_id]]))[0, -1]
    names = ["A", "B", "C", "D"]
    chosen = [tokenizer.token_to_id(n) for n in names] + [config.eos_id]
    probabilities = logits[chosen].softmax(-1).tolist()
    return dict(zip([*names, END], probabilities, strict=True))


def test_the_distribution_is_the_first_decoder_steps_over_events_and_end() -> None:
    model = _model()
    predictor = Seq2SeqNextEvent(model, batch_size=2)  # several batches, padded rows
    batched = predictor.predict_proba_batch(PREFIXES)
    for prefix, distribution in zip(PREFIXES, batched, strict=True):
        reference = _incremental(model, prefix)
        assert set(distribution) == set(reference)
        assert sum(distribution.values()) == pytest.approx(1.0)
        for event, probability in reference.items():
            assert distribution[event] == pytest.approx(probability, abs=1e-5), (prefix, event)


def test_one_prefix_at_a_time_gives_what_the_batch_gives() -> None:
    batched = Seq2SeqNextEvent(_model(1), batch_size=256).predict_proba_batch(PREFIXES)
    alone = Seq2SeqNextEvent(_model(1))
    for prefix, distribution in zip(PREFIXES, batched, strict=True):
        single = alone.predict_proba(prefix)
        assert single == pytest.approx(distribution, abs=1e-5)


def test_it_does_not_pretend_to_fit() -> None:
    with pytest.raises(TypeError, match=r"seqweave\.train"):
        Seq2SeqNextEvent(_model()).fit([["A", "B"]])
