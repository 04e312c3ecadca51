"""Validation: loss over the whole validation set, and the task metric on decoded outputs."""

from __future__ import annotations

import math

import torch

from seqweave.config import DecodeConfig, ExperimentConfig
from seqweave.data.batching import token_batches
from seqweave.decoding import decode_many
from seqweave.metrics import compute_metric
from seqweave.objectives.e2s2 import noise_vocabulary
from seqweave.objectives.mle import label_smoothed_nll
from seqweave.objectives.pretraining import build_objective, masked_batch
from seqweave.train.data import TokenizedSet, collate


def references(example) -> list[str]:
    """All references of an example: its ``references`` field if present, else its target."""
    refs = example.extra.get("references")
    if isinstance(refs, list) and refs and all(isinstance(r, str) for r in refs):
        return refs
    return [example.target or ""]


@torch.inference_mode()
def validation_loss(model, data: TokenizedSet, cfg: ExperimentConfig) -> dict[str, float]:
    model.eval()
    device = model.device
    loss_sum = nll_sum = 0.0
    tokens = 0
    for batch in token_batches(data.lengths(), cfg.data.max_tokens, shuffle=False):
        b = collate(
            [data.sources[i] for i in batch], [data.targets[i] for i in batch], model.config
        )
        b = b.to(device)
        logits = model(b.src, b.src_lengths, b.tgt_in)
        loss, nll = label_smoothed_nll(
            logits, b.tgt_out, model.config.pad_id, cfg.train.label_smoothing
        )
        loss_sum += float(loss)
        nll_sum += float(nll)
        tokens += b.num_tokens
    nll = nll_sum / max(tokens, 1)
    return {"valid_loss": loss_sum / max(tokens, 1), "valid_nll": nll, "valid_ppl": math.exp(nll)}


@torch.inference_mode()
def validate_objective(model, tokenizer, data: TokenizedSet, cfg: ExperimentConfig) -> dict:
    """Loss, perplexity and accuracy of ``train.objective`` (mlm: masked tokens, each batch
    masked with a fixed seed so every validation masks alike; lm: target tokens without the
    final [eos]; tag: labels, where accuracy is Q3 for secondary structure). ``score``: the
    accuracy for tag, else minus the loss."""
    model.eval()
    objective = build_objective(cfg)
    loss = 0.0
    correct = count = 0
    for n, batch in enumerate(token_batches(data.lengths(), cfg.data.max_tokens, shuffle=False)):
        sources = [data.sources[i] for i in batch]
        b = collate(sources, [data.targets[i] for i in batch], model.config)
        if cfg.train.objective == "mlm":
            b = masked_batch(b, noise_vocabulary(tokenizer), seed=n)
        measured = objective.measure(model, b.to(model.device))
        loss += float(measured.loss)
        correct, count = correct + measured.correct, count + measured.count
    mean = loss / max(count, 1)
    accuracy = correct / max(count, 1)
    score = accuracy if cfg.train.objective == "tag" else -mean
    return {
        "valid_loss": mean,
        "valid_ppl": math.exp(mean),
        "valid_accuracy": accuracy,
        "valid_scored": float(count),
        "score": score,
    }


def validate(model, tokenizer, data: TokenizedSet, cfg: ExperimentConfig, max_new_tokens: int):
    """Loss, and the configured metric on up to ``valid_decode_limit`` greedy outputs.

    ``score`` is what picks the best checkpoint: the metric, or minus the loss
    when the metric is ``none`` (and for a nar_drafter or nar_editor, which do not
    decode token by token).
    """
    if model.config.architecture == "sasrec":  # a ranker: no text to decode
        return validate_ranking(model, tokenizer, data)
    if model.config.scalar_head:  # a regression head: numbers, not text
        return validate_regression(model, tokenizer, data)
    result = validation_loss(model, data, cfg)
    metric = cfg.train.metric
    limit = cfg.train.valid_decode_limit
    if metric == "none" or limit <= 0 or model.config.architecture.startswith("nar_"):
        return {**result, "score": -result["valid_loss"]}
    examples = data.examples[:limit]
    decode = DecodeConfig(decoder="greedy", max_new_tokens=max_new_tokens, batch_size=64)
    outputs = decode_many(model, data.sources[:limit], decode)
    hypotheses = tokenizer.decode_batch([o.tokens for o in outputs])
    sources = [e.source for e in examples]
    scores = compute_metric(metric, hypotheses, [references(e) for e in examples], sources)
    headline = next(iter(scores))
    return {**result, **{f"valid_{k}": v for k, v in scores.items()}, "score": scores[headline]}


def validate_ranking(model, tokenizer, data: TokenizedSet) -> dict:
    """A recommender's next-item cross-entropy (full softmax of its readout) and HR@10 and
    NDCG@10, full ranking and 100 sampled negatives (``seqweave.recommend``); ``score`` is
    the full-ranking NDCG@10."""
    from seqweave.recommend import item_scores, network_scorer, rank_examples

    targets = [e.target or "" for e in data.examples]
    readout = model.config.reasoning_readout
    figures = rank_examples(network_scorer(model), tokenizer, data.sources, targets, readout)
    plain = {f"valid_{k}": v for k, v in figures.items() if isinstance(v, float)}
    nll = 0.0
    for start in range(0, len(data.sources), 256):
        scores = item_scores(model, data.sources[start : start + 256])
        items = torch.tensor(
            [t[0] for t in data.targets[start : start + 256]], device=scores.device
        )
        nll += float(torch.nn.functional.cross_entropy(scores, items, reduction="sum"))
    loss = nll / max(len(data.sources), 1)
    return {"valid_loss": loss, "valid_nll": loss, **plain, "score": figures["full_ndcg@10"]}


def validate_regression(model, tokenizer, data: TokenizedSet) -> dict:
    """A scalar-head model's mean squared error and Spearman's rho over every ``<mask>`` of
    the validation prompts (``models/scalars.py``); ``score`` is minus the error. Rho is
    NaN where it is undefined (fewer than 3 values, or constant predictions)."""
    from scipy.stats import spearmanr

    from seqweave.models.scalars import predict_scalars
    from seqweave.tokenizers.mixed_prompt import prompt_values

    predicted = predict_scalars(model, tokenizer, [e.source for e in data.examples], 64)
    truth = [prompt_values(e.target or "") for e in data.examples]
    pairs = [
        (p, t)
        for ps, ts in zip(predicted, truth, strict=True)
        for p, t in zip(ps, ts, strict=False)
    ]
    guess, real = zip(*pairs, strict=True) if pairs else ((), ())
    mse = sum((g - r) ** 2 for g, r in pairs) / max(len(pairs), 1)
    defined = len(pairs) >= 3 and len(set(guess)) > 1 and len(set(real)) > 1
    rho = float(spearmanr(guess, real).statistic) if defined else math.nan
    return {"valid_loss": mse, "valid_mse": mse, "valid_spearman": rho, "score": -mse}
