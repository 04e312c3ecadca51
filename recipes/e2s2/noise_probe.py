"""Does a pretrained encoder see the noise? A logistic-regression probe on its frozen states,
and what E2S2's restore head says, per position of corrupted held-out sentences."""

from __future__ import annotations

import torch
import torch.nn.functional as F

from seqweave.data.framing import frame_source
from seqweave.data.readers import read_examples
from seqweave.objectives.e2s2 import corrupt, noise_vocabulary
from seqweave.train.data import collate

MASK_RATE, REPLACE_RATE = 0.2, 0.1  # as in pretraining


@torch.no_grad()
def encoder_view(model, sentences: list[str], seed: int):
    """Corrupt held-out sentences as in pretraining; the encoder states of the corrupted
    view and, per position, whether it is text and whether (and how) it was corrupted."""
    network, tokenizer = model.network.eval(), model.tokenizer
    cfg = network.config
    sources = [frame_source(ids, cfg) for ids in tokenizer.encode_batch(sentences)]
    batch = collate(sources, [[cfg.eos_id]] * len(sources), cfg)
    vocab = noise_vocabulary(tokenizer)
    generator = torch.Generator().manual_seed(10_000 + seed)
    noisy, corrupted = corrupt(batch.src, vocab, MASK_RATE, REPLACE_RATE, generator)
    special = torch.tensor(sorted(vocab.special_ids))
    text = ~torch.isin(batch.src, special)
    states = []
    for start in range(0, len(sources), 64):
        rows = slice(start, start + 64)
        lengths = batch.src_lengths[rows].to(network.device)
        states.append(network.encode(noisy[rows].to(network.device), lengths).states.cpu())
    states = torch.cat(states).float()  # (N, S, D)
    return states, noisy, batch.src, corrupted, text, vocab


def noise_detection(model, paths: dict, count: int, seed: int) -> dict:
    """A logistic-regression probe on frozen encoder states: corrupted or not, per text
    position; trained on the first 60% of the sentences, scored on the rest."""
    sentences = [e.source for e in read_examples(paths["pretrain_valid"])][:count]
    states, noisy, original, corrupted, text, vocab = encoder_view(model, sentences, seed)
    split = int(0.6 * len(sentences))
    features = states[text]
    labels = corrupted[text].float()
    masked = (noisy == vocab.mask_id)[text]
    rows = torch.arange(len(sentences))[:, None].expand_as(text)[text]
    train_rows, test_rows = rows < split, rows >= split
    mean, std = features[train_rows].mean(0), features[train_rows].std(0) + 1e-6
    x = (features - mean) / std
    probe = torch.nn.Linear(x.shape[1], 1).to(x.device)
    optimizer = torch.optim.Adam(probe.parameters(), lr=0.05)
    for _ in range(300):
        loss = F.binary_cross_entropy_with_logits(
            probe(x[train_rows]).squeeze(-1), labels[train_rows]
        )
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    with torch.no_grad():
        predicted = (probe(x).squeeze(-1) > 0).float()
    result = {
        "probe_accuracy": _accuracy(predicted, labels, test_rows),
        "probe_replaced_vs_kept": _balanced(predicted, labels, test_rows & ~masked),
        "kept_share": 1.0 - float(labels[test_rows].mean()),
    }
    network = model.network
    if getattr(network, "restore_head", None) is not None:
        with torch.no_grad():
            guess = network.restore_logits(states.to(network.device)).argmax(-1).cpu()
        said = (guess != noisy)[text].float()
        every = torch.ones_like(test_rows)
        result["head_accuracy"] = _accuracy(said, labels, every)
        result["head_replaced_vs_kept"] = _balanced(said, labels, every & ~masked)
        result["head_restore_accuracy"] = float((guess == original)[corrupted].float().mean())
    return result


def _accuracy(predicted, labels, where) -> float:
    return float((predicted[where] == labels[where]).float().mean())


def _balanced(predicted, labels, where) -> float:
    """Mean of the recall on corrupted and on kept positions."""
    p, y = predicted[where], labels[where]
    return 0.5 * float((p[y == 1] == 1).float().mean() + (p[y == 0] == 0).float().mean())
