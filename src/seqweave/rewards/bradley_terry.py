"""The Bradley-Terry reward model: one number per (source, response), the baseline that
sequence-to-sequence reward modelling (``seq2seq_rm``) is compared with.

A Bradley-Terry model says a judge prefers y_w to y_l with probability
sigmoid(r(x, y_w) - r(x, y_l)); fitting r on preference pairs by maximum likelihood is the
loss ``-log sigmoid(r_chosen - r_rejected)`` (``bradley_terry_loss``). Here r is seqweave's
own ``Embedder`` and ``EncoderLayer`` stack over ``rm_input(source, response)`` (the same
text the seq2seq reward model reads), mean-pooled over the real tokens after a final layer
norm, and a linear head to a scalar. It sees the whole pair at once, so it can learn
anything that separates chosen from rejected answers in its training pairs, a spurious
cue such as length included; that is what the recipe ``recipes/reward_models`` measures.

An encoder without a decoder has no decoder state, so it trains in its own short loop
(``train_bradley_terry``) as the DNA encoder does, and its directory is ``config.json``
(``kind = "bradley_terry"``), ``model.safetensors`` and ``tokenizer.json``; never pickle.
"""

from __future__ import annotations

import random
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from seqweave.checkpoint import load_tokenizer, load_weights, read_json, save_tensors, write_json
from seqweave.config import ModelConfig
from seqweave.config_parse import from_dict, to_dict
from seqweave.data.framing import frame_source
from seqweave.data.preferences import PreferencePair
from seqweave.decoding.common import pad_batch
from seqweave.errors import CheckpointError, ConfigError
from seqweave.models.embedding import Embedder, token_embedding
from seqweave.models.layers import EncoderLayer, padding_mask
from seqweave.rewards.seq2seq_rm import SEPARATOR, reward_model_directory, rm_input
from seqweave.tokenizers import Tokenizer

KIND = "bradley_terry"


def bradley_terry_loss(chosen: Tensor, rejected: Tensor) -> Tensor:
    """Mean of ``-log sigmoid(r_chosen - r_rejected)`` over pairs; chosen, rejected (B,)."""
    return -F.logsigmoid(chosen - rejected).mean()


class BradleyTerryModel(nn.Module):
    """Token ids (B, T), lengths (B,) -> scalar rewards (B,)."""

    def __init__(self, config: ModelConfig):
        super().__init__()
        self.config = config
        self.embed = Embedder(config, token_embedding(config))
        self.layers = nn.ModuleList(EncoderLayer(config) for _ in range(config.encoder_layers))
        self.norm = nn.LayerNorm(config.d_model, eps=config.layer_norm_eps)
        self.head = nn.Linear(config.d_model, 1)

    def forward(self, ids: Tensor, lengths: Tensor) -> Tensor:
        B, T = ids.shape
        positions = torch.arange(T, device=ids.device).expand(B, T)
        real = padding_mask(lengths, T)  # (B, T)
        mask = None if bool(real.all()) else real[:, None, None, :]
        x = self.embed.forward(ids, positions)
        rotary = self.embed.rotary(positions)
        for layer in self.layers:
            x = layer.forward(x, mask, rotary)
        x = self.norm(x) * real[..., None]  # (B, T, D)
        pooled = x.sum(1) / lengths.clamp(min=1)[:, None].to(x.dtype)  # (B, D)
        return self.head(pooled).squeeze(-1)


@dataclass(frozen=True)
class BradleyTerryTraining:
    steps: int = 1000
    batch_size: int = 64  # pairs per update
    lr: float = 1e-3
    weight_decay: float = 0.0
    seed: int = 0
    log_every: int = 0  # 0: silent


