"""Tokenizers: byte-level BPE for text, one-token-per-character alphabets for everything else.

Every kind is one HF ``tokenizers.Tokenizer`` behind one wrapper, so every kind is saved and
loaded the same way: as ``tokenizer.json`` in a model directory, the file Hugging Face uses.
A ``tokenizer.json`` from a Hugging Face model directory (BART, RoBERTa, ...) loads too.

Contracts the rest of seqweave relies on:

- ``encode`` returns plain token ids: no special tokens, no truncation, no padding. Decoders
  and data pipelines add BOS/EOS/task tokens themselves, by id.
- User text can never produce a special token. Text that literally contains ``"</s>"`` is
  encoded as the characters ``<``, ``/``, ``s``, ``>``, so no input can end generation early
  or pose as a task token.
- Byte-level BPE round-trips every string: ``decode(encode(x)) == x``.
- Tokenizers built here number their specials ``<pad>=0, <s>=1, </s>=2, <unk>=3``; task
  tokens come after the content vocabulary. Loaded files keep their own numbering (BART
  has ``<s>=0, <pad>=1``), which is why ids are always looked up by token string.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterable, Sequence, Sized
from pathlib import Path

import tokenizers
from tokenizers import AddedToken, decoders, models, normalizers, pre_tokenizers, trainers

from seqweave.errors import CheckpointError, ConfigError

SPECIAL_TOKENS = ("<pad>", "<s>", "</s>", "<unk>")
TOKENIZER_FILE = "tokenizer.json"

PROTEIN_ALPHABET = "ACDEFGHIKLMNPQRSTVWYX"
DNA_ALPHABET = "ACGTN"
# Digits, signs, decimal point, exponent markers of both cases, separators between numbers.
NUMBER_ALPHABET = "0123456789+-.eE ,;"

_BYTE_LEVEL_MIN_VOCAB = len(SPECIAL_TOKENS) + 256


class Tokenizer:
    """A text <-> token-id codec with named special tokens, wrapping an HF tokenizer.

    The wrapper owns ``backend`` and adjusts it so the contracts in the module docstring hold:
    it turns off matching special tokens in user text (a runtime flag that tokenizer.json does
    not store) and removes any truncation or padding a loaded file carries (BART's file
    truncates to 128 tokens, which would cut long inputs silently).

    Raises:
        ConfigError: a special token is not in the backend's vocabulary.
    """

    def __init__(
        self,
        backend: tokenizers.Tokenizer,
        pad: str = "<pad>",
        bos: str = "<s>",
        eos: str = "</s>",
        unk: str = "<unk>",
    ):
        backend.encode_special_tokens = True
        backend.no_truncation()
        backend.no_padding()
        self.backend = backend
        self.pad_id = _require_id(backend, pad, "pad")
        self.bos_id = _require_id(backend, bos, "bos")
        self.eos_id = _require_id(backend, eos, "eos")
        self.unk_id = _require_id(backend, unk, "unk")
        self._specials = {"pad": pad, "bos": bos, "eos": eos, "unk": unk}
        self._refresh_skip_ids()

    @property
    def vocab_size(self) -> int:
        """Number of ids, added tokens included: the size a model's embedding needs."""
        return self.backend.get_vocab_size(with_added_tokens=True)

    @property
    def special_ids(self) -> frozenset[int]:
        """Ids of every special token (pad, bos, eos, unk, task tokens): ids no text is made
        of, which source corruption must neither touch nor draw (``seqweave.objectives.e2s2``)."""
        return self._skip_ids | {self.unk_id}

    def encode(self, text: str, add_special_tokens: bool = False) -> list[int]:
        """Token ids of ``text``.

        ``add_special_tokens=True`` applies the backend's post-processor, if any (for a BART
        file: ``<s> ... </s>``), for callers that want exactly what Hugging Face produces.
        Text must be valid Unicode; a lone surrogate cannot be UTF-8 encoded and is rejected.
        """
        return self.backend.encode(text, add_special_tokens=add_special_tokens).ids

    def encode_batch(
        self, texts: Sequence[str], add_special_tokens: bool = False
    ) -> list[list[int]]:
        """``encode`` for many texts at once, in parallel inside the Rust backend."""
        if isinstance(texts, str):
            raise TypeError("encode_batch takes a list of texts; use encode for one text")
        encode = getattr(self.backend, "encode_batch_fast", self.backend.encode_batch)
        encodings = encode(list(texts), add_special_tokens=add_special_tokens)
        return [encoding.ids for encoding in encodings]

    def decode(self, ids: Sequence[int], skip_special_tokens: bool = True) -> str:
        """Text of ``ids``, without pad, bos, eos, task and other special tokens.

        ``<unk>`` is kept as the text ``"<unk>"``: dropping it would hide that something was
        lost, and for alphabet tokenizers it keeps one character per position (a protein with
        an unknown residue stays the right length). Byte-level BPE never produces ``<unk>``.

        Raises:
            ValueError: an id is outside ``[0, vocab_size)``, e.g. a ``-100`` label mask.
        """
        return self.backend.decode(
            self._visible(ids, skip_special_tokens), skip_special_tokens=False
        )

    def decode_batch(
        self, batch: Sequence[Sequence[int]], skip_special_tokens: bool = True
    ) -> list[str]:
        """``decode`` for many sequences at once."""
        visible = [self._visible(ids, skip_special_tokens) for ids in batch]
        return self.backend.decode_batch(visible, skip_special_tokens=False)

    def token_to_id(self, token: str) -> int | None:
        """Id of ``token``, or None when the vocabulary lacks it."""
        return self.backend.token_to_id(token)

    def id_to_token(self, token_id: int) -> str | None:
        """Token string of ``token_id``, or None when out of range."""
        return self.backend.id_to_token(token_id)

    def add_task_tokens(self, tokens: Sequence[str]) -> list[int]:
        """Add control tokens such as ``"<2de>"`` or ``"<fix>"`` and return their ids.

        Task tokens are special: never split, never produced from user text, dropped by
        ``decode``. Callers put them in a sequence by id. Adding a task token the tokenizer
        already has returns its id, so building from a config twice is harmless.

        Raises:
            ConfigError: ``tokens`` is a bare string, or a token is empty, is one of
                pad/bos/eos/unk, or is already an ordinary token (making it special would
                change how existing text encodes).
        """
        if isinstance(tokens, str):
            raise ConfigError(f"task tokens must be a list of strings, got the string {tokens!r}")
        ids = [self._add_task_token(token) for token in tokens]
        self._refresh_skip_ids()
        return ids

    def save(self, directory: str | os.PathLike[str]) -> Path:
        """Write ``directory/tokenizer.json`` (creating the directory) and return its path."""
        path = Path(directory) / TOKENIZER_FILE
        path.parent.mkdir(parents=True, exist_ok=True)
        self.backend.save(str(path), pretty=True)
        return path

    @classmethod
    def load(
        cls,
        directory_or_file: str | os.PathLike[str],
        pad: str = "<pad>",
        bos: str = "<s>",
        eos: str = "</s>",
        unk: str = "<unk>",
    ) -> Tokenizer:
        """Load a ``tokenizer.json``, given the file or the model directory that holds it.

        The special-token names can be overridden for files that name them differently.

        Raises:
            CheckpointError: the file is missing, is not a valid tokenizer.json, or lacks one
                of the special tokens.
        """
        path = _tokenizer_path(Path(directory_or_file))
        try:
            backend = tokenizers.Tokenizer.from_file(str(path))
        except Exception as error:
            raise CheckpointError(f"{path}: not a valid tokenizer.json ({error})") from error
        try:
            return cls(backend, pad=pad, bos=bos, eos=eos, unk=unk)
        except ConfigError as error:
            raise CheckpointError(f"{path}: {error}") from error

    def __repr__(self) -> str:
        specials = ", ".join(f"{name}={token!r}" for name, token in self._specials.items())
        return f"Tokenizer(vocab_size={self.vocab_size}, {specials})"

    def _visible(self, ids: Sequence[int], skip_special_tokens: bool) -> list[int]:
        # tolist() accepts torch tensors and numpy arrays, whose elements do not hash as ints.
        ids = ids.tolist() if hasattr(ids, "tolist") else list(ids)
        size = self.vocab_size
        if ids and (min(ids) < 0 or max(ids) >= size):
            bad = next(i for i in ids if not 0 <= i < size)
            raise ValueError(f"token id {bad} is outside the vocabulary [0, {size})")
        if not skip_special_tokens:
            return ids
        return [i for i in ids if i not in self._skip_ids]

    def _refresh_skip_ids(self) -> None:
        added = self.backend.get_added_tokens_decoder()
        self._skip_ids = frozenset(i for i, token in added.items() if token.special) - {self.unk_id}

    def _add_task_token(self, token: str) -> int:
        if not isinstance(token, str) or not token:
            raise ConfigError(f"a task token must be a non-empty string, got {token!r}")
        if token in self._specials.values():
            raise ConfigError(f"task token {token!r} is already the tokenizer's pad/bos/eos/unk")
        existing = self.backend.token_to_id(token)
        if existing is not None:
            added = self.backend.get_added_tokens_decoder().get(existing)
            if added is None or not added.special:
                raise ConfigError(
                    f"task token {token!r} is already an ordinary token (id {existing})"
                )
            return existing
        self.backend.add_special_tokens([AddedToken(token, special=True, normalized=False)])
        return self.backend.token_to_id(token)


