"""DecodeSession: rows that join a running batch or leave it early decode as they would alone,
and the decoders' table is the one list every caller takes its decoders from."""

from __future__ import annotations

from typing import get_args

import pytest
import torch

from seqweave.config import DecodeConfig
from seqweave.decoding import DECODERS, DecodeSession, decode_batch
from seqweave.decoding.aggressive import SourceDrafter
from seqweave.decoding.registry import DECODER_SPECS, check_decoder
from seqweave.errors import ConfigError
from tests.conftest import MODEL_KINDS, random_sources, tiny_model
from tests.lossless import assert_lossless


def run_to_end(session: DecodeSession, tokens: dict[int, list[int]], finish: dict[int, str]):
    """Drain a session, gathering each row's streamed tokens and finish reason."""
    while session:
        for event in session.run_pass():
            tokens.setdefault(event.row, []).extend(event.tokens)
            if event.finish is not None:
                assert event.row not in finish, "a row finished twice"
                finish[event.row] = event.finish


@pytest.mark.parametrize("kind", MODEL_KINDS)
def test_rows_joining_a_running_batch_decode_as_alone(kind):
    """Greedy rows start; two passes later IAD rows join. Every row's tokens are greedy's
    for its source alone, and its counters are those of its own passes."""
    model = tiny_model(**MODEL_KINDS[kind])
    first = random_sources(torch.Generator().manual_seed(1), 5)
    later = random_sources(torch.Generator().manual_seed(2), 4)
    greedy = DecodeConfig(max_new_tokens=12)
    iad = DecodeConfig(decoder="iad", max_new_tokens=12, draft_len=4)
    with torch.inference_mode():
        session = DecodeSession(model, greedy)
        first_ids = session.admit(first)
        tokens: dict[int, list[int]] = {}
        finish: dict[int, str] = {}
        for _ in range(2):
            for event in session.run_pass():
                tokens.setdefault(event.row, []).extend(event.tokens)
        later_ids = session.admit(later, iad)
        run_to_end(session, tokens, finish)
    alone = decode_batch(model, first, greedy) + decode_batch(model, later, greedy)
    for source, row, reference in zip(first + later, first_ids + later_ids, alone, strict=True):
        assert_lossless(model, source, reference.tokens, tokens.get(row, []))
        assert finish[row] == ("stop" if reference.finished else "length")
    for row in first_ids:  # greedy: one pass per token taken, the end token included
        assert session.stats[row].passes == len(tokens[row]) + (finish[row] == "stop")
        assert session.stats[row].drafted == 0
    assert sum(session.stats[row].drafted for row in later_ids) > 0


@pytest.mark.parametrize("decoder", ["iad", "spec", "gad"])
def test_parked_rows_and_groups_merged_into_one_drafter_decode_as_alone(decoder):
    """The server's way: three groups join at different passes (one drafter for all, by
    ``extend``), finished and retired rows park until half are parked. Every row that
    was not retired gets greedy's tokens for its source alone."""
    model = tiny_model()
    draft = {
        "spec": tiny_model(seed=5),
        "gad": tiny_model(seed=7, architecture="nar_drafter", draft_block=4),
    }.get(decoder)
    groups = [random_sources(torch.Generator().manual_seed(10 + g), 4) for g in range(3)]
    greedy = DecodeConfig(max_new_tokens=12)
    tokens: dict[int, list[int]] = {}
    finish: dict[int, str] = {}
    ids = []
    with torch.inference_mode():
        session = DecodeSession(model, greedy, draft, park=True)
        for sources in groups:
            ids.append(session.admit(sources, DecodeConfig(decoder=decoder, max_new_tokens=12)))
            for event in session.run_pass():
                tokens.setdefault(event.row, []).extend(event.tokens)
                if event.finish is not None:
                    finish[event.row] = event.finish
        session.retire([ids[0][1]])
        run_to_end(session, tokens, finish)
    for sources, rows in zip(groups, ids, strict=True):
        references = decode_batch(model, sources, greedy)
        for source, row, reference in zip(sources, rows, references, strict=True):
            if row != ids[0][1]:
                assert_lossless(model, source, reference.tokens, tokens[row])
    assert ids[0][1] not in finish
    assert sum(session.stats[row].drafted for rows in ids for row in rows) > 0


def test_retired_rows_stop_and_the_others_go_on_unchanged():
    model = tiny_model()
    sources = random_sources(torch.Generator().manual_seed(3), 6)
    cfg = DecodeConfig(decoder="iad", max_new_tokens=10, draft_len=3)
    reference = decode_batch(model, sources, cfg)
    with torch.inference_mode():
        session = DecodeSession(model, cfg)
        ids = session.admit(sources)
        tokens: dict[int, list[int]] = {}
        for event in session.run_pass():
            tokens.setdefault(event.row, []).extend(event.tokens)
        gone = [ids[1], ids[4]]
        passes = {row: session.stats[row].passes for row in gone}
        session.retire(gone)
        assert not set(gone) & set(session.live)
        finish: dict[int, str] = {}
        run_to_end(session, tokens, finish)
    assert not set(gone) & set(finish)
    assert all(session.stats[row].passes == passes[row] for row in gone)
    for b, row in enumerate(ids):
        if row not in gone:
            assert tokens[row] == reference[b].tokens
            assert session.stats[row] == reference[b].stats


