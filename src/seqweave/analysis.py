"""Attention degeneration: how much each target step still depends on the source.

Fu et al. (2023) show that a decoder-only LM's sensitivity to its source falls
as the generated target grows, while an encoder-decoder keeps the source in
view. This module measures it for any seqweave model, teacher-forced on the
reference target (so every model is scored on the same prefixes, whatever it
would itself generate). Per target step t (the prediction of target token t,
counted from 1, the end token included) it records:

- ``source_attention``: softmax mass on source positions, averaged over heads
  and layers, in the sublayer where source and target compete for attention:
  the self-attention of a prefix LM or PALM. PALM's partial-attention sublayer
  attends to the source only (mass 1 by construction) and is not in this
  figure; an encoder-decoder has no such sublayer (its cross-attention is
  all source, its self-attention all target), so the value is null there.
- ``source_share``: a norm-based share defined for every model (after
  Kobayashi et al. 2020): the norm of what the attention sublayers add from the
  source (a self-attention's source part, an encoder-decoder's cross-attention,
  PALM's partial attention; output projection without bias) over that plus the
  norm of the self-attention's target-prefix part; averaged over layers.
- ``sensitivity``: the norm of the gradient of log p(y_t) with respect to the
  source's input embeddings, summed over source positions; ``relative_sensitivity``
  is its per-step mean over the mean at step 1 (the paper's curve), and
  ``sensitivity_share`` its share of the gradient norm on source plus target-prefix
  embeddings.
- ``accuracy``: whether the argmax is the reference token.

Attention weights come from the layers' ``probe`` lists and the embeddings from
the embedders' (``seqweave.models.layers``); probes are removed afterwards.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator, Sequence

import torch
from torch import Tensor

from seqweave.config import DataConfig
from seqweave.data.tokenized import collate, tokenize_set
from seqweave.errors import ConfigError, DataError

METRICS = (
    "source_attention",
    "source_share",
    "sensitivity",
    "sensitivity_share",
    "accuracy",
)
THIRDS = ("early", "middle", "late")


def model_kind(config) -> str:
    if config.architecture == "prefix_lm":
        return "palm" if config.partial_attention else "prefix_lm"
    return config.architecture


@contextlib.contextmanager
def probes(network) -> Iterator[dict[str, list]]:
    """Attach probe lists to the decoder-side attention modules and the embedders."""
    layers = network.layers if hasattr(network, "layers") else network.decoder_layers
    modules = {"embed": [], "self": [], "cross": []}
    for layer in layers:
        modules["self"].append(layer.attn)
        if layer.cross is not None:
            modules["cross"].append(layer.cross)
    embedders = [network.embed] if hasattr(network, "embed") else []
    if not embedders:
        embedders = [network.encoder_embed, network.decoder_embed]
    modules["embed"] = embedders
    found = {name: [] for name in modules}
    for name, group in modules.items():
        for module in group:
            module.probe = found[name]
    try:
        yield found
    finally:
        for group in modules.values():
            for module in group:
                module.probe = None


def _output_norm(probs: Tensor, values: Tensor, weight: Tensor) -> Tensor:
    """|| out-projection(probs @ values) || without bias: probs (B, H, Q, K), values
    (B, H, K, Dh), weight (D, D) -> (B, Q)."""
    y = probs @ values  # (B, H, Q, Dh)
    B, H, Q, Dh = y.shape
    return (y.transpose(1, 2).reshape(B, Q, H * Dh) @ weight.t()).norm(dim=-1)


def _attention_metrics(network, found, S: int, T: int) -> tuple[Tensor | None, Tensor]:
    """(B, T) source attention mass (None for an encoder-decoder) and source share."""
    layers = network.layers if hasattr(network, "layers") else network.decoder_layers
    joint = hasattr(network, "layers")
    masses, shares = [], []
    crosses = iter(found["cross"])
    for layer, (probs, values) in zip(layers, found["self"], strict=True):
        weight = layer.attn.out.weight
        if joint:
            rows = probs[:, :, S:]  # target queries (B, H, T, S + T)
            masses.append(rows[..., :S].sum(-1).mean(1))
            source = _output_norm(rows[..., :S], values[:, :, :S], weight)
            target = _output_norm(rows[..., S:], values[:, :, S:], weight)
        else:
            source = torch.zeros_like(probs[:, 0, :, 0])
            target = _output_norm(probs, values, weight)
        if layer.cross is not None:
            cross_probs, cross_values = next(crosses)
            source = source + _output_norm(cross_probs, cross_values, layer.cross.out.weight)
        shares.append(source / (source + target).clamp_min(1e-12))
    mass = torch.stack(masses).mean(0) if masses else None
    return mass, torch.stack(shares).mean(0)


def _embeddings(network, found, S: int) -> tuple[list[Tensor], callable]:
    """The embedding tensors to differentiate, and a function splitting their gradients
    into (source (B, S, D), target (B, T, D))."""
    if hasattr(network, "embed"):
        (joint,) = found["embed"]
        return [joint], lambda grads: (grads[0][:, :S], grads[0][:, S:])
    source, target = found["embed"]
    return [source, target], lambda grads: (grads[0], grads[1])


def analyze_batch(network, batch, max_steps: int | None = None) -> dict[str, Tensor]:
    """Per example and target step, every metric: (B, T) tensors (NaN where undefined),
    plus ``real`` (B, T) marking real target steps."""
    S, T = batch.src.shape[1], batch.tgt_in.shape[1]
    real_src = torch.arange(S, device=batch.src.device)[None, :] < batch.src_lengths[:, None]
    real = batch.tgt_out != network.config.pad_id  # (B, T): the target and its end token
    with torch.enable_grad(), probes(network) as found:
        logits = network(batch.src, batch.src_lengths, batch.tgt_in)  # (B, T, V)
    gold = logits.log_softmax(-1).gather(-1, batch.tgt_out[..., None])[..., 0]  # (B, T)
    mass, share = _attention_metrics(network, found, S, T)
    inputs, split = _embeddings(network, found, S)
    steps = T if max_steps is None else min(T, max_steps)
    sensitivity = torch.full((len(real), T), float("nan"), device=real.device)
    sensitivity_share = sensitivity.clone()
    for t in range(steps):
        rows = real[:, t]
        if not bool(rows.any()):
            break
        grads = torch.autograd.grad(gold[rows, t].sum(), inputs, retain_graph=True)
        source, target = split(grads)
        source = (source.norm(dim=-1) * real_src).sum(1)  # (B,)
        target = target[:, : t + 1].norm(dim=-1).sum(1)
        sensitivity[:, t] = source
        sensitivity_share[:, t] = source / (source + target).clamp_min(1e-12)
    real[:, steps:] = False
    nan = torch.full((len(real), T), float("nan"), device=real.device)
    return {
        "real": real,
        "source_attention": nan if mass is None else mass.detach(),
        "source_share": share.detach(),
        "sensitivity": sensitivity,
        "sensitivity_share": sensitivity_share,
        "accuracy": (logits.argmax(-1) == batch.tgt_out).float(),
    }


def analyze_attention(
    model, examples: Sequence, batch_size: int = 16, max_steps: int | None = None
) -> dict:
    """Per-step means and counts of every metric, and their means over each example's
    early, middle and late third, for a loaded ``Seq2Seq`` on ``examples`` with targets.

    Raises:
        ConfigError: the model is not an encoder-decoder or prefix LM.
        DataError: no example has a target that fits the model.
    """
    network = model.network.eval()
    kind = model_kind(network.config)
    if kind not in ("transformer", "prefix_lm", "palm"):
        raise ConfigError(f"attention analysis needs a transformer or prefix_lm model, not {kind}")
    if batch_size < 1:
        raise ConfigError(f"batch size must be >= 1, got {batch_size}")
    data = tokenize_set("analysis", examples, model.tokenizer, network.config, DataConfig())
    if not data.sources:
        raise DataError("no example fits the model's length limits")
    sums: dict[str, list[float]] = {name: [] for name in METRICS}
    counts: list[int] = []
    thirds = {name: {third: [0.0, 0] for third in THIRDS} for name in METRICS}
    device = network.device
    for start in range(0, len(data.sources), batch_size):
        batch = collate(
            data.sources[start : start + batch_size],
            data.targets[start : start + batch_size],
            network.config,
        ).to(device)
        values = {k: v.cpu() for k, v in analyze_batch(network, batch, max_steps).items()}
        _accumulate(values, sums, counts, thirds)
    steps = []
    for t, count in enumerate(counts):
        row = {"step": t + 1, "count": count}
        for name in METRICS:
            row[name] = None if sums[name][t] != sums[name][t] else sums[name][t] / count
        steps.append(row)
    first = steps[0]["sensitivity"] if steps else None
    for row in steps:
        row["relative_sensitivity"] = row["sensitivity"] / first if first else None
    summary = {
        third: {
            name: (total / n if n and total == total else None)
            for name, (total, n) in ((m, thirds[m][third]) for m in METRICS)
        }
        for third in THIRDS
    }
    return {
        "model_kind": kind,
        "examples": len(data.sources),
        "dropped_examples": len(examples) - len(data.sources),
        "teacher_forced_on": "reference target",
        "steps": steps,
        "thirds": summary,
    }


def _accumulate(values, sums, counts, thirds) -> None:
    """Add one batch's (B, T) values to the per-step sums and per-third totals."""
    real = values["real"]
    T = real.shape[1]
    while len(counts) < T:
        counts.append(0)
        for name in METRICS:
            sums[name].append(0.0)
    lengths = real.sum(1)  # analysed steps per example
    for t in range(T):
        rows = real[:, t]
        counts[t] += int(rows.sum())
        for name in METRICS:
            sums[name][t] += float(values[name][rows, t].sum())
    which = (3 * torch.arange(T)[None, :] // lengths.clamp_min(1)[:, None]).clamp(max=2)
    for index, third in enumerate(THIRDS):
        cells = real & (which == index)
        for name in METRICS:
            thirds[name][third][0] += float(values[name][cells].sum())
            thirds[name][third][1] += int(cells.sum())


PLOTTED = (
    ("source_attention", "self-attention mass on the source"),
    ("source_share", "source share of attention output norm"),
    ("relative_sensitivity", "source gradient sensitivity / step 1"),
    ("accuracy", "token accuracy (teacher-forced)"),
)


def plot_curves(results: dict[str, dict], path, min_count: int = 1) -> None:
    """One panel per metric, one line per named result; steps with fewer than
    ``min_count`` examples are left out."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    figure, axes = plt.subplots(2, 2, figsize=(10, 7))
    for axis, (metric, title) in zip(axes.flat, PLOTTED, strict=True):
        for name, result in results.items():
            points = [
                (row["step"], row[metric])
                for row in result["steps"]
                if row[metric] is not None and row["count"] >= min_count
            ]
            if points:
                axis.plot(*zip(*points, strict=True), label=name)
        axis.set_title(title)
        axis.set_xlabel("target step")
        axis.grid(alpha=0.3)
    axes.flat[0].legend()
    figure.tight_layout()
    figure.savefig(path, dpi=100)
    plt.close(figure)
