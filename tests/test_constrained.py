"""Constrained decoding: every decoder returns constrained greedy's tokens, computed live
by an uncached reference loop that masks the logits itself; drafts the grammar forbids
are rejected; the grammars write only what parses."""

from __future__ import annotations

import random

import pytest
import torch

from seqweave.config import DecodeConfig
from seqweave.data.digits import parse_fixed, parse_indices
from seqweave.decoding import decode_batch
from seqweave.decoding.common import RowStats, length_budget, pad_batch
from seqweave.decoding.constraint import allowed_row
from seqweave.decoding.grammars import build_constraint
from seqweave.decoding.session import DecodeSession, Group
from seqweave.errors import ConfigError
from seqweave.lossless import TIE_TOLERANCE, first_difference
from seqweave.tokenizers import alphabet_tokenizer
from tests.conftest import MODEL_KINDS, VOCAB, tiny_model

RESIDUES = "ACDEFGHIKLMNPQRSTVWYX"
TASKS = ("<task=ss>", "<task=fitness>", "<task=helix_starts>")
BUDGET = 24

pytestmark = pytest.mark.usefixtures("one_torch_thread")


@pytest.fixture(scope="module")
def tokenizer():
    tok = alphabet_tokenizer(RESIDUES + "0123456789.,-")
    tok.add_task_tokens(TASKS)
    assert tok.vocab_size <= VOCAB  # the tiny models' ids above it are never allowed
    return tok


def protein_sources(tokenizer, count: int, seed: int, task: str | None = None):
    rng = random.Random(seed)
    head = [tokenizer.token_to_id(task)] if task else []
    sources = []
    for _ in range(count):
        text = "".join(rng.choices(RESIDUES, k=rng.randint(1, 9)))
        sources.append([*head, *tokenizer.encode(text), tokenizer.eos_id])
    return sources


@torch.inference_mode()
def masked_logits(model, constraint, source, prefix):
    """The last position's logits after ``prefix``, uncached, with the constraint applied."""
    src = torch.tensor([source])
    tgt = torch.tensor([[model.config.decoder_start_id, *prefix]])
    logits = model(src, torch.tensor([len(source)]), tgt)[0, -1].float()
    mask = allowed_row(constraint, source, prefix, logits.shape[-1], model.config.eos_id)
    return logits.masked_fill(~mask, float("-inf"))


def constrained_greedy(model, constraint, source, budget=BUDGET):
    """The reference: one uncached forward pass per token, masked, argmax."""
    out = []
    while len(out) < budget:
        token = int(masked_logits(model, constraint, source, out).argmax())
        if token == model.config.eos_id:
            break
        out.append(token)
    return out


def assert_same(model, constraint, sources, outputs):
    """Equal to the reference, or a masked top-2 near-tie where they first differ."""
    for source, output in zip(sources, outputs, strict=True):
        reference = constrained_greedy(model, constraint, source)
        i = first_difference(reference, output.tokens)
        if i is not None:
            top = masked_logits(model, constraint, source, reference[:i]).topk(2).values
            assert float(top[0] - top[1]) < TIE_TOLERANCE, (reference, output.tokens)


SPECS = {"per_residue": "<task=ss>", "number:2": "<task=fitness>", "sorted_indices": None}


def check_parses(tokenizer, spec, source, tokens):
    text = tokenizer.decode(tokens)
    residues = sum(t not in tokenizer.special_ids for t in source)
    if spec == "per_residue":
        assert len(text) == residues and set(text) <= set("HEC")
    elif spec == "number:2":
        parse_fixed(text, 2)
    else:
        parse_indices(text, residues)


@pytest.mark.parametrize("kind", sorted(MODEL_KINDS))
@pytest.mark.parametrize("spec", sorted(SPECS))
def test_greedy_and_iad_equal_constrained_greedy(tokenizer, kind, spec):
    model = tiny_model(seed=3, **MODEL_KINDS[kind])
    constraint = build_constraint(spec, tokenizer)
    sources = protein_sources(tokenizer, 5, seed=1)
    for decoder, extra in (("greedy", {}), ("iad", {"draft_len": 4}), ("iad", {"draft_len": 30})):
        cfg = DecodeConfig(decoder=decoder, max_new_tokens=BUDGET, constraint=spec, **extra)
        outputs = decode_batch(model, sources, cfg, constraint=constraint)
        assert_same(model, constraint, sources, outputs)
        for source, output in zip(sources, outputs, strict=True):
            assert output.finished
            check_parses(tokenizer, spec, source, output.tokens)


