"""Tests for the seeded lab-protocol generator: deterministic, in the format, scaling right."""

import json
import random

from seqweave.data.protocol_format import parse_answer
from seqweave.data.readers import read_jsonl
from seqweave.data.synthetic_protocols import (
    SCALED,
    draw_protocol,
    finish,
    protocol_pairs,
    write_jsonl,
)
from seqweave.rewards.score import score


def test_seeded_and_deterministic():
    assert protocol_pairs(20, seed=3) == protocol_pairs(20, seed=3)
    assert protocol_pairs(20, seed=3) != protocol_pairs(20, seed=4)
    tasks = {record["task"] for record in protocol_pairs(40, seed=0)}
    assert tasks == {"write", "scale"}


def test_every_target_parses_and_scores_one_against_itself():
    for record in protocol_pairs(200, seed=1):
        parsed = parse_answer(record["target"])
        assert 3 <= len(parsed.steps) <= 8 and len(parsed.prose) == len(parsed.steps)
        assert score(record["target"], record["target"]).total == 1.0


def test_scaling_multiplies_quantities_and_keeps_the_rest():
    rng = random.Random(5)
    for _ in range(100):
        drafts = draw_protocol(rng)
        factor = rng.choice((0.5, 2.5, 4))
        for plain, scaled in zip(finish(drafts), finish(drafts, factor), strict=True):
            assert (plain.action, plain.objects) == (scaled.action, scaled.objects)
            for name, value in plain.parameters.items():
                if name in SCALED:
                    amount, unit = value.split()
                    new_amount, new_unit = scaled.parameters[name].split()
                    assert unit == new_unit
                    assert float(new_amount) == round(float(amount) * factor, 4)
                else:
                    assert scaled.parameters[name] == value


def test_writes_jsonl_that_the_reader_reads(tmp_path):
    records = protocol_pairs(10, seed=2)
    path = tmp_path / "train.jsonl"
    write_jsonl(path, records)
    examples = read_jsonl(path)
    assert [e.source for e in examples] == [r["source"] for r in records]
    assert [e.target for e in examples] == [r["target"] for r in records]
    assert json.loads(path.read_text(encoding="utf-8").splitlines()[0])["task"] in {
        "write",
        "scale",
    }
