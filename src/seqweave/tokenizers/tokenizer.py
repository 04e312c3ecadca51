"""The ``Tokenizer`` wrapper and its file: one HF ``tokenizers.Tokenizer`` saved and loaded as
``tokenizer.json``, whichever kind built it (see the package docstring for the contracts)."""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path

import tokenizers
from tokenizers import AddedToken

from seqweave.errors import CheckpointError, ConfigError

SPECIAL_TOKENS = ("<pad>", "<s>", "</s>", "<unk>")
TOKENIZER_FILE = "tokenizer.json"


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


def with_specials(backend: tokenizers.Tokenizer, task_tokens: Sequence[str]) -> Tokenizer:
    """The last step of every builder here: register SPECIAL_TOKENS as special added tokens
    (never split, skipped by decode) so they get ids 0..3, then add the task tokens."""
    backend.add_special_tokens(
        [AddedToken(t, special=True, normalized=False) for t in SPECIAL_TOKENS]
    )
    tokenizer = Tokenizer(backend)
    tokenizer.add_task_tokens(task_tokens)
    return tokenizer
