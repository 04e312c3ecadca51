"""``seqweave bench``'s systems and table: CTranslate2 on the same weights, lossy systems."""

from __future__ import annotations

import sys

import pytest

from seqweave import bench
from tests.shared import require_shared


def fixed_system(name: str, outputs: list[list[int]], **flags) -> bench.System:
    """A system that 'decodes' text i to ``outputs[i]`` (texts are str(i))."""

    def run(texts, batch_size):
        rows = [outputs[int(t)] for t in texts]
        return bench.Run(rows, [len(r) + 1 for r in rows])

    return bench.System(name, run, **flags)


def test_lossy_systems_are_checked_against_the_system_they_must_equal():
    reference = [[5, 6], [7], [8, 9, 10]]
    int8_greedy = [[5, 6], [7, 4], [8, 9, 10]]  # differs from fp32 greedy on one row
    systems = [
        fixed_system("hf_greedy", reference),
        fixed_system("seqweave_int8_greedy", int8_greedy, lossy=True),
        fixed_system("seqweave_int8_iad", int8_greedy, lossy=True, equals="seqweave_int8_greedy"),
        fixed_system("seqweave_int8_bad", reference, lossy=True, equals="seqweave_int8_greedy"),
    ]
    texts = ["0", "1", "2"]
    rows = bench.run_benchmark(systems, texts, [1, 2], repeats=1)
    records = {(r["system"], r["batch_size"]): r for r in bench.summarize(rows, reference, None)}
    assert records["seqweave_int8_iad", 2]["identity"] == pytest.approx(2 / 3)
    assert records["seqweave_int8_iad", 2]["identity_vs_equals"] == 1.0
    assert records["seqweave_int8_bad", 1]["identity_vs_equals"] == pytest.approx(2 / 3)
    assert records["hf_greedy", 1]["identity_vs_equals"] is None
    table = bench.format_table(list(records.values()))
    assert "seqweave_int8_iad*" in table and "hf_greedy*" not in table
    assert "lossy" in table.splitlines()[-1]


def test_ct2_is_skipped_with_a_message_when_not_installed(monkeypatch, capsys):
    monkeypatch.setitem(sys.modules, "ctranslate2", None)  # import now raises ImportError
    assert bench.ct2_systems("unused", None, 16, "unused") == []
    assert "ctranslate2 is not installed" in capsys.readouterr().err


@pytest.mark.slow
def test_ct2_greedy_equals_hf_greedy_on_the_same_weights(tmp_path):
    pytest.importorskip("ctranslate2")
    transformers = pytest.importorskip("transformers")
    from seqweave.data.readers import read_examples

    directory = require_shared("models", "gec-bart-anchor")
    data = require_shared("data", "gec-synth", "train.jsonl")
    texts = [e.source for e in read_examples(data, require_target=False)][:6]
    tokenizer = transformers.AutoTokenizer.from_pretrained(directory)
    hf = transformers.AutoModelForSeq2SeqLM.from_pretrained(directory).eval()
    hf_greedy = bench.hf_systems(hf, tokenizer, 64)[0]
    ct2 = {s.name: s for s in bench.ct2_systems(directory, tokenizer, 64, tmp_path)}
    assert ct2["ct2_int8_greedy"].lossy and not ct2["ct2_greedy"].lossy
    reference = hf_greedy.run(texts, 1).tokens
    assert ct2["ct2_greedy"].run(texts, 1).tokens == reference
    assert ct2["ct2_greedy"].run(texts, 3).tokens == reference
    int8 = ct2["ct2_int8_greedy"].run(texts, 3).tokens
    assert sum(a == b for a, b in zip(int8, reference, strict=True)) >= len(texts) - 1
