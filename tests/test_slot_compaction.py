"""Hole compaction in the slot cache: when a row leaves from the middle and no new row takes
its slot, the last live row moves into the hole, so a pass runs over the live rows only.
Rows that are moved decode exactly as they would alone (greedy, IAD, the draft-model
drafters whose state follows their own row order, beam groups whose beams are moved), and
the pool is never reallocated. Outputs are checked on the small trained models
(``conftest.trained``), whose outputs follow their sources, so a row that attended to
another row's memory after a move would show."""

from __future__ import annotations

import contextlib
import dataclasses
import random

import pytest
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from seqweave.config import DecodeConfig
from seqweave.decoding import DecodeSession, decode_batch
from seqweave.decoding.slots import slot_pool
from tests.conftest import edit_task_pair, random_sources, tiny_model
from tests.lossless import assert_lossless

ROWS = 10  # slots in every pool here


@contextlib.contextmanager
def recording(model):
    """Record the rows of every decoder pass ``model`` runs (its ``step`` and, for passes
    that read only the argmax, ``step_argmax`` calls); the model's own methods are back
    afterwards (the trained models are shared)."""
    seen: list[int] = []
    names = [name for name in ("step", "step_argmax") if hasattr(model, name)]

    def record(method):
        def recorded(state, tokens, *args, **kwargs):
            seen.append(int(tokens.shape[0]))
            return method(state, tokens, *args, **kwargs)

        return recorded

    for name in names:
        setattr(model, name, record(getattr(model, name)))
    try:
        yield seen
    finally:
        for name in names:
            delattr(model, name)


class Driver:
    """A slot session with a record of every row's tokens and finish, and of the live rows
    before each pass beside the rows the pass ran over."""

    def __init__(self, model, widths: list[int], draft=None):
        self.model = model
        self.pool = slot_pool(model, rows=ROWS, max_source=24, max_new_tokens=40)
        self.storage = [t.data_ptr() for t in self.pool.keys + self.pool.cross_keys]
        self.session = DecodeSession(model, DecodeConfig(), draft, slots=self.pool)
        self.widths = widths
        self.tokens: dict[int, list[int]] = {}
        self.finish: dict[int, str] = {}
        self.expected_widths: list[int] = []

    def admit(self, sources, config: DecodeConfig) -> list[int]:
        ids = self.session.admit(sources, config)
        for row in ids:
            self.tokens[row] = []
        return ids

    def run_pass(self) -> None:
        before = len(self.widths)
        live = self.session.size
        for event in self.session.run_pass():
            self.tokens[event.row].extend(event.tokens)
            if event.finish is not None:
                assert event.row not in self.finish, "a row finished twice"
                self.finish[event.row] = event.finish
        if live and len(self.widths) > before:
            # the target's pass is the first step of run_pass (a drafter's come before it,
            # on its own model): it runs over the live rows, no hole
            self.expected_widths.append(live)

    def verify_passes(self) -> None:
        """Every pass ran over exactly the rows live before it, and the pool never moved."""
        assert self.widths == self.expected_widths
        assert [t.data_ptr() for t in self.pool.keys + self.pool.cross_keys] == self.storage


def reference(model, source: list[int], config: DecodeConfig) -> list[int]:
    """The row decoded alone: greedy for the lossless decoders, beam search for beams."""
    alone = (
        config if config.decoder == "beam" else DecodeConfig(max_new_tokens=config.max_new_tokens)
    )
    with torch.inference_mode():
        (generation,) = decode_batch(model, [source], alone)
    return generation.tokens


def check_outputs(model, driver: Driver, rows: dict[int, tuple[list[int], DecodeConfig]]):
    """Finished rows equal their one-by-one reference; retired ones hold a prefix of it."""
    for row, (source, config) in rows.items():
        expected = reference(model, source, config)
        got = driver.tokens[row]
        if row in driver.finish:
            if config.decoder == "beam":
                assert got == expected
            else:
                assert_lossless(model, source, expected, got)
        else:  # retired while decoding
            assert_lossless(model, source, expected[: len(got)], got)


def greedy(tokens: int) -> DecodeConfig:
    return DecodeConfig(max_new_tokens=tokens)


def iad(tokens: int) -> DecodeConfig:
    return DecodeConfig(decoder="iad", max_new_tokens=tokens, draft_len=4)


def sources_of(model, count: int, rng: random.Random) -> list[list[int]]:
    """Edit-task sources (3 to 16 letters) in the trained model's token ids."""
    return model.encode_sources([edit_task_pair(rng)["source"] for _ in range(count)])


def test_a_pass_after_a_leave_runs_over_the_live_rows_only():
    """Five rows, the second and fourth with budgets of 1 and 3 tokens: after each leaves,
    the next pass runs over the rows still live, and the moved last row decodes on."""
    model = tiny_model(final_logits_bias=True)
    model.final_logits_bias[model.config.eos_id] = -20.0  # every row runs to its budget
    sources = random_sources(torch.Generator().manual_seed(21), 5)
    budgets = [12, 1, 12, 3, 12]
    configs = [greedy(b) for b in budgets]
    with torch.inference_mode(), recording(model) as widths:
        driver = Driver(model, widths)
        ids = [driver.admit([s], c)[0] for s, c in zip(sources, configs, strict=True)]
        while driver.session:
            driver.run_pass()
        assert widths == [5, 4, 4, *[3] * 9]
        driver.verify_passes()
    check_outputs(model, driver, dict(zip(ids, zip(sources, configs, strict=True), strict=True)))
    assert [len(driver.tokens[row]) for row in ids] == budgets


