"""seqweave: sequence-to-sequence models with lossless accelerated decoding."""

from seqweave.api import Seq2Seq, load

__version__ = "0.1.0"

__all__ = ["Seq2Seq", "__version__", "load"]
