"""The methods each field compares against, behind the same small interfaces as our models.

Event logs (next-element prediction): ``NextEventPredictor`` -- fit on whole traces, then
``predict_proba(prefix)`` gives a distribution over the next event, end of case (``END``)
included (``next_event``: frequencies and Markov models; ``petri_net``: a net discovered by
pm4py's inductive miner; ``recurrent``: LSTM and GRU classifiers; ``seq2seq_next``: a
trained seqweave model's first decoder step). ``PREDICTORS`` maps a name to the builder
of a predictor that fits itself (the seqweave model is trained by ``seqweave.train``).
"""

from collections.abc import Callable

from seqweave.baselines.next_event import (
    END,
    AllOrderMarkov,
    MarkovPredictor,
    MostFrequentNext,
    NextEventPredictor,
    greedy_suffix,
)
from seqweave.baselines.petri_net import PetriNetPredictor
from seqweave.baselines.recurrent import RecurrentPredictor
from seqweave.baselines.seq2seq_next import Seq2SeqNextEvent

PREDICTORS: dict[str, Callable[..., NextEventPredictor]] = {
    "most_frequent": MostFrequentNext,
    "markov": MarkovPredictor,
    "akom": AllOrderMarkov,
    "petri_net": PetriNetPredictor,  # needs pm4py, the [events] extra
    "recurrent": RecurrentPredictor,  # cell = "lstm" | "gru"
}

__all__ = [
    "END",
    "PREDICTORS",
    "AllOrderMarkov",
    "MarkovPredictor",
    "MostFrequentNext",
    "NextEventPredictor",
    "PetriNetPredictor",
    "RecurrentPredictor",
    "Seq2SeqNextEvent",
    "greedy_suffix",
]
