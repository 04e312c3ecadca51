"""The serving session's slot cache: rows join and leave a preallocated pool by slot index.
Decoding through slots equals decoding through the growing cache token for token, the pool
never grows, and its reported bound is what it allocated."""

from __future__ import annotations

import pytest
import torch

from seqweave.config import DecodeConfig
from seqweave.decoding import DecodeSession
from seqweave.decoding.slots import slot_pool
from tests.conftest import MODEL_KINDS, random_sources, tiny_model
from tests.lossless import assert_lossless

GREEDY = DecodeConfig(max_new_tokens=14)
IAD = DecodeConfig(decoder="iad", max_new_tokens=14, draft_len=5)
BEAM = DecodeConfig(decoder="beam", beam_size=2, max_new_tokens=14)


def schedule(session: DecodeSession, waves: list[tuple[list[list[int]], DecodeConfig]]):
    """Admit a wave, run two passes, retire the wave's second row, admit the next wave...;
    then run to the end. Returns each pass's events as sorted (row, tokens, finish) (the
    order of rows within a pass is the state's, which slots change), and each wave's ids."""
    events, ids = [], []
    with torch.inference_mode():
        for sources, settings in waves:
            ids.append(session.admit(sources, settings))
            for _ in range(2):
                events.append(sorted((e.row, e.tokens, e.finish) for e in session.run_pass()))
            session.retire([ids[-1][1]])
        while session:
            events.append(sorted((e.row, e.tokens, e.finish) for e in session.run_pass()))
    return events, ids


@pytest.mark.parametrize("kind", MODEL_KINDS)
def test_slots_decode_token_for_token_as_the_growing_cache(kind):
    """The same waves of greedy, IAD and beam rows, joining and leaving, through the slot
    pool and through the growing, compacting cache: the same events at the same passes."""
    model = tiny_model(**MODEL_KINDS[kind], final_logits_bias=True)
    model.final_logits_bias[model.config.eos_id] = 2.5  # some rows end early: holes
    gen = torch.Generator().manual_seed(11)
    waves = [
        (random_sources(gen, 4), GREEDY),
        (random_sources(gen, 3), IAD),
        (random_sources(gen, 2), BEAM),
        (random_sources(gen, 5), IAD),
        (random_sources(gen, 3), GREEDY),
    ]
    growing, _ = schedule(DecodeSession(model, GREEDY, park=True), waves)
    pool = slot_pool(model, rows=16, max_source=16, max_new_tokens=14)
    slotted = DecodeSession(model, GREEDY, slots=pool)
    through_slots, ids = schedule(slotted, waves)
    assert through_slots == growing
    assert sum(slotted.stats[row].drafted for row in ids[1]) > 0
    assert slotted.size == 0


def test_rows_that_join_take_the_holes_and_the_pool_is_never_copied():
    model = tiny_model()
    pool = slot_pool(model, rows=8, max_source=16, max_new_tokens=20)
    storage = [k.data_ptr() for k in pool.keys + pool.cross_keys]
    session = DecodeSession(model, DecodeConfig(max_new_tokens=20), slots=pool)
    gen = torch.Generator().manual_seed(12)
    with torch.inference_mode():
        first = session.admit(random_sources(gen, 6))
        session.run_pass()
        session.retire([first[1], first[3]])
        assert session._state.batch_size == 6  # holes stay until something fills them
        session.retire([first[5]])
        assert session._state.batch_size == 5  # the view ends after the last live row
        later = session.admit(random_sources(gen, 3))
        assert session._state.batch_size == 6  # two holes, then the next slot
        assert [row.id for row in session._rows] == [
            first[0],
            later[0],
            first[2],
            later[1],
            first[4],
            later[2],
        ]
        session.run_pass()
        with pytest.raises(RuntimeError, match="slots"):
            session.admit(random_sources(gen, 3))
    assert [k.data_ptr() for k in pool.keys + pool.cross_keys] == storage
    assert session._state.keys[0].data_ptr() == pool.keys[0].data_ptr()


@pytest.mark.parametrize("kind", MODEL_KINDS)
def test_the_bound_is_what_the_pool_allocated(kind):
    """rows x (prefix + output + headroom) cache slots of keys and values per decoder layer,
    plus rows x source positions of cross-attention keys and values where the model has
    them, in float32."""
    from seqweave.models.state import HEADROOM

    model = tiny_model(**MODEL_KINDS[kind])
    cfg = model.config
    pool = slot_pool(model, rows=5, max_source=30, max_new_tokens=40)
    prefix = 30 if cfg.architecture == "prefix_lm" else 0
    self_attention = 2 * cfg.decoder_layers * 5 * (prefix + 40 + HEADROOM) * cfg.d_model
    cross = 2 * len(pool.cross_keys) * 5 * 30 * cfg.d_model
    if cfg.architecture == "transformer" or cfg.partial_attention:
        assert pool.cross_keys
    assert pool.nbytes == 4 * (self_attention + cross)
    allocated = pool.keys + pool.values + pool.cross_keys + pool.cross_values
    assert pool.nbytes == sum(t.untyped_storage().nbytes() for t in allocated)


def test_requests_beyond_the_slots_wait_and_all_get_their_outputs(one_torch_thread, caplog):
    """An engine of two slots given seven requests (a two-row beam among them) at once: they
    queue, take slots as others leave, and each gets what it gets alone. The cache's size is
    logged when the engine is built."""
    import logging
    import threading

    from seqweave.api import Seq2Seq
    from seqweave.decoding import decode_batch
    from seqweave.serve.engine import Engine, Job, Options

    model = tiny_model(final_logits_bias=True)
    model.final_logits_bias[model.config.eos_id] = 2.5
    sources = random_sources(torch.Generator().manual_seed(13), 7)
    with caplog.at_level(logging.INFO, logger="seqweave.serve"):
        engine = Engine(Seq2Seq(model, None, DecodeConfig()), max_batch=2, max_new_tokens=14)
    assert f"= {engine.cache_bytes / 2**20:.1f} MiB" in caplog.text
    results: dict[int, list[int]] = {i: [] for i in range(len(sources))}
    finishes: dict[int, str] = {}
    done = threading.Semaphore(0)

    def sink(i: int):
        def collect(tokens: list[int], finish: str | None) -> None:
            results[i].extend(tokens)
            if finish is not None:
                finishes[i] = finish
                done.release()

        return collect

    options = [Options(decoder="iad" if i % 2 else "greedy", max_new_tokens=14) for i in range(7)]
    options[3] = Options(decoder="beam", beam_size=2, max_new_tokens=14)
    jobs = [Job(s, o, sink(i)) for i, (s, o) in enumerate(zip(sources, options, strict=True))]
    engine.start()
    try:
        engine.submit(jobs)
        for _ in jobs:
            assert done.acquire(timeout=60)
    finally:
        engine.close(drain=False)
    assert "error" not in finishes.values()
    for i, (source, option) in enumerate(zip(sources, options, strict=True)):
        settings = DecodeConfig(decoder=option.decoder, beam_size=2, max_new_tokens=14)
        (alone,) = decode_batch(model, [source], settings)
        if option.decoder == "beam":
            assert results[i] == alone.tokens
        else:
            assert_lossless(model, source, alone.tokens, results[i])
