"""Vocabulary extension: new tokens for a trained model, its old predictions untouched.

Omni-DNA turns a pretrained DNA decoder into a multi-task model by adding task
tokens (which task an instruction asks for) and label tokens (the answers) to its
vocabulary. The tokens are added as ordinary tokens of the vocabulary that text can
spell (``"<splice>ACGT..."`` encodes with ``<splice>`` as one token, and a generated
``<EI>`` decodes as the text ``<EI>``), unlike seqweave's task tokens, which text can
never produce. Every tensor with a vocabulary dimension grows. A new row is drawn
around the old rows' mean with their spread (per coordinate, seeded): a new token
starts as a typical token, not at a point far from all of them, and no two new
tokens start equal. Equal rows (all at the mean) are the trap: label tokens that
share one row get the same logit for every input, and Adam moves them alike while
the gradient they share dominates, so fine-tuning sat at the label prior
(recipes/dna/README.md, section 4). Old rows and every other weight are copied, so
the logits of the old tokens are exactly what they were.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence

import torch
from tokenizers import AddedToken

from seqweave.errors import ConfigError
from seqweave.models import Seq2SeqBase, build_model
from seqweave.tokenizers import Tokenizer


def add_vocabulary_tokens(tokenizer: Tokenizer, tokens: Sequence[str]) -> list[int]:
    """Add ``tokens`` to ``tokenizer`` as ordinary tokens that text can spell; their ids
    (a token it already has keeps its id).

    Raises:
        ConfigError: ``tokens`` is a bare string, or a token is empty or a special token.
    """
    if isinstance(tokens, str):
        raise ConfigError(f"tokens must be a list of strings, got the string {tokens!r}")
    specials = set(tokenizer.backend.get_added_tokens_decoder().values())
    special_names = {token.content for token in specials if token.special}
    for token in tokens:
        if not isinstance(token, str) or not token or token in special_names:
            raise ConfigError(f"cannot add {token!r}: empty, or a special token already")
    missing = [t for t in dict.fromkeys(tokens) if tokenizer.token_to_id(t) is None]
    tokenizer.backend.add_tokens([AddedToken(t, normalized=False) for t in missing])
    return [tokenizer.token_to_id(token) for token in tokens]


@torch.no_grad()
def extend_vocabulary(
    network: Seq2SeqBase, tokenizer: Tokenizer, tokens: Sequence[str]
) -> tuple[Seq2SeqBase, list[int]]:
    """Add ``tokens`` to ``tokenizer`` (in place) and return a network whose vocabulary
    holds them, with the ids of the tokens. The network is a new one unless no token was
    new; its old-token logits equal the given network's."""
    ids = add_vocabulary_tokens(tokenizer, tokens)
    old_size = network.config.vocab_size
    new_size = max(tokenizer.vocab_size, old_size)
    if new_size == old_size:
        return network, ids
    grown = build_model(dataclasses.replace(network.config, vocab_size=new_size))
    grown.to(next(network.parameters()).device)
    old_state = network.state_dict()
    for name, tensor in grown.state_dict().items():
        old = old_state[name]
        if old.shape == tensor.shape:
            tensor.copy_(old)
        elif old.shape[0] == old_size and old.shape[1:] == tensor.shape[1:]:
            tensor[:old_size] = old
            tensor[old_size:] = _new_rows(old.float(), new_size - old_size).to(old.dtype)
        else:
            raise ConfigError(f"{name}: cannot grow {tuple(old.shape)} to {tuple(tensor.shape)}")
    return grown.eval(), ids


def _new_rows(old: torch.Tensor, count: int, seed: int = 0) -> torch.Tensor:
    """``count`` rows around the mean of ``old`` (V, ...) with its per-coordinate spread;
    the mean alone for a vector (a per-token bias)."""
    mean = old.mean(dim=0)
    if old.dim() < 2:
        return mean.expand(count).clone()
    generator = torch.Generator().manual_seed(seed)
    noise = torch.randn((count, *old.shape[1:]), generator=generator)
    return mean + noise.to(old.device) * old.std(dim=0)
