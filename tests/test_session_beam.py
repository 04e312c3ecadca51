"""Beam search as grouped rows of a DecodeSession: a beam request is ``beam_size`` rows that
follow their beams together, sharing every pass with greedy and IAD rows. Its output is
standalone ``beam_search``'s, and the rows beside it still get greedy's tokens."""

from __future__ import annotations

import random

import pytest
import torch

from seqweave.config import DecodeConfig
from seqweave.decoding import DecodeSession, decode_batch
from seqweave.errors import ConfigError
from tests.conftest import MODEL_KINDS, edit_task_pair, random_sources, tiny_model
from tests.lossless import assert_lossless
from tests.test_session import run_to_end


def ending_model(kind: str = "transformer", eos_bias: float = 2.5):
    """A tiny model whose end token is likely enough that some rows end early."""
    model = tiny_model(**MODEL_KINDS[kind], final_logits_bias=True)
    model.final_logits_bias[model.config.eos_id] = eos_bias
    return model


def beam_config(width: int, **kw) -> DecodeConfig:
    return DecodeConfig(decoder="beam", beam_size=width, max_new_tokens=12, **kw)


def edit_sources(trained, architecture: str, count: int, seed: int) -> list[list[int]]:
    rng = random.Random(seed)
    texts = [edit_task_pair(rng)["source"] for _ in range(count)]
    return trained[architecture].encode_sources(texts)


@pytest.mark.parametrize("kind", [*MODEL_KINDS, "trained-transformer", "trained-prefix_lm"])
def test_beam_groups_sharing_passes_with_greedy_and_iad_rows_equal_standalone_beam(kind, request):
    """Beam groups of two widths and two length penalties join a running batch of greedy
    rows, IAD rows join later, a greedy row and a beam group leave early. Every beam request
    returns standalone beam search's tokens, finish and passes; every greedy/IAD row greedy's
    tokens for its source alone. On the trained models some beams end and some run out of
    budget, so both ways a search stops happen inside the session."""
    if kind.startswith("trained-"):
        trained = request.getfixturevalue("trained")
        architecture = kind.removeprefix("trained-")
        model = trained[architecture].network
        greedy_src, beam_src, iad_src = (
            edit_sources(trained, architecture, n, seed) for n, seed in ((4, 1), (5, 2), (3, 3))
        )
    else:
        model = ending_model(kind)
        gen = torch.Generator().manual_seed(3)
        greedy_src, beam_src, iad_src = (random_sources(gen, n) for n in (4, 5, 3))
    greedy = DecodeConfig(max_new_tokens=12)
    iad = DecodeConfig(decoder="iad", max_new_tokens=12, draft_len=4)
    wide, narrow = beam_config(3), beam_config(2, length_penalty=0.5, early_stopping=False)
    tokens: dict[int, list[int]] = {}
    finish: dict[int, str] = {}
    with torch.inference_mode():
        session = DecodeSession(model, greedy)
        greedy_ids = session.admit(greedy_src)
        for event in session.run_pass():
            tokens.setdefault(event.row, []).extend(event.tokens)
        settings = [wide, narrow, wide, narrow, wide]
        beam_ids = session.admit(beam_src, settings)
        assert session.size == len(greedy_src) + 3 * 3 + 2 * 2
        for _ in range(2):
            for event in session.run_pass():
                tokens.setdefault(event.row, []).extend(event.tokens)
                if event.finish is not None:
                    finish[event.row] = event.finish
        iad_ids = session.admit(iad_src, iad)
        gone = [greedy_ids[1], beam_ids[4]]
        session.retire(gone)
        run_to_end(session, tokens, finish)
    for source, row, config in zip(beam_src, beam_ids, settings, strict=True):
        if row in gone:
            assert row not in finish
            continue
        (alone,) = decode_batch(model, [source], config)
        assert tokens.get(row, []) == alone.tokens
        assert finish[row] == ("stop" if alone.finished else "length")
        assert session.stats[row] == alone.stats
    if kind.startswith("trained-"):
        assert {finish[row] for row in beam_ids if row not in gone} == {"stop", "length"}
    rowwise = list(zip(greedy_src + iad_src, greedy_ids + iad_ids, strict=True))
    for source, row in rowwise:
        if row not in gone:
            (alone,) = decode_batch(model, [source], greedy)
            assert_lossless(model, source, alone.tokens, tokens.get(row, []))
    assert sum(session.stats[row].drafted for row in iad_ids) > 0


