"""The methods each field compares against, behind the same small interfaces as our models.

Event logs (next-element prediction): ``NextEventPredictor`` -- fit on whole traces, then
``predict_proba(prefix)`` gives a distribution over the next event, end of case (``END``)
included. ``PREDICTORS`` maps a name to its builder.
"""

from seqweave.baselines.next_event import (
    END,
    PREDICTORS,
    AllOrderMarkov,
    MarkovPredictor,
    MostFrequentNext,
    NextEventPredictor,
    greedy_suffix,
)

__all__ = [
    "END",
    "PREDICTORS",
    "AllOrderMarkov",
    "MarkovPredictor",
    "MostFrequentNext",
    "NextEventPredictor",
    "greedy_suffix",
]
