"""The training loop: token-budget batches, AdamW, schedules, validation, checkpoints.

Runs in one process or under ``torchrun`` with DistributedDataParallel. The batches
come from a batch source (``train/batches.py``: the training set in memory, or streamed
from shards); the loss is normalised by the token count of the whole global update, so
the update equals the single-process update on the same examples. Only rank 0 logs,
validates and writes checkpoints; the others wait at a barrier.
"""

from __future__ import annotations

import contextlib
import math
import time
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path

import torch

from seqweave.checkpoint import point_link, prune_checkpoints
from seqweave.config import DecodeConfig, ExperimentConfig
from seqweave.data.packing import collate_packed
from seqweave.objectives.e2s2 import noise_seed, noise_vocabulary, noisy_batch
from seqweave.objectives.pretraining import masked_batch
from seqweave.objectives.registry import TrainingLoss, build_training_loss
from seqweave.tokenizers.mixed_prompt import with_scalars
from seqweave.train.batches import BatchSource, MicroBatch, Update
from seqweave.train.data import Batch, TokenizedSet, collate
from seqweave.train.distributed import Distributed
from seqweave.train.fsdp import full_copy
from seqweave.train.report import TrainingLog
from seqweave.train.resume import Progress, save_checkpoint
from seqweave.train.validate import validate, validate_objective


def learning_rate(step: int, cfg) -> float:
    """Learning rate for update number ``step`` (1-based)."""
    warmup = max(1, cfg.warmup_steps)
    if cfg.schedule == "inverse_sqrt":
        return cfg.lr * min(step / warmup, math.sqrt(warmup / max(step, 1)))
    if step <= cfg.warmup_steps:
        return cfg.lr * step / warmup
    if cfg.schedule == "constant":
        return cfg.lr
    progress = min(1.0, (step - cfg.warmup_steps) / max(1, cfg.max_steps - cfg.warmup_steps))
    floor = cfg.lr * cfg.min_lr_ratio
    return floor + (cfg.lr - floor) * 0.5 * (1.0 + math.cos(math.pi * progress))


def make_optimizer(model: torch.nn.Module, cfg) -> torch.optim.Optimizer:
    """AdamW; biases, norms and embeddings' padding row follow the usual no-decay rule for
    one-dimensional parameters."""
    decay = [p for p in model.parameters() if p.requires_grad and p.dim() >= 2]
    no_decay = [p for p in model.parameters() if p.requires_grad and p.dim() < 2]
    groups = [
        {"params": decay, "weight_decay": cfg.weight_decay},
        {"params": no_decay, "weight_decay": 0.0},
    ]
    return torch.optim.AdamW(groups, lr=cfg.lr, betas=cfg.betas)


