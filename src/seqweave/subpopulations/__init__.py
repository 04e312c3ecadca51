"""Subpopulation structure discovery (SSD-LLM, "LLM as Dataset Analyst"): which dimensions a
text data set varies along, which attributes each takes, and how many texts (per class) fall
in each. ``workflow.discover`` runs it with a pluggable analyst: ``keywords`` (built in, no
model), ``prompted`` (a seqweave model or an OpenAI-compatible completions endpoint)."""

from seqweave.subpopulations.structure import OTHER, Attribute, Corpus, Dimension, read_corpus
from seqweave.subpopulations.workflow import Analyst, build_analyst, discover

__all__ = [
    "OTHER",
    "Analyst",
    "Attribute",
    "Corpus",
    "Dimension",
    "build_analyst",
    "discover",
    "read_corpus",
]
