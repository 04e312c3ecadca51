"""How close an encoder puts a sentence and its translation: cosine distances of mean-pooled
encoder states, and top-1 retrieval of the translation among all of a test set's."""

from __future__ import annotations

import torch


@torch.no_grad()
def pooled_encoder_states(network, tokenizer, texts: list[str], device: str) -> torch.Tensor:
    """Mean of the encoder's final states over each text's tokens: (N, D)."""
    from seqweave.api import source_ids

    ids = source_ids(tokenizer, network.config, texts)
    pooled = []
    for start in range(0, len(ids), 128):
        chunk = ids[start : start + 128]
        lengths = torch.tensor([len(i) for i in chunk], device=device)
        src = torch.full((len(chunk), int(lengths.max())), network.config.pad_id, device=device)
        for row, row_ids in enumerate(chunk):
            src[row, : len(row_ids)] = torch.tensor(row_ids, device=device)
        memory = network.encode(src, lengths)
        real = memory.mask.unsqueeze(-1).float()  # (B, S, 1)
        pooled.append((memory.states * real).sum(1) / real.sum(1))  # (B, D)
    return torch.cat(pooled).float().cpu()


def encoder_distance(network, tokenizer, examples, device: str) -> dict:
    """Cosine distances between pooled encoder states of English sentences and German ones:
    their own translations, mismatched ones, and top-1 retrieval of the translation."""
    network.eval()
    english = pooled_encoder_states(network, tokenizer, [e.source for e in examples], device)
    german = pooled_encoder_states(network, tokenizer, [e.target for e in examples], device)
    english = torch.nn.functional.normalize(english, dim=-1)
    german = torch.nn.functional.normalize(german, dim=-1)
    similarity = english @ german.T  # (N, N)
    parallel = 1 - similarity.diagonal()
    mismatched = 1 - similarity.diagonal(offset=1)  # sentence i with i + 1's translation
    retrieved = similarity.argmax(dim=1) == torch.arange(len(examples))
    return {
        "parallel_distance": parallel.mean().item(),
        "mismatched_distance": mismatched.mean().item(),
        "retrieval_top1": retrieved.float().mean().item(),
    }
