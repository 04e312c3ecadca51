"""``seqweave train``: set up data, tokenizer, model and optimizer, then run the loop.

>>> from seqweave.config import load_config      # doctest: +SKIP
>>> best = train(load_config("gec.toml"))         # doctest: +SKIP
"""

from __future__ import annotations

import dataclasses
import itertools
import json
from pathlib import Path

import torch

from seqweave.checkpoint import load_model_config, load_weights
from seqweave.config import ExperimentConfig, ModelConfig, to_dict
from seqweave.data.actions import SKIP_TOKEN
from seqweave.data.copy_words import copy_ids
from seqweave.data.readers import parse_jsonl_lines, read_examples
from seqweave.data.stream import find_shards
from seqweave.device import resolve_device
from seqweave.errors import ConfigError
from seqweave.models import build_model
from seqweave.objectives.e2s2 import MASK_TOKEN
from seqweave.objectives.set_matching import EMPTY_TOKEN, with_empty_id
from seqweave.tokenizers import Tokenizer, build_tokenizer
from seqweave.tokenizers.mixed_prompt import scalar_ids
from seqweave.train.batches import EpochBatches, StreamedBatches
from seqweave.train.data import tokenize_set
from seqweave.train.distributed import Distributed
from seqweave.train.fsdp import reshard_optimizer
from seqweave.train.loop import Trainer, learning_rate, make_optimizer
from seqweave.train.neftune import add_neftune
from seqweave.train.report import TrainingLog
from seqweave.train.resume import Progress, load_checkpoint
from seqweave.train.rl import PromptBatches, RLTrainer

TOKENIZER_DIR = "tokenizer"


def resolve_model_config(cfg: ModelConfig, tokenizer: Tokenizer) -> ModelConfig:
    """The model config with the vocabulary and special ids taken from the tokenizer."""
    skip_id = cfg.skip_id
    if cfg.action_head:
        skip_id = tokenizer.token_to_id(SKIP_TOKEN)
        if skip_id is None:
            raise ConfigError(f"model.action_head: the tokenizer has no {SKIP_TOKEN} token")
    if cfg.architecture == "hier_nse":
        cfg = dataclasses.replace(cfg, hier_nse=copy_ids(cfg.hier_nse, tokenizer))
    if cfg.scalar_head:
        cfg = dataclasses.replace(cfg, **scalar_ids(tokenizer))
    return dataclasses.replace(
        cfg,
        vocab_size=tokenizer.vocab_size,
        pad_id=tokenizer.pad_id,
        bos_id=tokenizer.bos_id,
        eos_id=tokenizer.eos_id,
        decoder_start_id=tokenizer.eos_id if cfg.target_bos else tokenizer.bos_id,
        skip_id=skip_id,
    )


def _tokenizer(cfg: ExperimentConfig, examples, out_dir: Path, dist: Distributed) -> Tokenizer:
    """Build (or load, with ``tokenizer.path``) the tokenizer once on rank 0 and share it
    through the output directory."""
    path = out_dir / TOKENIZER_DIR
    t = cfg.tokenizer
    source = t.path or (cfg.train.init_from if cfg.rl.on else "")  # RL: the policy's own
    if dist.is_main:
        if source:
            tokenizer = Tokenizer.load(source)
        else:
            texts = [text for e in examples for text in (e.source, e.target or "")]
            tokenizer = build_tokenizer(
                t.kind, texts, t.vocab_size, t.task_tokens, t.alphabet or None, t.min_frequency
            )
        if cfg.model.action_head:  # the sequence-to-action model writes deletions as <skip>
            tokenizer.add_task_tokens([SKIP_TOKEN])
        if cfg.objectives.corrupts_source or cfg.train.objective == "mlm":  # masks: <mask>
            tokenizer.add_task_tokens([MASK_TOKEN])
        if cfg.objectives.set_matching.on:  # set steps without a label write <empty>
            tokenizer.add_task_tokens([EMPTY_TOKEN])
        tokenizer.save(path)
    dist.barrier()
    return Tokenizer.load(path)


def train(cfg: ExperimentConfig, resume: bool = False) -> Path:
    """Train as configured; returns the directory of the best model.

    Raises:
        ConfigError: missing training data, or ``resume`` with nothing to resume.
        DataError: a malformed data file (the message names file and line).
    """
    if not cfg.data.train:
        raise ConfigError(
            "data.train is not set: give the training file in the config or with "
            "--set data.train=PATH"
        )
    device, dist = _devices(cfg)
    out_dir = Path(cfg.train.out_dir)
    last = out_dir / "last"
    if resume and not last.exists():
        raise ConfigError(f"--resume: no checkpoint at {last}")
    out_dir.mkdir(parents=True, exist_ok=True)

    train_examples = _training_examples(cfg)
    valid_examples = read_examples(cfg.data.valid) if cfg.data.valid else []
    tokenizer = Tokenizer.load(last) if resume else _tokenizer(cfg, train_examples, out_dir, dist)
    cfg = with_empty_id(
        dataclasses.replace(cfg, model=resolve_model_config(cfg.model, tokenizer)), tokenizer
    )
    model, optimizer, progress = _model(cfg, device, dist, last.resolve() if resume else None)
    if cfg.train.neftune_alpha:
        add_neftune(model, cfg.train.neftune_alpha)
    train_set, valid_set = _datasets(cfg, tokenizer, train_examples, valid_examples)
    if cfg.data.stream:
        batches = StreamedBatches(cfg, tokenizer, dist, device, progress)
    else:
        batches = (PromptBatches if cfg.rl.on else EpochBatches)(train_set, cfg, dist)
    log = TrainingLog(
        out_dir,
        cfg.train.max_steps,
        progress.step,
        dist.is_main,
        cfg.train.progress,
        cfg.train.max_minutes,
    )
    _report_datasets(cfg, log, train_set, valid_set)
    if dist.is_main:
        (out_dir / "config.json").write_text(json.dumps(to_dict(cfg), indent=2) + "\n")
    log.message(
        f"model: {sum(p.numel() for p in model.parameters()):,} parameters, "
        f"{cfg.model.architecture}, device {device}, {dist.world_size} process(es)"
    )
    wrapped = dist.wrap(model, device)
    if dist.fsdp:  # fully_shard replaced the parameters the optimizer holds
        optimizer = reshard_optimizer(optimizer, make_optimizer(model, cfg.train))
    trainer = (RLTrainer if cfg.rl.on else Trainer)(
        config=cfg,
        model=model,
        wrapped=wrapped,
        optimizer=optimizer,
        tokenizer=tokenizer,
        batches=batches,
        train_set=train_set,
        valid_set=valid_set,
        dist=dist,
        device=device,
        log=log,
        progress=progress,
    )
    try:
        trainer.run()
    finally:
        dist.close()
    return out_dir / "best"