def test_a_beam_group_streams_nothing_until_its_one_final_event():
    """A beam request's hypothesis may change until the search ends, so it reports once."""
    model = ending_model()
    sources = random_sources(torch.Generator().manual_seed(5), 3)
    with torch.inference_mode():
        session = DecodeSession(model, beam_config(3))
        rows = session.admit(sources)
        assert session.live == rows and session.size == 9
        seen: dict[int, int] = dict.fromkeys(rows, 0)
        while session:
            for event in session.run_pass():
                assert event.finish is not None
                seen[event.row] += 1
    assert all(count == 1 for count in seen.values())


def test_beam_of_width_one_in_a_session_equals_greedy():
    model = ending_model()
    sources = random_sources(torch.Generator().manual_seed(6), 5)
    reference = decode_batch(model, sources, DecodeConfig(max_new_tokens=12))
    with torch.inference_mode():
        session = DecodeSession(model)
        rows = session.admit(sources, beam_config(1))
        tokens: dict[int, list[int]] = {}
        run_to_end(session, tokens, {})
    for source, row, alone in zip(sources, rows, reference, strict=True):
        assert_lossless(model, source, alone.tokens, tokens.get(row, []))


def test_a_beam_group_without_budget_finishes_at_once_like_beam_search():
    model = ending_model()
    sources = random_sources(torch.Generator().manual_seed(7), 2)
    with torch.inference_mode():
        session = DecodeSession(model)
        rows = session.admit(sources, DecodeConfig(decoder="beam", beam_size=3, max_new_tokens=0))
        events = session.run_pass()
    assert [(e.row, e.tokens, e.finish) for e in events] == [(r, [], "length") for r in rows]
    assert not session


def test_a_session_refuses_a_beam_of_no_width_before_encoding():
    session = DecodeSession(tiny_model())
    with pytest.raises(ConfigError, match="beam_size"):
        session.admit([[5, 6, 2]], DecodeConfig(decoder="beam", beam_size=0))


def test_a_greedy_request_sent_while_a_long_beam_request_runs_finishes_first(one_torch_thread):
    """The server's engine: greedy requests queued after a beam request's first pass (from
    the engine's own pass hook, so no timing is involved) finish while the beam request,
    whose rows cannot end before their budget, is still decoding."""
    import threading

    from seqweave.api import Seq2Seq
    from seqweave.serve.engine import Engine, Job, Options

    model = tiny_model(final_logits_bias=True)
    model.final_logits_bias[model.config.eos_id] = -1e4  # no row ends before its budget
    sources = random_sources(torch.Generator().manual_seed(8), 5)
    engine = Engine(Seq2Seq(model, None, DecodeConfig()), max_batch=8)
    order: list[str] = []
    finished = threading.Semaphore(0)

    def sink(name: str):
        def collect(tokens: list[int], finish: str | None) -> None:
            if finish is not None:
                order.append(name)
                finished.release()

        return collect

    beam = Job(sources[0], Options(decoder="beam", beam_size=3, max_new_tokens=40), sink("beam"))
    greedy = [
        Job(source, Options(decoder="greedy", max_new_tokens=3), sink(f"greedy {i}"))
        for i, source in enumerate(sources[1:])
    ]

    def on_pass(rows: int, drafted: int, accepted: int) -> None:
        if engine.counters().passes == 1:  # the beam request is decoding: queue the others
            assert rows == 3
            engine.submit(greedy)

    engine.on_pass = on_pass
    engine.start()
    try:
        engine.submit([beam])
        for _ in range(1 + len(greedy)):
            assert finished.acquire(timeout=60)
    finally:
        engine.close(drain=False)
    assert order[-1] == "beam"
    assert beam.stats.passes == 40 and len(beam.tokens) == 40