@pytest.mark.parametrize("spec", sorted(SPECS))
def test_speculative_and_gad_equal_constrained_greedy(tokenizer, spec):
    model = tiny_model(seed=4)
    constraint = build_constraint(spec, tokenizer)
    sources = protein_sources(tokenizer, 4, seed=2)
    drafts = {
        "spec": tiny_model(seed=9, d_model=8, num_heads=1, encoder_layers=1, decoder_layers=1),
        "gad": tiny_model(seed=8, architecture="nar_drafter", draft_block=4),
    }
    for decoder, draft in drafts.items():
        cfg = DecodeConfig(decoder=decoder, max_new_tokens=BUDGET, constraint=spec, draft_k=3)
        outputs = decode_batch(model, sources, cfg, draft_model=draft, constraint=constraint)
        assert_same(model, constraint, sources, outputs)


class ForbiddenDrafter:
    """Drafts the reference continuation with, at random, a token the grammar forbids."""

    def __init__(self, truth, eos_id, forbidden, seed):
        self.truth = {b: [*t, eos_id] for b, t in enumerate(truth)}
        self.forbidden, self.rng = forbidden, random.Random(seed)

    def propose(self, rows, generated, room):
        drafts = []
        for b, done, space in zip(rows, generated, room, strict=True):
            draft = self.truth[b][len(done) : len(done) + self.rng.randint(0, max(space, 0))]
            if draft and self.rng.random() < 0.7:
                draft[self.rng.randrange(len(draft))] = self.rng.choice(self.forbidden)
            drafts.append(draft)
        return drafts

    def observe(self, accepted, next_tokens):
        pass

    def select(self, index):
        pass


def test_a_draft_token_the_grammar_forbids_is_rejected(tokenizer):
    """The model is pushed towards forbidden tokens by drafts that hold them; a loop that
    verified against unmasked logits, or masked only the first position, would differ."""
    model = tiny_model(seed=5)
    constraint = build_constraint("per_residue", tokenizer)
    sources = protein_sources(tokenizer, 6, seed=3)
    truth = [constrained_greedy(model, constraint, s) for s in sources]
    forbidden = [tokenizer.token_to_id(c) for c in "MKW7,"] + [VOCAB - 1]
    drafter = ForbiddenDrafter(truth, model.config.eos_id, forbidden, seed=4)
    session = DecodeSession(model, constraint=constraint)
    src, lengths = pad_batch(sources, 0)
    stats = [RowStats() for _ in sources]
    with torch.inference_mode():
        memory = model.encode(src, lengths)
        budgets = length_budget(model, lengths, BUDGET)
        rows = session.join(memory, budgets, [Group(drafter)], stats, sources=sources)
        got = {row: [] for row in rows}
        while session:
            for event in session.run_pass():
                got[event.row] += event.tokens
    assert [got[row] for row in rows] == truth
    assert sum(s.drafted for s in stats) > sum(s.accepted for s in stats) > 0


@pytest.mark.parametrize("spec", sorted(SPECS))
def test_beam_of_one_and_top1_sampling_equal_constrained_greedy(tokenizer, spec):
    model = tiny_model(seed=6)
    constraint = build_constraint(spec, tokenizer)
    sources = protein_sources(tokenizer, 4, seed=5)
    for decoder, extra in (("beam", {"beam_size": 1}), ("sample", {"top_k": 1, "seed": 3})):
        cfg = DecodeConfig(decoder=decoder, max_new_tokens=BUDGET, constraint=spec, **extra)
        outputs = decode_batch(model, sources, cfg, constraint=constraint)
        assert_same(model, constraint, sources, outputs)