def test_rows_without_budget_finish_at_the_first_pass_without_a_pass():
    model = tiny_model()
    sources = random_sources(torch.Generator().manual_seed(4), 3)
    with torch.inference_mode():
        session = DecodeSession(model, DecodeConfig(max_new_tokens=0))
        ids = session.admit(sources)
        assert session and not session.live
        events = session.run_pass()
    assert [(e.row, e.tokens, e.finish) for e in events] == [(row, [], "length") for row in ids]
    assert not session and all(session.stats[row].passes == 0 for row in ids)


def test_a_session_refuses_a_second_acceptance_rule():
    model = tiny_model()
    session = DecodeSession(model, DecodeConfig())
    with pytest.raises(ConfigError, match="acceptance"):
        session.admit([[5, 6, 2]], DecodeConfig(decoder="iad", relaxed_top=2, relaxed_gap=1.0))


def test_an_unknown_decoder_fails_when_the_config_is_built_naming_the_valid_ones():
    with pytest.raises(ConfigError, match="unknown decoder 'magic'; valid decoders: greedy, "):
        DecodeConfig(decoder="magic")


def test_the_table_is_the_one_list_of_decoders():
    from seqweave.serve.schemas import Decoder

    assert tuple(DECODER_SPECS) == DECODERS
    assert get_args(Decoder) == DECODERS
    for name, spec in DECODER_SPECS.items():
        if spec.draft_model == "none":
            assert check_decoder(name) is spec
        else:
            with pytest.raises(ConfigError, match="draft model"):
                check_decoder(name)
    lossless_drafting = {n for n, s in DECODER_SPECS.items() if s.drafts and s.lossless}
    assert lossless_drafting == {"iad", "spec", "gad"}


def test_an_extended_source_drafter_drafts_the_joined_rows_as_their_own_drafter():
    """Joined rows are keyed after the old ones; their drafts follow their own sources."""
    old = random_sources(torch.Generator().manual_seed(20), 3)
    new = random_sources(torch.Generator().manual_seed(21), 4)
    alone = SourceDrafter(new, draft_len=4, tokens_per_pass=1000)
    merged = SourceDrafter(old, draft_len=4, tokens_per_pass=1000)
    merged.extend(SourceDrafter(new, draft_len=4, tokens_per_pass=1000))
    rows = list(range(len(new)))
    generated: list[list[int]] = [[] for _ in new]
    for accepted in ([1, 0, 2, 4], [0, 3, 1, 0]):
        room = [8] * len(new)
        drafts = alone.propose(rows, generated, room)
        assert merged.propose([len(old) + b for b in rows], generated, room) == drafts
        next_tokens = [source[-1] for source in new]
        alone.observe(accepted, next_tokens)
        merged.observe(accepted, next_tokens)
        for out, draft, taken, token in zip(generated, drafts, accepted, next_tokens, strict=True):
            out.extend([*draft[:taken], token])


def test_drafts_reach_their_own_rows_when_groups_interleave_and_join_later():
    """The draft model is the model itself, so a draft that reaches its own row is accepted
    whole; one that reached another row would be refused. Groups interleave in one admit
    and join a running, parked batch later."""
    model = tiny_model()
    sources = random_sources(torch.Generator().manual_seed(30), 9)
    first, second = DecodeConfig(decoder="spec"), DecodeConfig(decoder="spec")
    with torch.inference_mode():
        session = DecodeSession(model, DecodeConfig(), model, park=True)
        rows = session.admit(sources[:5], [first, second, first, second, first])
        session.run_pass()
        rows += session.admit(sources[5:], DecodeConfig(decoder="spec", max_new_tokens=9))
        run_to_end(session, {}, {})
    stats = [session.stats[row] for row in rows]
    assert sum(s.drafted for s in stats) > len(rows)
    assert [s.accepted for s in stats] == [s.drafted for s in stats]


def test_events_count_the_accepted_draft_tokens_they_lead_with():
    """With the model as its own draft model every draft token is accepted, so each event of
    a spec row leads with its whole draft and ends with the model's own token; greedy rows
    draft nothing. Over a row, the drafted tokens of its events are its accepted count
    (less any cut by the end token or the budget)."""
    model = tiny_model()
    sources = random_sources(torch.Generator().manual_seed(40), 6)
    spec = DecodeConfig(decoder="spec", max_new_tokens=10, draft_k=3)
    greedy = DecodeConfig(max_new_tokens=10)
    with torch.inference_mode():
        session = DecodeSession(model, greedy, model)
        rows = session.admit(sources, [spec, spec, spec, greedy, greedy, greedy])
        drafted = dict.fromkeys(rows, 0)
        while session:
            for event in session.run_pass():
                drafted[event.row] += event.drafted
                assert 0 <= event.drafted <= len(event.tokens)
                if event.finish is None:  # nothing cut: the draft, then the model's token
                    is_spec = rows.index(event.row) < 3
                    assert event.drafted == (len(event.tokens) - 1 if is_spec else 0)
    for row in rows:
        assert drafted[row] <= session.stats[row].accepted
    assert all(drafted[row] == 0 for row in rows[3:])
    assert sum(drafted[row] for row in rows[:3]) > 0
