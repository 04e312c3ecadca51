"""Next-item recommendation with a trained ``sasrec`` model: histories in, ranked items out.

Shared by ``seqweave recommend``, the server's ``POST /v1/recommend``, the trainer's
validation of a recommender and ``recipes/rearec``. A history is a list of item ids
(or one string of them, space-separated), oldest first; every id must be an item the
model knows (one token of its ``words`` tokenizer), and an unknown one is an error
that names it, never a silent ``<unk>``. Histories longer than the model's positions
keep their most recent items.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import torch
from torch import Tensor

from seqweave.data.framing import frame_source
from seqweave.errors import DataError
from seqweave.metrics_recsys import (
    MISSING,
    full_ranks,
    oracle_best_step,
    ranking_figures,
    sample_negatives,
    sampled_ranks,
)


def history_ids(tokenizer, history: str | Sequence[str]) -> list[int]:
    """Token ids of a history's items.

    Raises:
        DataError: the history is empty, or names items the model does not know (all of
            them are listed).
    """
    items = history.split() if isinstance(history, str) else [str(item) for item in history]
    if not items:
        raise DataError("the history is empty: give at least one item id")
    ids = [tokenizer.token_to_id(item) for item in items]
    unknown = [item for item, i in zip(items, ids, strict=True) if i is None]
    unknown += [item for item, i in zip(items, ids, strict=True) if i in tokenizer.special_ids]
    if unknown:
        raise DataError(f"unknown item id(s), not in the model's vocabulary: {', '.join(unknown)}")
    return ids


def framed_history(ids: list[int], config) -> list[int]:
    """The most recent items that fit the model's positions, framed as in training."""
    return frame_source(ids[-(config.max_positions - 1) :], config)


def _batch(sources: Sequence[list[int]], pad_id: int, device) -> tuple[Tensor, Tensor]:
    S = max(len(s) for s in sources)
    src = torch.full((len(sources), S), pad_id, dtype=torch.long)
    for row, source in enumerate(sources):
        src[row, : len(source)] = torch.tensor(source, dtype=torch.long)
    lengths = torch.tensor([len(s) for s in sources], dtype=torch.long)
    return src.to(device), lengths.to(device)


@torch.inference_mode()
def step_scores(network, sources: Sequence[list[int]]) -> Tensor:
    """(B, K + 1, V): every token's score under each step's state, for framed sources."""
    network.eval()
    src, lengths = _batch(sources, network.config.pad_id, network.device)
    return network.logits(network.step_states(src, lengths)).float()


@torch.inference_mode()
def item_scores(network, sources: Sequence[list[int]]) -> Tensor:
    """(B, V): every token's score as the next item, by the model's readout."""
    network.eval()
    src, lengths = _batch(sources, network.config.pad_id, network.device)
    return network.scores(src, lengths).float()


def excluded(tokenizer, sources: Sequence[list[int]], vocab_size: int) -> Tensor:
    """(B, V) True at what is not a candidate: special tokens and each row's history."""
    mask = torch.zeros(len(sources), vocab_size, dtype=torch.bool)
    mask[:, sorted(i for i in tokenizer.special_ids if i < vocab_size)] = True
    for row, source in enumerate(sources):
        mask[row, source] = True
    return mask


def top_items(model, histories: Sequence[str | Sequence[str]], top_k: int) -> list[list[dict]]:
    """For each history, the ``top_k`` best next items (none of the history's, not only
    the recent ones the network reads) with their scores, best first; ``model`` is a loaded
    ``seqweave.Seq2Seq`` of a sasrec network."""
    tokenizer, network = model.tokenizer, model.network
    ids = [history_ids(tokenizer, history) for history in histories]
    sources = [framed_history(history, network.config) for history in ids]
    scores = item_scores(network, sources).cpu()
    scores = scores.masked_fill(excluded(tokenizer, ids, scores.shape[1]), float("-inf"))
    k = min(top_k, int(torch.isfinite(scores).sum(1).min()))
    best = scores.topk(k, dim=1)
    return [
        [
            {"item": tokenizer.id_to_token(int(i)), "score": float(s)}
            for s, i in zip(values, indices, strict=True)
        ]
        for values, indices in zip(best.values, best.indices, strict=True)
    ]


def network_scorer(network) -> Callable[[list[list[int]]], Tensor]:
    """``rank_examples``'s scorer for a sasrec network: its scores per step."""
    return lambda sources: step_scores(network, sources)


def rank_examples(
    scorer: Callable[[list[list[int]]], Tensor],
    tokenizer,
    sources: Sequence[list[int]],
    targets: Sequence[str],
    readout: str = "last",
    seed: int = 0,
    negatives: int = 100,
    k: int = 10,
    batch_size: int = 256,
    interacted: Sequence[Sequence[int]] | None = None,
) -> dict:
    """HR@k and NDCG@k under full ranking and ``negatives`` sampled negatives
    (``metrics_recsys``), on framed sources and their next items, plus the
    oracle-best-step analysis when there are reasoning steps. ``scorer`` gives, for framed
    sources, (B, steps, V) scores over the tokenizer's ids (a baseline: one step); the
    steps' ``readout`` ranks: ``last`` or ``mean``. The sampled negatives depend only on
    ``seed`` and the example's index, so every method meets the same ones. What a user has
    interacted with (excluded from full ranking, never a negative) is their source, or
    ``interacted`` (ids per example) when the source keeps only recent items."""
    target_ids = [tokenizer.token_to_id(t) for t in targets]
    target_ids = [MISSING if i is None or i in tokenizer.special_ids else i for i in target_ids]
    candidates = [i for i in range(tokenizer.vocab_size) if i not in tokenizer.special_ids]
    seen_all = sources if interacted is None else interacted
    can_sample = all(
        len(candidates) - len({*s, t}) >= negatives
        for s, t in zip(seen_all, target_ids, strict=True)
    )  # else (a toy vocabulary) only full ranking is reported
    full, sampled, per_step = [], [], []
    for start in range(0, len(sources), batch_size):
        chunk = list(sources[start : start + batch_size])
        targets_chunk = torch.tensor(target_ids[start : start + batch_size])
        steps = scorer(chunk).cpu()  # (B, K + 1, V)
        chosen = steps.mean(1) if readout == "mean" else steps[:, -1]
        seen = chunk if interacted is None else list(interacted[start : start + batch_size])
        mask = excluded(tokenizer, seen, steps.shape[-1])
        full.append(full_ranks(chosen, targets_chunk, mask))
        if can_sample:
            drawn = torch.tensor(
                [
                    sample_negatives(candidates, {*s, t}, negatives, seed, start + row)
                    for row, (s, t) in enumerate(zip(seen, targets_chunk.tolist(), strict=True))
                ]
            )
            sampled.append(sampled_ranks(chosen, targets_chunk, drawn))
        per_step.append(
            torch.stack(
                [full_ranks(steps[:, s], targets_chunk, mask) for s in range(steps.shape[1])], 1
            )
        )
    figures = ranking_figures(
        torch.cat(full), torch.cat(sampled) if can_sample else None, k, negatives
    )
    figures["unknown_targets"] = sum(i == MISSING for i in target_ids)
    if per_step[0].shape[1] > 1:
        figures["oracle"] = oracle_best_step(torch.cat(per_step), k)
    return figures
