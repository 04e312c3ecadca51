"""seqweave: sequence-to-sequence models with lossless accelerated decoding."""

__version__ = "0.1.0"
