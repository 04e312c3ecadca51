"""Embed-Search-Align: readers and their errors, windows, InfoNCE against a hand
computation, retrieval + Smith-Waterman placing reads exactly under an oracle
embedding, the encoder's directory round trip, and the CLI end to end."""

from __future__ import annotations

import math
from importlib.util import find_spec

import numpy as np
import pytest
import torch

from seqweave.cli import main
from seqweave.data.formats.fasta import SequenceRecord, write_fasta, write_fastq
from seqweave.data.synthetic_dna import markov_genome, reads_to_records, sample_reads
from seqweave.errors import CheckpointError, DataError
from seqweave.genomics.contrastive import info_nce
from seqweave.genomics.encoder import DnaEncoder, EncoderConfig, encode_bases
from seqweave.genomics.fragments import fragment
from seqweave.genomics.sequences import read_reads, read_reference

needs_genomics = pytest.mark.skipif(
    not (find_spec("faiss") and find_spec("parasail")),
    reason="the genomics extra (faiss-cpu, parasail) is not installed",
)


# -- readers ---------------------------------------------------------------------------------


def test_reference_joins_lines_and_folds_case(tmp_path):
    path = tmp_path / "g.fa"
    path.write_text(">chr1 the first\nACGT\nacgn\n\n>chr2\nTTTT\n")
    assert read_reference(path) == [
        SequenceRecord("chr1", "the first", "ACGTACGN", None, 1),
        SequenceRecord("chr2", "", "TTTT", None, 5),
    ]


@pytest.mark.parametrize(
    ("text", "where"),
    [
        ("ACGT\n>a\nACGT\n", ":1: sequence text before the first '>' header: 'ACGT'"),
        (">a\nACGT\n>b\nAC-T\n", ":3: record 'b': not a nucleotide code: '-'"),
        (">a\nACGT\n>b\n>c\nA\n", ":3: record 'b' has no sequence"),
        (">a\nA\n>a\nC\n", ":3: record 'a': name used twice (first at line 1)"),
        (">a\nA\n> \nC\n", ":3: header '>' has no record name"),
    ],
)
def test_reference_errors_name_record_and_line(tmp_path, text, where):
    path = tmp_path / "bad.fa"
    path.write_text(text)
    with pytest.raises(DataError) as error:
        read_reference(path)
    assert str(error.value) == f"{path}{where}"


def test_reads_come_from_fastq_or_fasta_by_suffix(tmp_path):
    path = tmp_path / "r.fq"
    path.write_text("@r1 start=3\nACGT\n+\nIIII\n@r2\nggn\n+r2\nII#\n")
    assert read_reads(path) == [
        SequenceRecord("r1", "start=3", "ACGT", "IIII", 1),
        SequenceRecord("r2", "", "GGN", "II#", 5),
    ]
    (tmp_path / "r.txt").write_text(path.read_text())  # no known suffix: FASTQ
    assert read_reads(tmp_path / "r.txt") == read_reads(path)
    (tmp_path / "r.fna").write_text(">r1\nacgt\n>r1\nGG\n")  # reads may share a name
    assert [(r.name, r.sequence, r.quality) for r in read_reads(tmp_path / "r.fna")] == [
        ("r1", "ACGT", None),
        ("r1", "GG", None),
    ]


@pytest.mark.parametrize(
    ("text", "where"),
    [
        (
            "@r1\nACGT\n+\nIIII\n@r2\nACG\n+\nII\n",
            ":8: record 'r2': quality has 2 characters, the sequence 3",
        ),
        ("@r1\nACGT\n+\nIIII\n@r2\nACG\n", ":5: record 'r2' has no '+' line"),
        ("@r1\nACGT\n-\nIIII\n", ":1: record 'r1' has no '+' line"),
        ("@r1\nACGT\n+\nIIII\nr2\nA\n+\nI\n", ":5: expected an '@' header line, got 'r2'"),
        ("@r1\nAXGT\n+\nIIII\n", ":1: record 'r1': not a nucleotide code: 'X'"),
    ],
)
def test_reads_errors_name_record_and_line(tmp_path, text, where):
    path = tmp_path / "bad.fq"
    path.write_text(text)
    with pytest.raises(DataError) as error:
        read_reads(path)
    assert str(error.value) == f"{path}{where}"


# -- windows -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("n", "length", "stride"), [(1000, 256, 128), (700, 200, 64), (90, 256, 128)]
)
def test_every_short_span_lies_whole_in_a_window(n, length, stride):
    genome = markov_genome(n, 2, 1)
    windows = fragment([SequenceRecord("c", "", genome)], length, stride)
    assert all(
        genome[s : s + len(w)] == w for s, w in zip(windows.starts, windows.seqs, strict=True)
    )
    assert windows.starts[-1] + len(windows.seqs[-1]) == n
    span = min(length, n) - stride if n > length else n
    for start in range(n - span + 1):
        assert any(windows.contains(i, "c", start, start + span) for i in range(len(windows)))