@pytest.mark.parametrize("spec", sorted(SPECS))
def test_wide_beams_and_free_sampling_write_only_what_parses(tokenizer, spec):
    model = tiny_model(seed=7)
    constraint = build_constraint(spec, tokenizer)
    sources = protein_sources(tokenizer, 6, seed=6)
    configs = [
        DecodeConfig(decoder="beam", beam_size=4, max_new_tokens=BUDGET, constraint=spec),
        DecodeConfig(
            decoder="sample", temperature=1.5, seed=1, max_new_tokens=BUDGET, constraint=spec
        ),
    ]
    for cfg in configs:
        for _ in range(3 if cfg.decoder == "sample" else 1):
            outputs = decode_batch(model, sources, cfg, constraint=constraint)
            for source, output in zip(sources, outputs, strict=True):
                assert output.finished, (cfg.decoder, output.tokens)
                check_parses(tokenizer, spec, source, output.tokens)
            cfg = DecodeConfig(**{**cfg.__dict__, "seed": cfg.seed + 1})


def test_tasks_grammar_follows_each_rows_task_token(tokenizer):
    model = tiny_model(seed=2)
    constraint = build_constraint("tasks", tokenizer)
    specs = {"<task=ss>": "per_residue", "<task=fitness>": "number:3"}
    sources, tasks = [], []
    for n, task in enumerate([*specs, "<task=helix_starts>", *specs]):
        sources += protein_sources(tokenizer, 1, seed=10 + n, task=task)
        tasks.append(task)
    cfg = DecodeConfig(decoder="iad", max_new_tokens=BUDGET, constraint="tasks")
    outputs = decode_batch(model, sources, cfg, constraint=constraint)
    assert_same(model, constraint, sources, outputs)
    for source, task, output in zip(sources, tasks, outputs, strict=True):
        text = tokenizer.decode(output.tokens)
        if task == "<task=ss>":
            assert len(text) == len(source) - 2 and set(text) <= set("HEC")
        elif task == "<task=fitness>":
            parse_fixed(text, 3)
        else:
            parse_indices(text, len(source) - 2)


def test_unconstrained_rows_are_untouched_and_a_constraint_changes_outputs(tokenizer):
    model = tiny_model(seed=2)
    sources = protein_sources(tokenizer, 5, seed=7)
    free = decode_batch(model, sources, DecodeConfig(max_new_tokens=BUDGET))
    constraint = build_constraint("tasks", tokenizer)  # no task token: unconstrained
    same = decode_batch(
        model,
        sources,
        DecodeConfig(max_new_tokens=BUDGET, constraint="tasks"),
        constraint=constraint,
    )
    assert [o.tokens for o in same] == [o.tokens for o in free]
    per_residue = build_constraint("per_residue", tokenizer)
    cfg = DecodeConfig(max_new_tokens=BUDGET, constraint="per_residue")
    masked = decode_batch(model, sources, cfg, constraint=per_residue)
    assert [o.tokens for o in masked] != [o.tokens for o in free]


def test_unknown_grammar_missing_tokens_and_missing_constraint_are_errors(tokenizer):
    with pytest.raises(ConfigError, match="valid constraints: per_residue, number"):
        DecodeConfig(constraint="json")
    with pytest.raises(ConfigError, match="no token for 'Z'"):
        build_constraint("per_residue:HEZ", tokenizer)
    with pytest.raises(ConfigError, match="integer"):
        build_constraint("number:two", tokenizer)
    with pytest.raises(ConfigError, match="task tokens"):
        build_constraint("tasks", alphabet_tokenizer(RESIDUES))
    model = tiny_model()
    for decoder in ("greedy", "beam"):
        cfg = DecodeConfig(decoder=decoder, constraint="per_residue")
        with pytest.raises(ConfigError, match="needs the tokenizer"):
            decode_batch(model, [[5, 6, 2]], cfg)
    with pytest.raises(ConfigError, match="needs the tokenizer"):
        DecodeSession(model).admit([[5, 6, 2]], DecodeConfig(constraint="per_residue"))
    assert build_constraint("", tokenizer) is None
