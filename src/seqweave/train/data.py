"""The trainer's batches, under the trainer's name.

They live in ``seqweave.data.tokenized`` so that code beside the trainer (the attention
analysis) can build the same batches without importing the training loop.
"""

from seqweave.data.tokenized import Batch, TokenizedSet, collate, tokenize_set

__all__ = ["Batch", "TokenizedSet", "collate", "tokenize_set"]