class BradleyTerryReward:
    """A trained Bradley-Terry model with its tokenizer, as ``reward(source, output,
    reference) -> float`` (the reference is not used)."""

    def __init__(
        self,
        model: BradleyTerryModel,
        tokenizer: Tokenizer,
        separator: str = SEPARATOR,
        batch_size: int = 256,
    ):
        self.model = model
        self.tokenizer = tokenizer
        self.separator = separator
        self.batch_size = batch_size

    def batch(self, sources: Sequence[str], responses: Sequence[str]) -> tuple[Tensor, Tensor]:
        """Padded ids (B, T) and lengths (B,) of the model's inputs."""
        texts = [rm_input(s, r, self.separator) for s, r in zip(sources, responses, strict=True)]
        cfg = self.model.config
        rows = [
            frame_source(ids, cfg, cfg.max_positions) for ids in self.tokenizer.encode_batch(texts)
        ]
        return pad_batch(rows, cfg.pad_id, self.model.embed.tokens.weight.device)

    @torch.no_grad()
    def score(self, sources: Sequence[str], responses: Sequence[str]) -> list[float]:
        self.model.eval()
        scores: list[float] = []
        for first in range(0, len(sources), self.batch_size):
            chunk = slice(first, first + self.batch_size)
            scores += self.model(*self.batch(sources[chunk], responses[chunk])).tolist()
        return scores

    def __call__(self, source: str, output: str, reference: str | None = None) -> float:
        return self.score([source], [output])[0]

    def save(self, directory: str | Path) -> Path:
        directory = Path(directory)
        directory.mkdir(parents=True, exist_ok=True)
        config = {"kind": KIND, "separator": self.separator, "model": to_dict(self.model.config)}
        write_json(directory / "config.json", config)
        tensors = {k: v.detach().contiguous() for k, v in self.model.state_dict().items()}
        save_tensors(directory / "model.safetensors", tensors)
        self.tokenizer.save(directory)
        return directory

    @classmethod
    def load(cls, directory: str | Path) -> BradleyTerryReward:
        """Raises CheckpointError when the directory holds no Bradley-Terry model or its
        files do not fit."""
        directory = Path(directory)
        values = read_json(directory / "config.json")
        if values.get("kind") != KIND:
            raise CheckpointError(f"{directory} holds no Bradley-Terry reward model")
        try:
            config = from_dict(ModelConfig, values["model"])
        except (ConfigError, KeyError) as error:
            raise CheckpointError(f"{directory / 'config.json'}: {error}") from None
        model = BradleyTerryModel(config)
        load_weights(model, directory)
        return cls(
            model.eval(), load_tokenizer(directory, config), values.get("separator", SEPARATOR)
        )


def train_bradley_terry(
    pairs: Sequence[PreferencePair],
    tokenizer: Tokenizer,
    config: ModelConfig,
    training: BradleyTerryTraining = BradleyTerryTraining(),
    separator: str = SEPARATOR,
) -> tuple[BradleyTerryReward, list[float]]:
    """Fit a fresh model on ``pairs`` by the Bradley-Terry loss with AdamW; returns the
    reward and the loss of every update. Batches are drawn with replacement from a
    generator seeded by ``training.seed``, as is the initialisation."""
    torch.manual_seed(training.seed)
    draw = random.Random(training.seed)
    reward = BradleyTerryReward(BradleyTerryModel(config), tokenizer, separator)
    model = reward.model.train()
    optimizer = torch.optim.AdamW(
        model.parameters(), lr=training.lr, weight_decay=training.weight_decay
    )
    losses = []
    for step in range(1, training.steps + 1):
        chunk = draw.choices(pairs, k=training.batch_size)
        sources = [p.source for p in chunk] * 2
        responses = [p.chosen for p in chunk] + [p.rejected for p in chunk]
        scores = model(*reward.batch(sources, responses))
        loss = bradley_terry_loss(scores[: len(chunk)], scores[len(chunk) :])
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        losses.append(loss.item())
        if training.log_every and step % training.log_every == 0:
            recent = losses[-training.log_every :]
            print(f"bradley-terry step {step}: loss {sum(recent) / len(recent):.4f}", flush=True)
    model.eval()
    return reward, losses


def build_bradley_terry(config: object) -> BradleyTerryReward:
    """The reward builder (``REWARDS``' protocol): the model from ``rl.reward_model``."""
    return BradleyTerryReward.load(reward_model_directory(config, "Bradley-Terry"))