def _require_id(backend: tokenizers.Tokenizer, token: str, role: str) -> int:
    token_id = backend.token_to_id(token)
    if token_id is None:
        raise ConfigError(
            f"the tokenizer has no {role} token {token!r}; pass {role}=... naming one it has"
        )
    return token_id


def _tokenizer_path(path: Path) -> Path:
    file = path / TOKENIZER_FILE if path.is_dir() else path
    if not file.is_file():
        raise CheckpointError(f"no tokenizer file at {file}")
    return file


def _with_specials(backend: tokenizers.Tokenizer, task_tokens: Sequence[str]) -> Tokenizer:
    """Register SPECIAL_TOKENS as special added tokens (never split, skipped by decode)."""
    backend.add_special_tokens(
        [AddedToken(t, special=True, normalized=False) for t in SPECIAL_TOKENS]
    )
    tokenizer = Tokenizer(backend)
    tokenizer.add_task_tokens(task_tokens)
    return tokenizer


def train_bpe(
    texts: Iterable[str],
    vocab_size: int = 8000,
    min_frequency: int = 2,
    task_tokens: Sequence[str] = (),
) -> Tokenizer:
    """Train a byte-level BPE tokenizer on ``texts``.

    Byte level (all 256 bytes in the base alphabet, no normalizer, no prefix space) is what
    makes every string round-trip, whatever its script, emoji or whitespace. ``vocab_size``
    counts the specials, the 256 bytes and the learned merges; task tokens come on top.

    Raises:
        ConfigError: ``vocab_size`` cannot hold the specials and the 256 bytes.
    """
    if vocab_size < _BYTE_LEVEL_MIN_VOCAB:
        raise ConfigError(
            f"vocab_size={vocab_size} is too small for byte-level BPE: it needs at least "
            f"{_BYTE_LEVEL_MIN_VOCAB} (4 special tokens + 256 bytes)"
        )
    backend = tokenizers.Tokenizer(models.BPE(unk_token="<unk>"))
    backend.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    backend.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=vocab_size,
        min_frequency=min_frequency,
        special_tokens=list(SPECIAL_TOKENS),
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    length = len(texts) if isinstance(texts, Sized) else None
    backend.train_from_iterator(texts, trainer, length=length)
    return _with_specials(backend, task_tokens)


