"""The hierarchical NSE (models/hier_nse.py, models/nse.py) and its copy words
(data/copy_words.py): memory writes, masking, copying, and decoding through the seam."""

from __future__ import annotations

import pytest
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from seqweave.architectures import HierNSEConfig
from seqweave.config import DecodeConfig, ModelConfig
from seqweave.data.copy_words import (
    copy_ids,
    copy_tokenizer,
    mark_with,
    restore,
    split_sentences,
)
from seqweave.decoding import decode_batch
from seqweave.decoding.common import pad_batch
from seqweave.errors import ConfigError
from seqweave.models import build_model
from seqweave.models.hier_nse import sentence_layout
from seqweave.models.nse import attend, write
from tests.conftest import VOCAB, random_sources
from tests.lossless import assert_lossless

SENT, COPY0, SLOTS = 4, 5, 4  # <sent>, <copy0> .. <copy3>


def nse_model(seed: int = 0, copy_bias: float = 0.0, vocab: int = VOCAB, **nse):
    torch.manual_seed(seed)
    options = dict(copy_slots=SLOTS, sentence_len=4, sentence_id=SENT, copy_start=COPY0)
    cfg = ModelConfig(
        architecture="hier_nse",
        vocab_size=vocab,
        d_model=16,
        max_positions=64,
        hier_nse=HierNSEConfig(**{**options, **nse}),
    )
    model = build_model(cfg).eval()
    with torch.no_grad():
        model.switch.bias.fill_(-copy_bias)  # p_gen = sigmoid(... - copy_bias)
    return model


def marked_sources(generator: torch.Generator, count: int) -> list[list[int]]:
    """Random sources with sentence marks and copy slots, each ending with eos."""
    sources = []
    for ids in random_sources(generator, count, low=3, high=14):
        ids[0] = SENT
        if len(ids) > 6:
            ids[4] = SENT
        sources.append(ids)
    return sources


# -- the NSE memory ----------------------------------------------------------------------------


def test_a_one_hot_write_changes_only_that_slot_and_sets_it_to_h():
    generator = torch.Generator().manual_seed(0)
    memory = torch.randn(2, 5, 8, generator=generator)
    h = torch.randn(2, 8, generator=generator)
    z = torch.zeros(2, 5)
    z[0, 3] = z[1, 0] = 1.0
    written = write(memory, z, h)
    changed = (written != memory).any(-1)
    assert changed.tolist() == [
        [False, False, False, True, False],
        [True, False, False, False, False],
    ]
    torch.testing.assert_close(written[0, 3], h[0])
    torch.testing.assert_close(written[1, 0], h[1])
    half = write(memory, z * 0.5, h)  # and a partial write moves the slot halfway
    torch.testing.assert_close(half[0, 3], (memory[0, 3] + h[0]) / 2)


def test_padding_slots_get_exactly_no_attention():
    memory = torch.randn(3, 6, 4) * 10
    mask = torch.tensor([[True] * 6, [True, True, False, False, False, False], [False] * 6])
    z = attend(memory, torch.randn(3, 4), mask)
    assert bool((z[~mask] == 0).all())
    torch.testing.assert_close(z[:2].sum(-1), torch.ones(2))
    assert bool((z[2] == 0).all())  # a row with no real slot reads nothing


def test_padding_never_changes_the_outputs():
    """A row decoded beside longer rows (so padded, and with more sentence slots) gives the
    log-probabilities it gives alone."""
    model = nse_model(1)
    sources = marked_sources(torch.Generator().manual_seed(3), 4)
    src, lengths = pad_batch(sources, 0, torch.device("cpu"))
    target = torch.randint(6, VOCAB, (4, 5), generator=torch.Generator().manual_seed(1))
    with torch.no_grad():
        together = model(src, lengths, target)
        for b, source in enumerate(sources):
            alone = model(torch.tensor([source]), torch.tensor([len(source)]), target[b : b + 1])
            torch.testing.assert_close(together[b : b + 1], alone, atol=1e-5, rtol=0)


def test_sentence_layout_puts_each_sentence_in_its_own_slots():
    src = torch.tensor([[SENT, 10, 11, 12, 13, 14, SENT, 15, 2], [SENT, 20, 2, 0, 0, 0, 0, 0, 0]])
    ids, mask, counts = sentence_layout(src, torch.tensor([9, 3]), SENT, 4, 0)
    assert counts.tolist() == [3, 1]  # the 6-token sentence continues in a second slot
    assert ids[0].tolist() == [[SENT, 10, 11, 12], [13, 14, 0, 0], [SENT, 15, 2, 0]]
    assert ids[1, 0].tolist() == [SENT, 20, 2, 0]
    assert mask.sum().item() == 12


# -- copying -------------------------------------------------------------------------------------


