"""The DNA context tool: deterministic prompts, no self-label leak, hand-checked neighbour
order and motif positions."""

import math

import pytest

from seqweave.data.dna_context import DNAContextTool, cosine, kmer_vector, motifs

ROWS = [
    ("AAAAAAAA", "N", "r0"),
    ("AAAAAAAC", "EI", "r1"),
    ("CCCCCCCC", "IE", "r2"),
]


def test_kmer_cosine_by_hand():
    # 3-mers only: AAAAAA has AAA x4; AAAAAC has AAA x3 + AAC x1 -> 12 / (4 * sqrt(10))
    a, b = kmer_vector("AAAAAA", (3,)), kmer_vector("AAAAAC", (3,))
    assert cosine(a, b) == pytest.approx(12 / (4 * math.sqrt(10)))
    assert kmer_vector("AANAAA", (3,)) == {"AAA": 1}


def test_neighbours_ranked_by_similarity():
    tool = DNAContextTool(neighbours=3, ks=(3,)).fit(ROWS)
    ranked = tool.nearest("AAAAAAAA")
    assert [label for label, _ in ranked] == ["N", "EI", "IE"]
    # r1 has AAA x5 + AAC x1 against AAA x6: 30 / (6 * sqrt(26))
    assert ranked[1][1] == pytest.approx(30 / (6 * math.sqrt(26)), abs=1e-6)
    assert ranked[2][1] == 0.0


def test_query_never_sees_its_own_label():
    tool = DNAContextTool(neighbours=1, ks=(3,)).fit(ROWS)
    assert tool.nearest("AAAAAAAA", query_id="r0")[0][0] == "EI"
    text = tool.describe("AAAAAAAA", query_id="r0")
    assert "N 1.00" not in text and "EI" in text


def test_motif_positions():
    donor = "A" * 30 + "GT" + "A" * 28
    acceptor = "A" * 28 + "AG" + "C" * 30
    assert motifs(donor) == ["donor GT at 31-32"]
    assert motifs(acceptor) == ["acceptor AG at 29-30"]
    assert motifs("C" * 60) == []


def test_prompt_modes_deterministic():
    tool = DNAContextTool(neighbours=2, ks=(3,)).fit(ROWS)
    seq = "AAAAAAAC"
    assert tool.prompt(seq, "sequence") == "A A A A A A A C"
    context = tool.prompt(seq, "context", "r1")
    assert context == DNAContextTool(neighbours=2, ks=(3,)).fit(ROWS).prompt(seq, "context", "r1")
    assert tool.prompt(seq, "both", "r1") == f"A A A A A A A C || {context}"
    with pytest.raises(ValueError):
        tool.prompt(seq, "raw")


def test_matrix_similarity_equals_counter_cosine():
    """The fast matrix path against the plain Counter cosine on random windows."""
    import random

    rng = random.Random(5)
    seqs = ["".join(rng.choice("ACGTN") for _ in range(60)) for _ in range(30)]
    tool = DNAContextTool(neighbours=30).fit([(s, str(i), str(i)) for i, s in enumerate(seqs)])
    query = seqs[0][::-1]
    reference = sorted((-cosine(kmer_vector(query), kmer_vector(s)), i) for i, s in enumerate(seqs))
    got = tool.nearest(query)
    assert [label for label, _ in got] == [str(i) for _, i in reference]
    for (_, sim), (neg, _) in zip(got, reference, strict=True):
        assert sim == pytest.approx(-neg, abs=1e-6)