def alphabet_tokenizer(
    alphabet: str | Sequence[str],
    task_tokens: Sequence[str] = (),
    *,
    fold_case: bool = False,
) -> Tokenizer:
    """One token per character of ``alphabet``; any other character becomes ``<unk>``.

    Each unknown character is its own ``<unk>``, so token positions still line up with
    character positions. Every string over the alphabet round-trips. ``fold_case=True``
    reads lower-case letters as their upper-case alphabet letters (decode returns upper case).

    Raises:
        ConfigError: the alphabet is empty, repeats a symbol, or has a multi-character symbol.
    """
    symbols = _check_alphabet(alphabet)
    vocab = {token: i for i, token in enumerate((*SPECIAL_TOKENS, *symbols))}
    # BPE with no merges and no pre-tokenizer is a per-character lookup with an unk fallback.
    backend = tokenizers.Tokenizer(models.BPE(vocab=vocab, merges=[], unk_token="<unk>"))
    backend.decoder = decoders.Fuse()
    if fold_case:
        backend.normalizer = _upper_case_normalizer(symbols)
    return _with_specials(backend, task_tokens)


def protein_tokenizer(task_tokens: Sequence[str] = ()) -> Tokenizer:
    """The 20 standard amino acids and ``X``, upper case; lower case folds to upper case.

    Folding case because FASTA files mix cases without meaning a different residue. Other
    letters (``B``, ``Z``, ``U``, ``O``), gaps and stop symbols become ``<unk>``.
    """
    return alphabet_tokenizer(PROTEIN_ALPHABET, task_tokens, fold_case=True)