def test_copy_slots_get_no_vocabulary_mass_and_copying_reads_the_attention():
    model = nse_model(2, copy_bias=-30.0)  # p_gen = 1: generation only
    src = torch.tensor([[SENT, COPY0, COPY0 + 1, 9, 2]])
    with torch.no_grad():
        log_probs = model(src, torch.tensor([5]), torch.tensor([[1, 9, 9]]))
    copy_ids_ = list(range(COPY0, COPY0 + SLOTS))
    assert float(log_probs[..., copy_ids_].exp().max()) < 1e-10
    model = nse_model(2, copy_bias=30.0)  # p_gen = 0: copying only
    with torch.no_grad():
        probs = model(src, torch.tensor([5]), torch.tensor([[1, 9, 9]])).exp()
    outside = torch.ones(VOCAB, dtype=torch.bool)
    outside[src[0]] = False
    assert float(probs[..., outside].max()) < 1e-10  # all mass on the source's own ids
    torch.testing.assert_close(probs.sum(-1), torch.ones(1, 3))


def test_copying_produces_source_words_that_are_out_of_the_vocabulary():
    texts = ["the model reads the text .", "the text is short .", "a model is a model ."]
    tokenizer = copy_tokenizer(texts, vocab_size=0, copy_slots=SLOTS)
    mark = mark_with(tokenizer, SLOTS)
    marked = mark("Zorblax quuxes the frobnicator.", "zorblax quuxes.")
    assert marked.unknown == ("zorblax", "quuxes", "frobnicator")
    assert marked.target == "<copy0> <copy1> ."
    for word in marked.unknown:
        assert tokenizer.token_to_id(word) is None
    settings_ = copy_ids(HierNSEConfig(copy_slots=SLOTS, sentence_len=8), tokenizer)
    assert (settings_.sentence_id, settings_.copy_start) == (4, 5)
    model = nse_model(3, copy_bias=30.0, vocab=tokenizer.vocab_size, **vars(settings_))
    source = [*tokenizer.encode(marked.source), tokenizer.eos_id]
    out = decode_batch(model, [source], DecodeConfig(max_new_tokens=6))[0].tokens
    words = restore(tokenizer.decode(out), marked.unknown).split()
    assert words and all(w in ("zorblax", "quuxes", "frobnicator", "the", ".") for w in words)
    assert any(w in marked.unknown for w in words)


def test_the_python_api_marks_plain_text_and_restores_copied_words():
    """``Seq2Seq.generate`` on plain text equals marking, decoding and restoring by hand,
    so a user hands a hier_nse model text like any other model's."""
    from seqweave.api import Seq2Seq

    texts = ["the model reads the text .", "the text is short ."]
    tokenizer = copy_tokenizer(texts, vocab_size=0, copy_slots=SLOTS)
    settings_ = copy_ids(HierNSEConfig(copy_slots=SLOTS, sentence_len=8), tokenizer)
    model = nse_model(3, copy_bias=30.0, vocab=tokenizer.vocab_size, **vars(settings_))
    api = Seq2Seq(model, tokenizer, DecodeConfig(max_new_tokens=6))
    plain = "Zorblax quuxes the frobnicator. The text is short."
    marked = mark_with(tokenizer, SLOTS)(plain)
    by_hand = restore(api.generate([marked.source])[0], marked.unknown)
    assert marked.unknown == ("zorblax", "quuxes", "frobnicator")
    assert api.generate([plain]) == [by_hand]


def test_mark_and_restore_round_trip_and_sentences_split():
    assert split_sentences("One two. Three (four). 5 six? e.g. seven") == [
        "one two .",
        "three ( four ) .",
        "5 six ? e . g . seven",
    ]
    tokenizer = copy_tokenizer(["a b c ."], vocab_size=0, copy_slots=2)
    marked = mark_with(tokenizer, 2)("A x y z. B x.", "x z w")
    assert marked.source == "<sent> a <copy0> <copy1> z . <sent> b <copy0> ."
    assert marked.target == "<copy0> z w"  # z had no slot left; w is not in the source
    assert restore(marked.source, marked.unknown) == "<sent> a x y z . <sent> b x ."


def test_hier_nse_settings_are_checked():
    with pytest.raises(ConfigError, match=r"model\.hier_nse"):
        ModelConfig(hier_nse=HierNSEConfig(copy_slots=3))
    with pytest.raises(ConfigError, match="sentence_len"):
        HierNSEConfig(sentence_len=0)
    plain = copy_tokenizer(["a b"], vocab_size=0, copy_slots=1)
    with pytest.raises(ConfigError, match=r"<copy0> \.\. <copy3>"):
        copy_ids(HierNSEConfig(copy_slots=4), plain)


# -- decoding through the decoder-state seam ----------------------------------------------------