def _devices(cfg: ExperimentConfig) -> tuple[torch.device, Distributed]:
    """This process's device and its place among the torchrun processes (if any)."""
    device = resolve_device(cfg.train.device)
    dist = Distributed.from_environment(device.type, cfg.train)
    if dist.enabled and cfg.objectives.e2s2.on:
        raise ConfigError(
            "objectives.e2s2: E2S2's objectives run on the bare model (its contrastive "
            "negatives are the local batch), not under data parallelism"
        )
    if dist.enabled and cfg.rl.on:
        raise ConfigError("rl.algorithm: reinforcement learning runs in one process")
    if dist.enabled and device.type == "cuda":
        device = torch.device("cuda", dist.local_rank)
        torch.cuda.set_device(device)
    return device, dist


def _model(cfg: ExperimentConfig, device: torch.device, dist: Distributed, checkpoint):
    """The model (seeded; from ``train.init_from`` or the ``checkpoint`` to resume), its
    optimizer and the progress so far."""
    torch.manual_seed(cfg.train.seed)
    model = build_model(cfg.model).to(device)
    if cfg.train.init_from and checkpoint is None:
        _initialise(model, Path(cfg.train.init_from), dist.is_main)
    optimizer = make_optimizer(model, cfg.train)
    progress = Progress()
    if checkpoint is not None:
        progress = load_checkpoint(checkpoint, model, optimizer, dist.rank)
    return model, optimizer, progress


def _training_examples(cfg: ExperimentConfig) -> list:
    """The training examples in memory; when streamed, only the first window of each shard,
    which is what a tokenizer learnt from the corpus reads (none with ``tokenizer.path``)."""
    if not cfg.data.stream:
        return read_examples(cfg.data.train)
    if cfg.tokenizer.path:  # nothing to learn a tokenizer from
        return []
    examples = []
    for path in find_shards(cfg.data.train):
        with path.open(encoding="utf-8", errors="surrogateescape") as handle:
            lines = list(itertools.islice(handle, cfg.data.stream_window))
        examples += parse_jsonl_lines(
            lines, str(path), 1, cfg.data.source_field, cfg.data.target_field
        )
    return examples


def _datasets(cfg: ExperimentConfig, tokenizer, train_examples, valid_examples):
    """The tokenized training set (None when streamed) and validation set (None without
    validation data)."""
    train_set = None
    if not cfg.data.stream:
        train_set = tokenize_set("train", train_examples, tokenizer, cfg.model, cfg.data)
    valid_set = None
    if valid_examples:
        valid_set = tokenize_set("valid", valid_examples, tokenizer, cfg.model, cfg.data)
    return train_set, valid_set


def _report_datasets(cfg: ExperimentConfig, log: TrainingLog, train_set, valid_set) -> None:
    """Log what was kept of each set; refuse a training set left empty by the limits."""
    for data in (train_set, valid_set):
        if data is not None:
            log.message(f"{data.name}: {data.report.describe()}")
    if train_set is None:
        shards = find_shards(cfg.data.train)
        log.message(
            f"train: streamed from {len(shards)} shard(s), {cfg.data.stream_window} lines a window"
        )
        return
    if not train_set.sources:
        raise ConfigError(f"no training example is within the length limits ({cfg.data.train})")
    if cfg.data.pack_sequences and any(s != train_set.sources[0] for s in train_set.sources):
        raise ConfigError(
            "data.pack_sequences packs targets after one shared prefix, but the training "
            "sources differ: put each sequence in the target and leave the source empty"
        )


__all__ = ["learning_rate", "resolve_model_config", "train"]


def _initialise(model: torch.nn.Module, directory: Path, announce: bool) -> None:
    """Copy the weights of the model in ``directory`` into ``model`` where names and shapes
    agree, and say what was copied and what was left as initialised."""
    source = build_model(load_model_config(directory))
    load_weights(source, directory)
    theirs = source.state_dict()
    copied, left = 0, []
    with torch.no_grad():
        for name, tensor in model.state_dict().items():
            if name in theirs and theirs[name].shape == tensor.shape:
                tensor.copy_(theirs[name])
                copied += 1
            else:
                left.append(name)
    if copied == 0:
        raise ConfigError(f"train.init_from={directory}: no parameter fits this model")
    if announce:
        shown = ", ".join(left[:6]) + (" ..." if len(left) > 6 else "")
        print(
            f"initialised {copied} tensors from {directory}"
            + (f"; {len(left)} left as initialised: {shown}" if left else ""),
            flush=True,
        )