@dataclass
class Trainer:
    config: ExperimentConfig
    model: torch.nn.Module  # the bare model (validation, checkpoints)
    wrapped: torch.nn.Module  # what the forward pass runs: DDP or the model itself
    optimizer: torch.optim.Optimizer
    tokenizer: object
    batches: BatchSource
    train_set: TokenizedSet | None  # None when streamed (data.stream)
    valid_set: TokenizedSet | None
    dist: Distributed
    device: torch.device
    log: TrainingLog
    progress: Progress

    def run(self) -> None:
        cfg = self.config.train
        started = time.monotonic()
        window_loss, window_tokens, window_start = 0.0, 0, time.monotonic()
        while not self._finished(started):
            loss_sum, tokens = self._update(self.batches.next_update(self.progress))
            self.progress.step += 1
            window_loss += loss_sum
            window_tokens += tokens
            lr = self.optimizer.param_groups[0]["lr"]
            elapsed = max(time.monotonic() - window_start, 1e-9)
            self.log.advance(loss_sum / max(tokens, 1), window_tokens / elapsed, lr)
            if self.progress.step % cfg.log_every == 0:
                self.log.write(
                    {
                        "kind": "train",
                        "step": self.progress.step,
                        "epoch": self.progress.epoch,
                        "loss": window_loss / max(window_tokens, 1),
                        "lr": lr,
                        "tokens_per_second": window_tokens / elapsed,
                        "elapsed_seconds": time.monotonic() - started,
                    }
                )
                window_loss, window_tokens, window_start = 0.0, 0, time.monotonic()
            if self.progress.step % cfg.validate_every == 0:
                self.checkpoint()
        if self.progress.step % cfg.validate_every != 0:
            self.checkpoint()
        self.log.close()
        self.log.plot()

    def _finished(self, started: float) -> bool:
        cfg = self.config.train
        if self.progress.step >= cfg.max_steps:
            return True
        if cfg.max_epochs and self.progress.epoch >= cfg.max_epochs:
            return True
        return bool(cfg.max_minutes) and time.monotonic() - started > 60 * cfg.max_minutes

    def _update(self, update: Update) -> tuple[float, int]:
        """One optimizer update over its micro-batches; returns (summed loss, tokens)."""
        cfg = self.config.train
        lr = learning_rate(self.progress.step + 1, cfg)
        for param_group in self.optimizer.param_groups:
            param_group["lr"] = lr
        self.wrapped.train()
        loss_sum = torch.zeros((), device=self.device)
        for n, micro in enumerate(update.micro):
            weight = self.dist.world_size / update.tokens if micro.counts else 0.0
            batch = self._collate(micro)
            sync = n == len(update.micro) - 1
            with self._no_sync(sync), self._autocast():
                loss = self._loss(batch)
            (loss * weight).backward()
            loss_sum += loss.detach() * (weight > 0)
        if cfg.clip_norm > 0:
            torch.nn.utils.clip_grad_norm_(self.model.parameters(), cfg.clip_norm)
        self.optimizer.step()
        self.optimizer.zero_grad(set_to_none=True)
        return float(self.dist.sum(loss_sum)), update.tokens

    @cached_property
    def training_loss(self) -> TrainingLoss:
        """The token loss of the model's kind plus the configured additive objectives
        (``seqweave.objectives.registry``)."""
        return build_training_loss(self.config)

    def _loss(self, micro: Batch) -> torch.Tensor:
        """The summed training loss of one micro-batch, through the wrapped model so that
        data-parallel gradients synchronise."""
        return self.training_loss(self.model, self.wrapped, micro)

    def _collate(self, micro: MicroBatch) -> Batch:
        if self.config.data.pack_sequences:
            row_tokens = self.config.data.max_target_len
            batch = collate_packed(micro.sources, micro.targets, self.model.config, row_tokens)
        else:
            batch = collate(micro.sources, micro.targets, self.model.config)
        objectives = self.config.objectives
        seed = noise_seed(self.config.train.seed, self.progress.step, micro.keys[0])
        if objectives.corrupts_source:  # denoising pretraining (objectives/e2s2.py)
            vocabulary = noise_vocabulary(self.tokenizer)
            batch = noisy_batch(batch, objectives.denoising, vocabulary, seed)
        if self.model.config.scalar_head:  # the float channel, from the prompts' text
            batch = with_scalars(batch, self.tokenizer, micro.examples)
        if self.config.train.objective == "mlm":  # BERT masking (objectives/pretraining.py)
            batch = masked_batch(batch, noise_vocabulary(self.tokenizer), seed)
        return self.dist.shard_sequences(batch, self.model.config.pad_id).to(self.device)

    def _no_sync(self, sync: bool):
        if sync or not hasattr(self.wrapped, "no_sync"):
            return contextlib.nullcontext()
        return self.wrapped.no_sync()

    def _autocast(self):
        precision = self.config.train.precision
        if precision == "fp32":
            return contextlib.nullcontext()
        dtype = torch.bfloat16 if precision == "bf16" else torch.float16
        return torch.autocast(self.device.type, dtype=dtype)

    def checkpoint(self) -> None:
        """Validate, write a checkpoint, and move ``best`` if it improved (rank 0 only;
        under FSDP every rank first helps gather the full weights; every rank hands over
        its generator state and stream position)."""
        model, optimizer = self.model, self.optimizer
        if self.dist.fsdp:
            model, optimizer = full_copy(model, optimizer)
        self.batches.save_state(self.progress)
        result = self._validate(model) if self.dist.is_main else {}
        rank_rng = self.dist.gather_objects(torch.get_rng_state())
        if self.dist.is_main:
            out_dir = Path(self.config.train.out_dir)
            score = result.get("score")
            improved = score is not None and (
                self.progress.best_score is None or score > self.progress.best_score
            )
            if improved:
                self.progress.best_score, self.progress.best_step = score, self.progress.step
            decode = DecodeConfig(max_new_tokens=self._max_new_tokens())
            final = save_checkpoint(
                out_dir,
                model,
                self.tokenizer,
                optimizer,
                self.progress,
                self.config,
                decode,
                rank_rng,
            )
            if improved or not (out_dir / "best").exists():
                point_link(out_dir / "best", final)
            prune_checkpoints(out_dir, self.config.train.keep_checkpoints)
        self.dist.barrier()

    def _max_new_tokens(self) -> int:
        if self.config.objectives.set_matching.on:  # a set decoder runs its T steps
            return self.config.objectives.set_matching.steps
        known = self.train_set or self.valid_set  # a streamed corpus's longest is unknown
        targets = known.targets if known is not None else []
        longest = max((len(t) for t in targets), default=self.config.data.max_target_len)
        return min(self.model.config.max_positions, 2 * longest + 10)

    def _validate(self, model: torch.nn.Module) -> dict:
        if self.valid_set is None:
            return {}
        if self.config.train.objective != "seq2seq":  # mlm, lm, tag: their own figures
            result = validate_objective(model, self.tokenizer, self.valid_set, self.config)
        else:
            result = validate(
                model, self.tokenizer, self.valid_set, self.config, self._max_new_tokens()
            )
        record = {"kind": "valid", "step": self.progress.step, **result}
        self.log.write(record)
        shown = ", ".join(f"{k} {v:.4g}" for k, v in result.items() if isinstance(v, float))
        self.log.message(f"step {self.progress.step}: {shown}")
        return result