def reference_greedy(model, source: list[int], max_new: int) -> list[int]:
    """Greedy by re-running the teacher-forced pass on the whole prefix at every step."""
    src, lengths = torch.tensor([source]), torch.tensor([len(source)])
    prefix = [model.config.decoder_start_id]
    out: list[int] = []
    with torch.no_grad():
        for _ in range(max_new):
            token = int(model(src, lengths, torch.tensor([prefix]))[0, -1].argmax())
            out.append(token)
            if token == model.config.eos_id:
                break
            prefix.append(token)
    return out


def test_greedy_through_the_seam_equals_the_step_by_step_reference():
    model = nse_model(4, copy_bias=2.0)
    sources = marked_sources(torch.Generator().manual_seed(5), 5)
    outputs = decode_batch(model, sources, DecodeConfig(max_new_tokens=12))
    for source, output in zip(sources, outputs, strict=True):
        expected = reference_greedy(model, source, 12)
        assert output.tokens == [t for t in expected if t != model.config.eos_id]


def test_rollback_then_step_equals_never_having_stepped_past_it():
    model = nse_model(5)
    sources = marked_sources(torch.Generator().manual_seed(6), 3)
    src, lengths = pad_batch(sources, 0, torch.device("cpu"))
    tokens = torch.randint(6, VOCAB, (3, 6), generator=torch.Generator().manual_seed(2))
    with torch.no_grad():
        fresh = model.start(model.encode(src, lengths))
        expected = model.step(fresh, tokens)
        state = model.start(model.encode(src, lengths), capacity=2)
        model.step(state, tokens[:, :5], torch.tensor([5, 3, 4]))
        model.rollback(state, torch.tensor([2, 1, 4]))
        feed = torch.stack([tokens[0, 2:4], tokens[1, 1:3], tokens[2, 4:6]])
        got = model.step(state, feed)
    torch.testing.assert_close(got[0], expected[0, 2:4])
    torch.testing.assert_close(got[1], expected[1, 1:3])
    torch.testing.assert_close(got[2], expected[2, 4:6])


def test_reorder_and_extend_keep_rows_as_if_decoded_alone():
    model = nse_model(6)
    sources = marked_sources(torch.Generator().manual_seed(7), 3)
    tokens = torch.randint(6, VOCAB, (3, 4), generator=torch.Generator().manual_seed(3))

    def alone(b: int):
        state = model.start(
            model.encode(torch.tensor([sources[b]]), torch.tensor([len(sources[b])]))
        )
        return model.step(state, tokens[b : b + 1])

    with torch.no_grad():
        src, lengths = pad_batch(sources[:2], 0, torch.device("cpu"))
        running = model.start(model.encode(src, lengths))
        first = model.step(running, tokens[:2, :2])
        model.reorder(running, torch.tensor([1]))
        newcomer = torch.tensor([sources[2]])
        joined = model.start(model.encode(newcomer, torch.tensor([len(sources[2])])))
        model.step(joined, tokens[2:, :2])
        running.extend(joined)
        rest = model.step(running, torch.stack([tokens[1, 2:], tokens[2, 2:]]))
        torch.testing.assert_close(first[1], alone(1)[0, :2], atol=1e-5, rtol=0)
        torch.testing.assert_close(rest[0], alone(1)[0, 2:], atol=1e-5, rtol=0)
        torch.testing.assert_close(rest[1], alone(2)[0, 2:], atol=1e-5, rtol=0)
        selected = model.start(model.encode(src, lengths).select(torch.tensor([1])))
        torch.testing.assert_close(model.step(selected, tokens[1:2]), alone(1), atol=1e-5, rtol=0)


@settings(
    max_examples=6, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(seed=st.integers(0, 10_000), batch=st.integers(1, 4), draft_len=st.integers(1, 8))
def test_iad_and_beam_one_give_greedy_tokens(seed, batch, draft_len, one_torch_thread):
    """IAD (drafts from the source, rolled back where rejected) and beam of width one return
    the greedy tokens on a copy-leaning NSE."""
    model = nse_model(seed % 3, copy_bias=3.0)
    sources = marked_sources(torch.Generator().manual_seed(seed), batch)
    greedy = [o.tokens for o in decode_batch(model, sources, DecodeConfig(max_new_tokens=12))]
    iad_cfg = DecodeConfig(decoder="iad", max_new_tokens=12, draft_len=draft_len)
    iad = [o.tokens for o in decode_batch(model, sources, iad_cfg)]
    beam_cfg = DecodeConfig(decoder="beam", beam_size=1, max_new_tokens=12)
    beam = [o.tokens for o in decode_batch(model, sources, beam_cfg)]
    for others in (iad, beam):
        for source, ref, got in zip(sources, greedy, others, strict=True):
            assert_lossless(model, source, ref, got)
