"""Scalar inputs and outputs of an encoder-decoder (MAMMAL, Shoshan et al. 2024).

Numbers written digit by digit make a model learn arithmetic on characters; MAMMAL lets
a prompt carry a value as a value instead. ``ScalarHead`` (``model.scalar_head``, built by
``models/heads.py``) has two parts:

- **input**: the embedding of each ``<scalar>`` placeholder token gets a learned linear
  projection of its value added (``embeddings``), so a value is one position of the
  encoder, like a token, but on a continuous axis;
- **output**: a regression head (dense, GELU, dense to one number) reads the final encoder
  state at each ``<mask>`` of the source (``predict``), trained with MSE by the token loss
  ``objectives/regression.py``.

The values travel beside the ids as a float channel (``tokenizers/mixed_prompt.py``). The
decoder is not used by the regression: a scalar-head model still decodes tokens as any
encoder-decoder does, only its encoder is what the head reads.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import Tensor, nn

from seqweave.config import ModelConfig
from seqweave.data.framing import frame_source
from seqweave.errors import ConfigError


class ScalarHead(nn.Module):
    """The scalar input projection and the regression head read at ``<mask>`` positions."""

    def __init__(self, cfg: ModelConfig):
        super().__init__()
        self.scalar_id, self.mask_id = cfg.scalar_id, cfg.mask_id
        self.project = nn.Linear(1, cfg.d_model, bias=False)
        nn.init.normal_(self.project.weight, std=cfg.d_model**-0.5)  # like a token embedding
        self.regress = nn.Sequential(
            nn.Linear(cfg.d_model, cfg.d_model), nn.GELU(), nn.Linear(cfg.d_model, 1)
        )

    def embeddings(self, src: Tensor, scalars: Tensor | None) -> Tensor | None:
        """What is added to the token embeddings of src (B, S): (B, S, D), the projection of
        each ``<scalar>``'s value from ``scalars`` (B, S), zero elsewhere.

        Raises:
            ConfigError: ``src`` holds ``<scalar>`` tokens but no channel came with it (the
                values would be silently missing).
        """
        placeholder = src == self.scalar_id  # (B, S)
        if scalars is None:
            if bool(placeholder.any()):
                raise ConfigError(
                    "this model reads <scalar> values, but none were given: encode the prompts "
                    "with seqweave.models.scalars.predict_scalars or pass the float channel"
                )
            return None
        values = torch.where(placeholder, scalars, torch.zeros_like(scalars))
        return self.project(values.unsqueeze(-1).to(self.project.weight.dtype))  # (B, S, D)

    def predict(self, states: Tensor, src: Tensor) -> Tensor:
        """Regression outputs (B, M) from encoder states (B, S, D): the k-th column is the
        row's k-th ``<mask>``; NaN where a row has fewer than M masks (M >= 1)."""
        masks = src == self.mask_id  # (B, S)
        rank = masks.long().cumsum(1) - 1  # (B, S): which mask of its row
        M = max(1, int(masks.sum(1).max()))
        out = torch.full((src.shape[0], M), float("nan"), dtype=states.dtype, device=src.device)
        rows, cols = masks.nonzero(as_tuple=True)
        values = self.regress(states[rows, cols]).squeeze(-1)  # (N,)
        return out.index_put((rows, rank[rows, cols]), values)


@torch.inference_mode()
def predict_scalars(
    network: nn.Module, tokenizer, texts: Sequence[str], batch_size: int = 32
) -> list[list[float]]:
    """The regression head's answers at each ``<mask>`` of each mixed prompt, in order.

    Prompts are framed as in training and their scalars read into the float channel
    (``tokenizers/mixed_prompt.py``), so a model predicts here exactly what it was trained
    and validated on.
    """
    from seqweave.tokenizers.mixed_prompt import encode_prompt, source_scalars

    cfg = network.config
    network.eval()
    answers: list[list[float]] = []
    for start in range(0, len(texts), batch_size):
        chunk = list(texts[start : start + batch_size])
        framed = [frame_source(encode_prompt(tokenizer, text)[0], cfg) for text in chunk]
        src = torch.full((len(chunk), max(map(len, framed))), cfg.pad_id, dtype=torch.long)
        for row, ids in enumerate(framed):
            src[row, : len(ids)] = torch.tensor(ids)
        lengths = torch.tensor([len(ids) for ids in framed])
        scalars = source_scalars(tokenizer, src, chunk)
        device = network.device
        out = network(
            src.to(device), lengths.to(device), None, scalars=scalars.to(device), regression=True
        )
        for row, ids in enumerate(framed):
            answers.append(out[row, : ids.count(cfg.mask_id)].float().tolist())
    return answers
