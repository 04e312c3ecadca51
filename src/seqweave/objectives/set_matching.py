"""Label sets as outputs, trained without an order: bipartite matching and optimal transport.

OTSeq2Set (Cao & Zhang 2022) predicts a set of labels with an ordinary
sequence decoder but trains it so that no order of the gold labels is
preferred:

- **student forcing**: the decoder runs a fixed number of steps T, each fed the
  model's own previous prediction rather than a gold token, so no step's input
  depends on an order of the gold set (``student_forced_log_probs``). At
  inference this is exactly greedy decoding for T tokens;
- **bipartite matching**: the T steps are matched one to one with the gold
  labels padded to T with an EMPTY label, at the cost ``-log p_t(label)``
  (Hungarian algorithm), and the loss is the negative log-likelihood of the
  matched labels (``set_matching_loss``). Any listing of the gold set gives the
  same minimum, so the loss is a function of the set;
- **optimal transport**: a semantic term between the model's expected label
  embedding at each step, ``sum_v p_t(v) e_v``, and the gold labels'
  embeddings, at cosine cost, with the transport plan found by IPOT (the
  inexact proximal point method, Xie et al. 2019) and held fixed for the
  gradient (``ot_loss``).

The set model is an ordinary seqweave model: matching and transport only change
what it is trained on. Here both sides of the transport carry T points (the
gold side padded with EMPTY, as in the matching), which is our choice where
the paper's exact marginals are not known to us.
"""

from __future__ import annotations

import dataclasses
import itertools
from collections.abc import Sequence

import numpy as np
import torch
import torch.nn.functional as F
from scipy.optimize import linear_sum_assignment
from torch import Tensor

from seqweave.errors import ConfigError


def check_gold_sets(
    gold_sets: Sequence[Sequence[int]], steps: int, vocab_size: int, empty_id: int
) -> None:
    """Raise ValueError naming the row when a gold set cannot be matched to ``steps`` steps.

    A gold set must hold distinct token ids of the vocabulary other than EMPTY, and
    no more of them than there are steps (every label needs a step of its own).
    """
    if vocab_size < 1:
        raise ValueError("set matching needs a vocabulary of at least one token, got 0")
    if not 0 <= empty_id < vocab_size:
        raise ValueError(f"empty_id={empty_id} is not a token id (0..{vocab_size - 1})")
    for row, gold in enumerate(gold_sets):
        if len(gold) > steps:
            raise ValueError(
                f"gold set {row} has {len(gold)} labels but the decoder runs only {steps} steps"
            )
        if len(set(gold)) != len(gold):
            raise ValueError(f"gold set {row} repeats a label: {list(gold)}")
        for label in gold:
            if label == empty_id:
                raise ValueError(f"gold set {row} contains the EMPTY label {empty_id}")
            if not 0 <= label < vocab_size:
                raise ValueError(
                    f"gold set {row} has label {label}, not a token id (0..{vocab_size - 1})"
                )


def pad_sets(gold_sets: Sequence[Sequence[int]], steps: int, empty_id: int) -> Tensor:
    """Gold sets padded with EMPTY to ``steps`` labels each: (B, T) long."""
    padded = torch.full((len(gold_sets), steps), empty_id, dtype=torch.long)
    for row, gold in enumerate(gold_sets):
        padded[row, : len(gold)] = torch.as_tensor(list(gold), dtype=torch.long)
    return padded


def padded_costs(log_probs: Tensor, gold: Sequence[int], empty_id: int) -> Tensor:
    """The square matching cost (T, T) of one row: entry (t, j) is ``-log p_t`` of the j-th
    gold label, the columns past the gold labels being EMPTY. log_probs (T, V)."""
    T = log_probs.shape[0]
    columns = list(gold) + [empty_id] * (T - len(gold))
    return -log_probs[:, columns]


def match_steps(log_probs: Tensor, gold: Sequence[int], empty_id: int) -> list[int]:
    """The label each of the T steps is trained on: the minimum-cost matching of steps to
    the gold labels padded with EMPTY. log_probs (T, V).

    The EMPTY columns are all alike, so the Hungarian algorithm runs on the
    rectangular (T, K) matrix of costs relative to EMPTY; the steps left without a
    gold label take EMPTY. The tests check it against ``brute_force_match``.
    """
    T = log_probs.shape[0]
    targets = [empty_id] * T
    if not gold:
        return targets
    logp = log_probs.detach().double().cpu()
    relative = (logp[:, [empty_id]] - logp[:, list(gold)]).numpy()  # (T, K)
    steps, labels = linear_sum_assignment(relative)
    for step, label in zip(steps.tolist(), labels.tolist(), strict=True):
        targets[step] = gold[label]
    return targets


