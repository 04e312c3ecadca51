"""The process-mining baseline: discover a Petri net from the training traces with pm4py's
inductive miner, replay a prefix on it as a token game, and predict from what the net
allows next.

After the prefix, the next events are the labels of the visible transitions enabled in
the reached marking or in any marking reachable from it by silent transitions (at most
``max_states`` markings explored), and end of case if the final marking is among them.
The net says what is possible, not how likely, so each possible event gets its overall
frequency in training, renormalised. Replay is token-based: an event whose transition
is not enabled fires anyway, the missing tokens are created (as in token-based
conformance checking), and an activity the net does not know leaves the marking as it
is. pm4py is the optional ``[events]`` extra, imported when a net is fit.
"""

from __future__ import annotations

from collections import Counter, deque
from collections.abc import Iterable, Sequence
from datetime import datetime, timedelta
from functools import lru_cache

from seqweave.baselines.next_event import END, AllOrderMarkov, Distribution

Marking = tuple[tuple[int, int], ...]  # sorted (place, tokens), tokens > 0


class PetriNetPredictor:
    def __init__(self, noise_threshold: float = 0.0, max_states: int = 200):
        self.noise_threshold, self.max_states = noise_threshold, max_states

    def fit(self, traces: Iterable[Sequence[str]]) -> PetriNetPredictor:
        import pandas as pd
        import pm4py

        traces = [list(t) for t in traces]
        start = datetime(2000, 1, 1)
        rows = [
            {
                "case:concept:name": str(c),
                "concept:name": event,
                "time:timestamp": start + timedelta(minutes=i),
            }
            for c, trace in enumerate(traces)
            for i, event in enumerate(trace)
        ]
        net, initial, final = pm4py.discover_petri_net_inductive(
            pd.DataFrame(rows), noise_threshold=self.noise_threshold
        )
        places = {place: number for number, place in enumerate(net.places)}
        self.transitions = [
            (
                t.label,
                Counter({places[a.source]: a.weight for a in t.in_arcs}),
                Counter({places[a.target]: a.weight for a in t.out_arcs}),
            )
            for t in net.transitions
        ]
        self.initial = Counter({places[p]: n for p, n in initial.items()})
        self.final = _frozen(Counter({places[p]: n for p, n in final.items()}))
        self.frequencies = AllOrderMarkov(max_order=0).fit(traces).predict_proba(())
        self._replay = lru_cache(maxsize=None)(self._replay_uncached)
        self._possible = lru_cache(maxsize=None)(self._possible_uncached)
        return self

    def predict_proba(self, prefix: Sequence[str]) -> Distribution:
        possible = self._possible(self._replay(tuple(prefix)))
        weights = {x: p for x, p in self.frequencies.items() if x in possible}
        total = sum(weights.values())
        if total == 0:  # nothing the net allows was ever seen: fall back to the frequencies
            return dict(self.frequencies)
        return {x: weights.get(x, 0.0) / total for x in self.frequencies}

    def _replay_uncached(self, prefix: tuple[str, ...]) -> Marking:
        if not prefix:
            return _frozen(self.initial)
        marking = Counter(dict(self._replay(prefix[:-1])))
        event = prefix[-1]
        reached = self._reach(marking, event)
        if reached is not None:
            return reached
        for label, inputs, outputs in self.transitions:
            if label == event:  # forced firing: create the missing tokens
                marking = marking - inputs + outputs
                return _frozen(marking)
        return _frozen(marking)

    def _reach(self, marking: Counter, event: str) -> Marking | None:
        """The marking after firing silent transitions and then a transition labelled
        ``event``, by breadth-first search; None if it cannot be enabled."""
        for state in self._silent_closure(marking):
            current = Counter(dict(state))
            for label, inputs, outputs in self.transitions:
                if label == event and _enabled(current, inputs):
                    return _frozen(current - inputs + outputs)
        return None

    def _silent_closure(self, marking: Counter) -> list[Marking]:
        seen, queue = [_frozen(marking)], deque([_frozen(marking)])
        known = set(seen)
        while queue and len(seen) < self.max_states:
            current = Counter(dict(queue.popleft()))
            for label, inputs, outputs in self.transitions:
                if label is None and _enabled(current, inputs):
                    after = _frozen(current - inputs + outputs)
                    if after not in known:
                        known.add(after)
                        seen.append(after)
                        queue.append(after)
        return seen

    def _possible_uncached(self, marking: Marking) -> set[str]:
        possible = set()
        for state in self._silent_closure(Counter(dict(marking))):
            if state == self.final:
                possible.add(END)
            current = Counter(dict(state))
            for label, inputs, _ in self.transitions:
                if label is not None and _enabled(current, inputs):
                    possible.add(label)
        return possible


def _enabled(marking: Counter, inputs: Counter) -> bool:
    return all(marking[place] >= weight for place, weight in inputs.items())


def _frozen(marking: Counter) -> Marking:
    return tuple(sorted((place, n) for place, n in marking.items() if n > 0))