# -- loss ------------------------------------------------------------------------------------


def test_info_nce_matches_a_hand_computation():
    generator = torch.Generator().manual_seed(0)
    reads = torch.randn(3, 4, generator=generator)
    windows = torch.randn(3, 4, generator=generator)
    temperature = 0.3
    sims = [[sum(a * b for a, b in zip(r, w, strict=True)) / temperature for w in windows.tolist()]
            for r in reads.tolist()]  # fmt: skip

    def cross_entropy(rows):
        return sum(math.log(sum(math.exp(x) for x in row)) - row[i] for i, row in enumerate(rows))

    columns = [list(column) for column in zip(*sims, strict=True)]
    expected = (cross_entropy(sims) + cross_entropy(columns)) / (2 * 3)
    assert info_nce(reads, windows, temperature).item() == pytest.approx(expected, rel=1e-6)


# -- search and alignment ---------------------------------------------------------------------


def oracle_embedding(windows):
    """One dimension per window: a window is its own axis, a query the axis of the first
    window that holds it exactly (or a spare axis), so retrieval is right by construction."""
    size = len(windows.seqs) + 1

    def embed(seqs):
        out = np.zeros((len(seqs), size), dtype=np.float32)
        for row, seq in enumerate(seqs):
            hits = [i for i, w in enumerate(windows.seqs) if seq in w]
            out[row, hits[0] if hits else size - 1] = 1.0
        return out

    return embed


def substitute(seq: str, rate: float, seed: int) -> str:
    """Substitutions inside the read (its first and last bases are kept, so a clipped end
    cannot be told from a shift)."""
    rng = np.random.default_rng(seed)
    swap = {"A": "C", "C": "G", "G": "T", "T": "A", "N": "A"}
    inner = "".join(swap[b] if rng.random() < rate else b for b in seq[1:-1])
    return seq[0] + inner + seq[-1]


@needs_genomics
@pytest.mark.parametrize("sub_rate", [0.0, 0.03])
def test_search_and_smith_waterman_place_reads_exactly(sub_rate):
    from seqweave.genomics.align import Aligner

    contigs = {"chr1": markov_genome(3000, 3, 1), "chr2": markov_genome(2000, 3, 2)}
    records = [SequenceRecord(name, "", seq) for name, seq in contigs.items()]
    windows = fragment(records, 256, 128)
    truth, reads = {}, []
    for name, seq in contigs.items():
        for read in sample_reads(seq, 20, 100, sub_rate=0.0, seed=len(seq)):
            truth[f"{name}/{read.name}"] = (name, read.start, read.strand)
            reads.append(SequenceRecord(f"{name}/{read.name}", "", read.seq))
    # reads that begin exactly where a window begins: parasail's traceback then opens with
    # gap operations that must not shift the start
    for start in (0, 128, 2944):
        name = f"chr1/edge{start}"
        truth[name] = ("chr1", start, "+")
        reads.append(SequenceRecord(name, "", contigs["chr1"][start : start + 100]))
    assert {strand for _, _, strand in truth.values()} == {"+", "-"}
    aligner = Aligner(windows, oracle_embedding(windows))
    candidates, _ = aligner.retrieve([read.sequence for read in reads], 2)
    noisy = [
        SequenceRecord(read.name, "", substitute(read.sequence, sub_rate, i))
        for i, read in enumerate(reads)
    ]
    # retrieval saw the exact reads (the oracle needs them); the alignment sees the noisy ones
    hits = [aligner._best(read, ids) for read, ids in zip(noisy, candidates, strict=True)]
    if not sub_rate:
        assert hits == aligner.place(reads, top_k=2) == aligner.place(reads, top_k=2, chunk=7)
    for hit in hits:
        assert (hit.contig, hit.position, hit.strand) == truth[hit.read]
        assert hit.contig_end - hit.contig_start <= 100


@needs_genomics
@pytest.mark.parametrize("kind", ["ivf", "hnsw"])
def test_approximate_indexes_agree_with_the_flat_one_on_small_sets(kind):
    from seqweave.genomics.index import build_index, search

    vectors = np.random.default_rng(0).standard_normal((300, 16)).astype(np.float32)
    vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
    queries = vectors[:50] + 0.05 * np.random.default_rng(1).standard_normal((50, 16))
    _, exact = search(build_index(vectors, "flat"), queries, 3)
    _, approximate = search(build_index(vectors, kind, nprobe=64), queries, 3)
    assert (exact[:, 0] == np.arange(50)).all()
    assert (approximate == exact).mean() >= 0.95