def brute_force_match(log_probs: Tensor, gold: Sequence[int], empty_id: int) -> float:
    """The minimum total cost over all T! assignments of the padded columns (reference for
    tests; small T only)."""
    cost = padded_costs(log_probs.detach().double(), gold, empty_id).numpy()
    T = cost.shape[0]
    rows = np.arange(T)
    return min(float(cost[rows, list(order)].sum()) for order in itertools.permutations(range(T)))


def set_matching_loss(
    log_probs: Tensor, gold_sets: Sequence[Sequence[int]], empty_id: int
) -> tuple[Tensor, Tensor]:
    """Summed NLL of the matched labels, and the matched targets (B, T).

    log_probs (B, T, V): the model's step distributions, student-forced.
    ``gold_sets``: per row, its labels in any order. The sum (not the mean) lets the
    caller normalise over a whole update, as ``mle.label_smoothed_nll`` does.

    Raises:
        ValueError: ``check_gold_sets`` fails, or ``gold_sets`` has another number of
            rows than ``log_probs``.
    """
    B, T, V = log_probs.shape
    if len(gold_sets) != B:
        raise ValueError(f"{len(gold_sets)} gold sets for a batch of {B} rows")
    check_gold_sets(gold_sets, T, V, empty_id)
    targets = torch.tensor(
        [match_steps(log_probs[row], gold, empty_id) for row, gold in enumerate(gold_sets)],
        dtype=torch.long,
        device=log_probs.device,
    ).view(B, T)
    nll = -log_probs.gather(-1, targets.unsqueeze(-1)).sum()
    return nll, targets


@torch.no_grad()
def ipot(
    cost: Tensor,
    source_weights: Tensor,
    target_weights: Tensor,
    beta: float = 0.5,
    iterations: int = 50,
    inner: int = 1,
) -> Tensor:
    """Transport plans (B, n, m) by the inexact proximal point method (Xie et al. 2019).

    cost (B, n, m); source_weights (B, n) and target_weights (B, m) are the marginals
    (each summing to 1). Each outer iteration is a proximal step around the previous
    plan, ``Q = exp(-C / beta) * plan``, solved inexactly by ``inner`` Sinkhorn
    scalings; unlike entropic Sinkhorn, the plan tends to the exact optimum as the
    iterations grow. No gradient flows through the plan.

    Raises:
        ConfigError: ``beta`` <= 0, or ``iterations`` or ``inner`` < 1.
    """
    if beta <= 0:
        raise ConfigError(f"ipot beta must be > 0, got {beta}")
    if iterations < 1 or inner < 1:
        raise ConfigError(f"ipot needs iterations >= 1 and inner >= 1, got {iterations}, {inner}")
    kernel = torch.exp(-cost / beta)  # (B, n, m)
    plan = torch.ones_like(cost)
    scale_target = torch.ones_like(target_weights)[:, :, None]  # (B, m, 1)
    for _ in range(iterations):
        proximal = kernel * plan
        for _ in range(inner):
            scale_source = source_weights[:, :, None] / (proximal @ scale_target)  # (B, n, 1)
            scale_target = target_weights[:, :, None] / (
                proximal.transpose(1, 2) @ scale_source
            )  # (B, m, 1)
        plan = scale_source * proximal * scale_target.transpose(1, 2)
    return plan


def ot_loss(
    log_probs: Tensor,
    embeddings: Tensor,
    padded_gold: Tensor,
    beta: float = 0.5,
    iterations: int = 50,
) -> Tensor:
    """Summed over rows: the optimal-transport distance between the expected label
    embeddings of the T steps and the embeddings of the gold labels padded with EMPTY.

    log_probs (B, T, V); embeddings (V, D) the output embeddings; padded_gold (B, T)
    from ``pad_sets`` (its order does not matter). Cost: one minus cosine similarity;
    both sides weigh 1/T per point. The plan comes from ``ipot`` and is held fixed,
    so the gradient is that of ``sum(plan * cost)`` through the costs.
    """
    B, T, _ = log_probs.shape
    expected = log_probs.exp() @ embeddings  # (B, T, D)
    gold = embeddings[padded_gold]  # (B, T, D)
    cost = 1 - F.cosine_similarity(expected[:, :, None], gold[:, None], dim=-1)  # (B, T, T)
    uniform = cost.new_full((B, T), 1.0 / T)
    plan = ipot(cost.detach(), uniform, uniform, beta, iterations)
    return (plan * cost).sum()


@torch.no_grad()
def student_forced_tokens(model, src: Tensor, src_lengths: Tensor, steps: int) -> Tensor:
    """The model's own argmax at each of ``steps`` steps, each fed the previous one:
    (B, T). The end token does not stop it: a set decoder runs every step (and rows
    decoded greedily give the same tokens up to their first end token)."""
    memory = model.encode(src, src_lengths)
    state = model.start(memory, capacity=steps)
    B = src.shape[0]
    token = torch.full((B, 1), model.config.decoder_start_id, dtype=torch.long, device=src.device)
    outputs = []
    for _ in range(steps):
        token = model.step(state, token)[:, -1:].argmax(dim=-1)  # (B, 1)
        outputs.append(token)
    return torch.cat(outputs, dim=1)