def dna_tokenizer(task_tokens: Sequence[str] = ()) -> Tokenizer:
    """``ACGTN``; lower case (soft-masked repeats in genome files) folds to upper case."""
    return alphabet_tokenizer(DNA_ALPHABET, task_tokens, fold_case=True)


def number_tokenizer(task_tokens: Sequence[str] = ()) -> Tokenizer:
    """Characters of written numbers and lists of them, so ``"1.5e-3, -2; 40"`` round-trips.

    Digit by digit, so a number's tokens never depend on BPE merges learned from other data.
    """
    return alphabet_tokenizer(NUMBER_ALPHABET, task_tokens)


def _check_alphabet(alphabet: str | Sequence[str]) -> list[str]:
    symbols = list(alphabet)
    if not symbols:
        raise ConfigError("the alphabet is empty")
    for symbol in symbols:
        if not isinstance(symbol, str) or len(symbol) != 1:
            raise ConfigError(f"alphabet symbols must be single characters, got {symbol!r}")
    repeated = sorted({s for s in symbols if symbols.count(s) > 1})
    if repeated:
        raise ConfigError(f"the alphabet repeats {repeated}")
    return symbols


def _upper_case_normalizer(symbols: Sequence[str]) -> normalizers.Normalizer:
    lower = [(s.lower(), s) for s in symbols if s.lower() != s and s.lower() not in symbols]
    return normalizers.Sequence([normalizers.Replace(low, up) for low, up in lower])


# The common signature of TOKENIZERS values: (texts, vocab_size, task_tokens, alphabet).
Builder = Callable[[Iterable[str] | None, int, Sequence[str], str | None], Tokenizer]


def _build_bpe(
    texts: Iterable[str] | None, vocab_size: int, task_tokens: Sequence[str], alphabet: str | None
) -> Tokenizer:
    if texts is None:
        raise ConfigError("tokenizer kind 'bpe' is trained on texts, but none were given")
    return train_bpe(texts, vocab_size=vocab_size, task_tokens=task_tokens)


def _build_alphabet(
    texts: Iterable[str] | None, vocab_size: int, task_tokens: Sequence[str], alphabet: str | None
) -> Tokenizer:
    if not alphabet:
        raise ConfigError("tokenizer kind 'alphabet' needs an alphabet")
    return alphabet_tokenizer(alphabet, task_tokens)


def _fixed(builder: Callable[[Sequence[str]], Tokenizer]) -> Builder:
    """Adapt a builder with a fixed alphabet to the common signature of TOKENIZERS."""

    def build(
        texts: Iterable[str] | None,
        vocab_size: int,
        task_tokens: Sequence[str],
        alphabet: str | None,
    ) -> Tokenizer:
        return builder(task_tokens)

    return build


# kind -> builder; every builder takes the same arguments, so build_tokenizer just calls it.
TOKENIZERS: dict[str, Builder] = {
    "bpe": _build_bpe,
    "protein": _fixed(protein_tokenizer),
    "dna": _fixed(dna_tokenizer),
    "numbers": _fixed(number_tokenizer),
    "alphabet": _build_alphabet,
}


def build_tokenizer(
    kind: str,
    texts: Iterable[str] | None,
    vocab_size: int,
    task_tokens: Sequence[str],
    alphabet: str | None,
) -> Tokenizer:
    """Build the tokenizer a config names; ``texts`` and ``alphabet`` are used only by the
    kinds that need them (``bpe`` and ``alphabet``).

    Raises:
        ConfigError: unknown ``kind`` (the message lists the valid ones), or the arguments
            that kind needs are missing or invalid.
    """
    builder = TOKENIZERS.get(kind)
    if builder is None:
        raise ConfigError(f"unknown tokenizer kind {kind!r}; valid kinds: {sorted(TOKENIZERS)}")
    if alphabet is not None and kind != "alphabet":
        raise ConfigError(f"an alphabet is only used by tokenizer kind 'alphabet', not {kind!r}")
    return builder(texts, vocab_size, task_tokens, alphabet)