@pytest.mark.parametrize("kind", ["transformer", "prefix_lm"])
@pytest.mark.parametrize("make", [greedy, iad], ids=["greedy", "iad"])
def test_rows_finishing_apart_and_joining_decode_as_alone(kind, make, trained):
    """Rows of very different lengths (budgets of 2 to 40 tokens, and their own end tokens)
    finish apart; new rows join while others leave. Every row's tokens are its tokens
    alone, and every pass runs over the live rows only."""
    model = trained[kind].network
    rng = random.Random(22)
    rows: dict[int, tuple[list[int], DecodeConfig]] = {}
    waves = [[2, 40, 5, 30, 3, 40], [4, 25], [40, 2, 9]]
    with torch.inference_mode(), recording(model) as widths:
        driver = Driver(model, widths)
        for wave in waves:
            sources = sources_of(trained[kind], len(wave), rng)
            configs = [make(budget) for budget in wave]
            ids = driver.admit(sources, configs)
            rows.update(zip(ids, zip(sources, configs, strict=True), strict=True))
            for _ in range(3):
                driver.run_pass()
        while driver.session:
            driver.run_pass()
        driver.verify_passes()
    assert set(driver.finish) == set(rows)
    check_outputs(model, driver, rows)
    assert min(widths) < max(widths)  # rows did leave mid-batch


def test_a_moved_row_keeps_its_place_in_a_draft_model(trained, trained_dirs):
    """Speculative rows whose draft model is the target itself: every draft is the
    target's own continuation, so every drafted token is accepted only if the drafter
    still drafts for the right row after rows moved into holes."""
    import seqweave

    model = trained["transformer"].network
    draft = seqweave.load(trained_dirs["transformer"]).network
    rng = random.Random(23)
    config = DecodeConfig(decoder="spec", max_new_tokens=40)
    sources = sources_of(trained["transformer"], 8, rng)
    configs = [dataclasses.replace(config, max_new_tokens=b) for b in (3, 40, 6, 40, 2, 40, 9, 40)]
    with torch.inference_mode(), recording(model) as widths:
        driver = Driver(model, widths, draft)
        ids = driver.admit(sources, configs)
        while driver.session:
            driver.run_pass()
        driver.verify_passes()
    check_outputs(model, driver, dict(zip(ids, zip(sources, configs, strict=True), strict=True)))
    stats = [driver.session.stats[row] for row in ids]
    assert sum(s.drafted for s in stats) > 0
    assert [s.accepted for s in stats] == [s.drafted for s in stats]
    assert min(widths) < len(ids)


OPERATIONS = st.lists(
    st.one_of(
        st.tuples(
            st.just("admit"),
            st.integers(1, 3),
            st.sampled_from(["greedy", "iad", "spec", "beam"]),
            st.integers(1, 30),
        ),
        st.tuples(st.just("pass"), st.integers(1, 4)),
        st.tuples(st.just("retire"), st.integers(0, 1000)),
    ),
    min_size=1,
    max_size=10,
)
DRAFT_OF = {"transformer": "prefix_lm", "prefix_lm": "transformer"}  # same tokenizer


@pytest.mark.parametrize("kind", ["transformer", "prefix_lm"])
@settings(
    max_examples=12,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(operations=OPERATIONS, seed=st.integers(0, 2**16))
def test_random_admit_and_leave_orders_decode_as_alone(
    kind, operations, seed, trained, one_torch_thread
):
    """Any order of admissions (greedy, IAD, speculative, beam rows), passes and cancels:
    each row's tokens are its tokens alone (a cancelled row's a prefix of them), and each
    pass runs over the live rows only."""
    model = trained[kind].network
    rng = random.Random(seed)
    rows: dict[int, tuple[list[int], DecodeConfig]] = {}
    with torch.inference_mode(), recording(model) as widths:
        driver = Driver(model, widths, trained[DRAFT_OF[kind]].network)
        for operation, *args in operations:
            if operation == "admit":
                count, decoder, budget = args
                config = DecodeConfig(decoder=decoder, max_new_tokens=budget, beam_size=2)
                width = count * (2 if decoder == "beam" else 1)
                if driver.session.size + width > ROWS:
                    continue
                sources = sources_of(trained[kind], count, rng)
                ids = driver.admit(sources, config)
                rows.update(
                    (row, (source, config)) for row, source in zip(ids, sources, strict=True)
                )
            elif operation == "pass":
                for _ in range(args[0]):
                    driver.run_pass()
            elif driver.session.live:
                live = driver.session.live
                driver.session.retire([live[args[0] % len(live)]])
        while driver.session:
            driver.run_pass()
        driver.verify_passes()
    check_outputs(model, driver, rows)
