"""The DNA BPE tokenizer: exact round trips, motifs merged, compression growing with vocabulary."""

import functools

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from seqweave.data.synthetic_dna import markov_genome, sample_reads
from seqweave.errors import ConfigError
from seqweave.tokenizers import Tokenizer, build_tokenizer
from seqweave.tokenizers.dna_bpe import bases_per_token, train_dna_bpe

MOTIF = "TATAAAAGGCGTAC"


@functools.cache
def _reads(seed: int = 0) -> tuple[str, ...]:
    genome = markov_genome(40_000, 3, seed=seed, motifs=(MOTIF,), motif_spacing=150)
    reads = sample_reads(genome, 1500, 100, 0.01, 0.005, seed=seed, n_rate=0.002)
    return tuple(read.seq for read in reads)


@functools.cache
def _tokenizer(vocab_size: int = 300) -> Tokenizer:
    return build_tokenizer("dna_bpe", list(_reads()), vocab_size, ("<cls>",), None)


@settings(max_examples=200, deadline=None)
@given(st.text(alphabet="ACGTN", max_size=300))
def test_round_trip_is_exact(seq):
    tokenizer = _tokenizer()
    ids = tokenizer.encode(seq)
    assert tokenizer.decode(ids) == seq
    assert tokenizer.unk_id not in ids


def test_saved_tokenizer_encodes_the_same(tmp_path):
    tokenizer = _tokenizer()
    tokenizer.save(tmp_path)
    loaded = Tokenizer.load(tmp_path)
    reads = list(_reads(1)[:50])
    assert loaded.encode_batch(reads) == tokenizer.encode_batch(reads)
    assert loaded.token_to_id("<cls>") == tokenizer.token_to_id("<cls>")


def test_case_folds_and_foreign_letters_are_unknown():
    tokenizer = _tokenizer()
    assert tokenizer.encode("acgtn") == tokenizer.encode("ACGTN")
    ids = tokenizer.encode("ACRT")
    assert ids.count(tokenizer.unk_id) == 1 and tokenizer.decode(ids) == "AC<unk>T"
    assert tokenizer.encode("<cls>") != [tokenizer.token_to_id("<cls>")]  # text never a task


def test_planted_motif_becomes_few_tokens():
    """Inside reads, a motif planted every ~150 bp is covered by at most 3 tokens on
    average, where background 14-mers need about 14 / (bp per token) tokens."""
    tokenizer = _tokenizer()
    covering, found = 0, 0
    for read in _reads(1)[:400]:
        where = read.find(MOTIF)
        if where < 0:
            continue
        offsets = tokenizer.backend.encode(read).offsets
        covering += sum(1 for a, b in offsets if a < where + len(MOTIF) and b > where)
        found += 1
    assert found > 50
    background = len(MOTIF) / bases_per_token(tokenizer, _reads(1)[:400])
    assert covering / found <= 3 < background


def test_bases_per_token_grows_with_the_vocabulary():
    reads = _reads(1)[:300]
    sizes = [bases_per_token(_tokenizer(size), reads) for size in (9, 64, 300)]
    assert sizes[0] == pytest.approx(1.0)
    assert sizes[0] < sizes[1] < sizes[2]


def test_too_small_vocabulary_and_missing_texts_are_refused():
    with pytest.raises(ConfigError, match="dna_bpe"):
        train_dna_bpe(["ACGT"], vocab_size=8)
    with pytest.raises(ConfigError, match="dna_bpe"):
        build_tokenizer("dna_bpe", None, 100, (), None)