def decoder_inputs(tokens: Tensor, start_id: int) -> Tensor:
    """The decoder's inputs for steps that output ``tokens`` (B, T): the start token, then
    each step's token fed to the next."""
    start = tokens.new_full((tokens.shape[0], 1), start_id)
    return torch.cat([start, tokens[:, :-1]], dim=1)  # (B, T)


def student_forced_log_probs(
    model, src: Tensor, src_lengths: Tensor, steps: int
) -> tuple[Tensor, Tensor]:
    """Log-probabilities (B, T, V) of ``steps`` student-forced steps, with gradient, and
    the tokens (B, T) that were fed back.

    The fed tokens are argmaxes, which carry no gradient, so the rollout runs without
    one on the cache and a single teacher-forced ``forward`` on the model's own
    tokens gives every step's distribution at once (cached and uncached logits agree).
    """
    if steps < 1:
        raise ConfigError(f"a set decoder needs at least one step, got {steps}")
    tokens = student_forced_tokens(model, src, src_lengths, steps)
    inputs = decoder_inputs(tokens, model.config.decoder_start_id)
    return F.log_softmax(model(src, src_lengths, inputs).float(), dim=-1), tokens


def output_embeddings(model) -> Tensor:
    """The output projection's rows (V, D): the label embeddings the OT term compares."""
    return model.output_tokens.weight if model.output is None else model.output.weight


# -- training through seqweave.train: one token per label, the target text is the set ----------

EMPTY_TOKEN = "<empty>"


def target_sets(targets: Tensor, pad_id: int, eos_id: int) -> list[list[int]]:
    """Each row's labels as written in the target (B, T), without padding and end token:
    a target text of label words, one token each, read as a set."""
    return [[t for t in row if t not in (pad_id, eos_id)] for row in targets.tolist()]


def with_empty_id(config, tokenizer):
    """``config`` with ``objectives.set_matching.empty_id`` set to the tokenizer's
    ``<empty>`` token when the set loss is on (training adds that token).

    Raises:
        ConfigError: the set loss is on and the tokenizer has no ``<empty>`` token.
    """
    section = config.objectives.set_matching
    if not section.on:
        return config
    empty_id = tokenizer.token_to_id(EMPTY_TOKEN)
    if empty_id is None:
        raise ConfigError(f"objectives.set_matching: the tokenizer has no {EMPTY_TOKEN} token")
    section = dataclasses.replace(section, empty_id=empty_id)
    objectives = dataclasses.replace(config.objectives, set_matching=section)
    return dataclasses.replace(config, objectives=objectives)


def set_loss(model, forward, src: Tensor, src_lengths: Tensor, targets: Tensor, settings, ids):
    """The set loss of one micro-batch and its logits (B, T, V).

    ``forward`` is the module the gradient pass runs through (the model, or its
    data-parallel wrapper); ``model`` the bare model, whose cache the no-gradient rollout
    uses. ``settings``: an ``objectives.set_matching`` section; ``ids``: (pad, eos) of the
    targets (B, L), whose labels are the gold sets (``target_sets``). The loss is the
    mean NLL per step of the matched labels plus, in mode "ot", ``ot_weight`` times the
    transport distance per set (the losses of Cao & Zhang's recipe), as a mean over the
    micro-batch: the caller scales it to the micro-batch's weight.

    Raises:
        ValueError: a gold set repeats a label, holds ``<empty>`` or more labels than steps.
    """
    steps, empty_id = settings.steps, settings.empty_id
    gold = target_sets(targets, *ids)
    check_gold_sets(gold, steps, model.config.vocab_size, empty_id)
    if settings.student_forcing:
        fed = student_forced_tokens(model, src, src_lengths, steps)
    else:  # the labels in the order written: an ablation, not order-free
        fed = pad_sets(gold, steps, empty_id).to(src.device)
    logits = forward(src, src_lengths, decoder_inputs(fed, model.config.decoder_start_id))
    log_probs = F.log_softmax(logits.float(), dim=-1)  # (B, T, V)
    nll, _ = set_matching_loss(log_probs, gold, empty_id)
    loss = nll / log_probs.shape[:2].numel()
    if settings.mode == "ot":
        padded = pad_sets(gold, steps, empty_id).to(src.device)
        embeddings = output_embeddings(model)
        transport = ot_loss(
            log_probs, embeddings, padded, settings.ipot_beta, settings.ipot_iterations
        )
        loss = loss + settings.ot_weight * transport / len(gold)
    return loss, logits