# -- encoder ---------------------------------------------------------------------------------


def test_encoder_embeddings_are_unit_and_padding_free(tmp_path):
    torch.manual_seed(0)
    encoder = DnaEncoder(EncoderConfig()).eval()
    seqs = ["ACGTACGTTT", "GGA", "ACGTNNNNACGTACGTACGTAAAA"]
    together = encoder.embed_seqs(seqs)
    alone = np.concatenate([encoder.embed_seqs([s]) for s in seqs])
    np.testing.assert_allclose(together, alone, atol=1e-5)
    np.testing.assert_allclose(np.linalg.norm(together, axis=1), 1.0, atol=1e-5)
    ids, lengths = encode_bases(["ACGTN", "ry"])
    assert ids.tolist() == [[1, 2, 3, 4, 5], [5, 5, 0, 0, 0]] and lengths.tolist() == [5, 2]
    ids, lengths = encode_bases(["ACGTN", "tg", "A"], kmer=2)  # AC CG GT TN; TG; none
    assert ids.tolist() == [[2, 7, 12, 17], [15, 0, 0, 0], [0, 0, 0, 0]]
    assert lengths.tolist() == [4, 1, 0]
    loaded = DnaEncoder.load(encoder.save(tmp_path / "m"))
    np.testing.assert_array_equal(loaded.embed_seqs(seqs), together)


def test_loading_a_directory_that_is_no_encoder_fails(tmp_path):
    (tmp_path / "config.json").write_text('{"vocab_size": 8}')
    with pytest.raises(CheckpointError, match="no DNA encoder"):
        DnaEncoder.load(tmp_path)


# -- command line ----------------------------------------------------------------------------


@needs_genomics
def test_cli_trains_and_aligns_a_tiny_genome(tmp_path, capsys):
    from seqweave.genomics.align import Aligner
    from seqweave.genomics.hits import read_hits

    genome = markov_genome(4000, 3, 5)
    with open(tmp_path / "g.fa", "w") as out:
        write_fasta([SequenceRecord("chr1", "", genome)], out)
    reads = sample_reads(genome, 12, 60, sub_rate=0.01, indel_rate=0.004, seed=1)
    with open(tmp_path / "r.fq", "w") as out:
        write_fastq(reads_to_records(reads), out)
    model = tmp_path / "model"
    train = ["align-train", "--reference", str(tmp_path / "g.fa"), "--output", str(model)]
    train += ["--steps", "3", "--batch-size", "8", "--read-length", "60", "--d-model", "16"]
    assert main(train) == 0
    out = tmp_path / "hits.tsv"
    align = ["align", "--model", str(model), "--reference", str(tmp_path / "g.fa")]
    align += ["--reads", str(tmp_path / "r.fq"), "--output", str(out), "--top-k", "3"]
    assert main(align) == 0
    rows = read_hits(out)
    assert [row["read"] for row in rows] == [read.name for read in reads]
    # the file says what the Python API says
    encoder = DnaEncoder.load(model)
    windows = fragment(read_reference(tmp_path / "g.fa"), 256, 128)
    hits = Aligner(windows, encoder.embed_seqs).place(read_reads(tmp_path / "r.fq"), 3)
    assert [(r["contig"], int(r["position"]), r["strand"]) for r in rows] == [
        (h.contig, h.position, h.strand) for h in hits
    ]
    (tmp_path / "bad.fq").write_text("@x\nACGT\n+\nIII\n")
    align[align.index("--reads") + 1] = str(tmp_path / "bad.fq")
    assert main(align) == 2
    assert (
        "bad.fq:4: record 'x': quality has 3 characters, the sequence 4" in capsys.readouterr().err
    )


def test_kmer_counts_match_a_hand_count():
    from collections import Counter
    from itertools import product

    from seqweave.genomics.kmers import kmer_counts, kmer_profile

    seq = "ACGTTGCANACGTAC"
    expected = Counter(seq[i : i + 3] for i in range(len(seq) - 2) if "N" not in seq[i : i + 3])
    names = ["".join(p) for p in product("ACGT", repeat=3)]
    assert dict(zip(names, kmer_counts(seq, 3).tolist(), strict=True)) == {
        name: float(expected[name]) for name in names
    }
    vectors = kmer_profile(3)([seq, "AC"])
    assert np.linalg.norm(vectors[0]) == pytest.approx(1.0) and not vectors[1].any()
