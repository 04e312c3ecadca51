"""The contrastive DNA encoder: a small seqweave Transformer encoder, mean-pooled.

Reads and reference fragments go through the same network (one tower, as in
Embed-Search-Align), so a read and the window that holds it land close together
in one space. The encoder is seqweave's own ``Embedder`` and ``EncoderLayer``
stack; each base's state is widened to ``pool_dim`` rectified features, averaged over
the real bases, projected and L2-normalised, so inner product is cosine similarity
(what the index uses). Widening before the mean lets the pooled vector be a soft
histogram of many local patterns, as a k-mer profile is, rather than the mean of
``d_model`` states (a read is under half of its window, so the mean must keep what
the read's bases have in common with the window's and not with any other).

Tokens are overlapping k-mers (``EncoderConfig.kmer``) with a fixed numbering, 0 for
padding: a table rather than a tokenizer file, since nothing about it is learnt.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor, nn

from seqweave.checkpoint import load_weights, read_json, save_tensors, write_json
from seqweave.config import ModelConfig
from seqweave.config_parse import from_dict, to_dict
from seqweave.errors import CheckpointError, ConfigError
from seqweave.models.embedding import Embedder, token_embedding
from seqweave.models.layers import EncoderLayer, padding_mask

PAD = 0
_CODES = np.full(256, 4, dtype=np.int64)  # A C G T -> 0..3, any other letter -> 4
for _i, _base in enumerate("ACGT"):
    _CODES[ord(_base)] = _i
    _CODES[ord(_base.lower())] = _i


def default_model(kmer: int = 4) -> ModelConfig:
    return ModelConfig(
        vocab_size=4**kmer + 2, d_model=64, num_heads=4, encoder_layers=2, decoder_layers=0,
        ffn_dim=128, dropout=0.0, position="rope", max_positions=512, pad_id=PAD,
    )  # fmt: skip


@dataclass(frozen=True)
class EncoderConfig:
    """Saved as the model directory's ``config.json``.

    ``kmer``: each token is the k-mer starting at its base (overlapping, as DNABERT's
    tokens are), so the first layer already sees k-mer identities; ids 1..4**k, and
    4**k + 1 for a k-mer with any base other than ACGT. kmer = 1 is one base per token.
    """

    model: ModelConfig = field(default_factory=default_model)
    kmer: int = 4
    embedding_dim: int = 64
    pool_dim: int = 512  # per-token features averaged into the embedding
    fragment_length: int = 256  # the reference windows the model was trained on
    fragment_stride: int = 128  # reads up to length - stride bases fit whole in a window

    def __post_init__(self) -> None:
        if self.fragment_length > self.model.max_positions:
            raise ConfigError(
                f"fragment_length {self.fragment_length} exceeds the model's max_positions "
                f"{self.model.max_positions}"
            )
        if self.model.vocab_size != 4**self.kmer + 2:
            raise ConfigError(
                f"kmer = {self.kmer} needs vocab_size {4**self.kmer + 2}, "
                f"not {self.model.vocab_size}"
            )


def encode_bases(seqs: list[str], kmer: int = 1) -> tuple[Tensor, Tensor]:
    """Sequences -> overlapping k-mer ids (B, T) padded with 0, lengths (B,) (len - k + 1,
    or 0 for a sequence shorter than k)."""
    lengths = [max(len(s) - kmer + 1, 0) for s in seqs]
    ids = np.zeros((len(seqs), max(lengths, default=0)), dtype=np.int64)
    weights = 4 ** np.arange(kmer - 1, -1, -1)
    for row, seq in enumerate(seqs):
        if not lengths[row]:
            continue
        codes = _CODES[np.frombuffer(seq.encode("ascii"), dtype=np.uint8)]
        windows = np.lib.stride_tricks.sliding_window_view(codes, kmer)  # (T, k)
        unknown = (windows == 4).any(axis=1)
        ids[row, : lengths[row]] = np.where(unknown, 4**kmer + 1, 1 + windows @ weights)
    return torch.from_numpy(ids), torch.tensor(lengths)


class DnaEncoder(nn.Module):
    """ids (B, T), lengths (B,) -> unit vectors (B, embedding_dim)."""

    def __init__(self, config: EncoderConfig):
        super().__init__()
        self.config = config
        cfg = config.model
        self.embed = Embedder(cfg, token_embedding(cfg))
        self.layers = nn.ModuleList(EncoderLayer(cfg) for _ in range(cfg.encoder_layers))
        self.norm = nn.LayerNorm(cfg.d_model, eps=cfg.layer_norm_eps)
        self.widen = nn.Linear(cfg.d_model, config.pool_dim)
        self.project = nn.Linear(config.pool_dim, config.embedding_dim)

    def forward(self, ids: Tensor, lengths: Tensor) -> Tensor:
        B, T = ids.shape
        positions = torch.arange(T, device=ids.device).expand(B, T)
        real = padding_mask(lengths, T)  # (B, T)
        mask = None if bool(real.all()) else real[:, None, None, :]
        x = self.embed.forward(ids, positions)
        rotary = self.embed.rotary(positions)
        for layer in self.layers:
            x = layer.forward(x, mask, rotary)
        x = F.relu(self.widen(self.norm(x))) * real[..., None]  # (B, T, pool_dim)
        pooled = x.sum(1) / lengths.clamp(min=1)[:, None].to(x.dtype)  # (B, pool_dim)
        return F.normalize(self.project(pooled), dim=-1)

    def tokenize(self, seqs: list[str]) -> tuple[Tensor, Tensor]:
        return encode_bases(seqs, self.config.kmer)

    @torch.no_grad()
    def embed_seqs(self, seqs: list[str], batch_size: int = 256) -> np.ndarray:
        """Embeddings (N, embedding_dim) float32, in batches of similar length."""
        was_training = self.training
        self.eval()
        out = np.zeros((len(seqs), self.config.embedding_dim), dtype=np.float32)
        order = sorted(range(len(seqs)), key=lambda i: len(seqs[i]))
        for first in range(0, len(order), batch_size):
            rows = order[first : first + batch_size]
            ids, lengths = self.tokenize([seqs[i] for i in rows])
            out[rows] = self.forward(ids, lengths).numpy()
        self.train(was_training)
        return out

    def save(self, directory: str | Path) -> Path:
        """A model directory: ``config.json`` and ``model.safetensors`` (never pickle)."""
        directory = Path(directory)
        directory.mkdir(parents=True, exist_ok=True)
        write_json(directory / "config.json", {"kind": "dna_encoder", **to_dict(self.config)})
        tensors = {k: v.detach().contiguous() for k, v in self.state_dict().items()}
        save_tensors(directory / "model.safetensors", tensors)
        return directory

    @classmethod
    def load(cls, directory: str | Path) -> DnaEncoder:
        """Raises CheckpointError when the directory is no DNA encoder or does not fit."""
        directory = Path(directory)
        values = read_json(directory / "config.json")
        if values.pop("kind", None) != "dna_encoder":
            raise CheckpointError(f"{directory} holds no DNA encoder (seqweave align-train)")
        try:
            config = from_dict(EncoderConfig, values)
        except ConfigError as error:
            raise CheckpointError(f"{directory / 'config.json'}: {error}") from None
        encoder = cls(config)
        load_weights(encoder, directory)
        return encoder.eval()
