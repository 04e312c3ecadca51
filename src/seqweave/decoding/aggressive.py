"""Input-guided aggressive decoding (IAD): the source is the draft.

In editing tasks (grammatical error correction, text normalisation,
paraphrase) most of the output copies the input, so the input itself is a
good guess of what comes next (Sun et al. 2021, "Instantaneous Grammatical
Error Correction with Shallow Aggressive Decoding"; Ge et al. 2022, "Lossless
Acceleration for Seq2seq Generation with Aggressive Decoding").

Each row keeps a pointer into its source. While the output agrees with the
source, the draft is the source from the pointer on. After a disagreement the
row realigns: once its last ``ngram`` generated tokens match an n-gram of the
source, the pointer moves right after that n-gram and drafting resumes. Until
they do, the row decodes token by token, except for one guess right after the
edit: that the model replaced the source token it disagreed with, so the draft
resumes one source token later (a substitution, the commonest edit). A wrong
guess costs nothing but the draft's compute: the pass still yields the
model's own token.

How long a draft pays depends on what a pass costs. Alone, a row's pass costs
about the same for 1 or 30 tokens (overhead dominates), so it drafts up to
``draft_len`` tokens; in a batch the block is compute-bound and rejected draft
tokens cost real time, so ``tokens_per_pass`` is shared among the live rows
(at least 2 each). Verification happens in the decode loop (``loop.draft_verify``), so
the output is exactly greedy's whatever the drafts are.

Most drafted tokens used to be thrown away: on text the model rewrites, a
64-token draft that breaks after 3 tokens wastes 61 verified positions. With
``adaptive`` (the default) each row's draft length follows its recent
acceptance, as the speculative decoder adapts k: it doubles (up to
``draft_len``) when a whole draft is accepted and halves (down to
``MIN_ADAPTED``) when one is cut short. Halving and doubling rather than
speculative's +2/-1 because the range is 2..64, not 1..16: a row that starts
copying again is back at full length in a few passes.
"""

from __future__ import annotations

from collections.abc import Sequence

MIN_ADAPTED = 2  # the shortest draft an adaptive row shrinks to


class SourceDrafter:
    """Drafts from each row's own source tokens.

    ``sources`` are the token ids the model was given (framing included); the
    model's output is compared against them as they are, which fits models that
    copy their framing (BART emits ``<s> ... </s>`` like its source) and models
    that do not (ours emit ``text </s>`` for a source ``text </s>``).
    """

    def __init__(
        self,
        sources: Sequence[Sequence[int]],
        draft_len: int = 64,
        ngram: int = 1,
        tokens_per_pass: int = 64,
        adaptive: bool = True,
    ):
        if draft_len < 1:
            raise ValueError(f"draft_len must be >= 1, got {draft_len}")
        if ngram < 1:
            raise ValueError(f"ngram must be >= 1, got {ngram}")
        self.draft_len = draft_len
        self.ngram = ngram
        self.tokens_per_pass = tokens_per_pass
        self.adaptive = adaptive
        self.sources = [list(s) for s in sources]  # by batch row
        self.index = [_ngram_index(s, ngram) for s in self.sources]
        self.pointer: dict[int, int | None] = {b: 0 for b in range(len(self.sources))}
        self.last_match: dict[int, int] = {b: 0 for b in range(len(self.sources))}
        self.may_guess: dict[int, bool] = {b: False for b in range(len(self.sources))}
        self.guessed: dict[int, bool] = {b: False for b in range(len(self.sources))}
        self.length: dict[int, int] = {b: draft_len for b in range(len(self.sources))}
        self._drafts: list[tuple[int, int, int]] = []  # (row, start, length) of the last proposal

    def propose(
        self, rows: Sequence[int], generated: Sequence[list[int]], room: Sequence[int]
    ) -> list[list[int]]:
        drafts, self._drafts = [], []
        limit = min(self.draft_len, max(2, self.tokens_per_pass // len(rows)))
        for b, tokens, space in zip(rows, generated, room, strict=True):
            start = self.pointer[b]
            if start is None:
                start = self._realign(b, tokens)
                self.guessed[b] = start is None and self.may_guess[b]
                if self.guessed[b]:
                    start = self.last_match[b] + 1  # the disagreeing token was replaced
                self.may_guess[b] = False
                self.pointer[b] = start
            source = self.sources[b]
            length = min(limit, space, self.length[b])
            draft = [] if start is None else source[start : start + length]
            drafts.append(draft)
            self._drafts.append((b, start or 0, len(draft)))
        return drafts

    def observe(self, accepted: Sequence[int], next_tokens: Sequence[int]) -> None:
        for (b, start, length), taken, token in zip(
            self._drafts, accepted, next_tokens, strict=True
        ):
            if self.adaptive and length > 0:
                self._adapt(b, full=taken == length)
            if self.pointer[b] is None:
                continue
            end = start + taken  # source position of the model's own next token
            source = self.sources[b]
            if taken == length and end < len(source) and source[end] == token:
                self.pointer[b] = end + 1  # still copying: the bonus token matched too
                self.last_match[b] = end + 1
            else:
                self.pointer[b] = None  # an edit: realign on later output
                self.last_match[b] = end
                self.may_guess[b] = not self.guessed[b]  # one guess per edit

    def _adapt(self, b: int, full: bool) -> None:
        """Double row b's draft length after a whole draft was accepted, else halve it."""
        if full:
            self.length[b] = min(self.draft_len, self.length[b] * 2)
        else:
            self.length[b] = max(MIN_ADAPTED, self.length[b] // 2)

    def select(self, index: Sequence[int]) -> None:
        """Rows are keyed by batch index, so dropping finished rows needs no bookkeeping."""

    def extend(self, other: SourceDrafter) -> None:
        """Take on the rows of another drafter (new requests joining a running batch): its
        row b becomes row ``len(self.sources) + b`` here."""
        offset = len(self.sources)
        self.sources += other.sources
        self.index += other.index
        for mine, theirs in (
            (self.pointer, other.pointer),
            (self.last_match, other.last_match),
            (self.may_guess, other.may_guess),
            (self.guessed, other.guessed),
            (self.length, other.length),
        ):
            mine.update({offset + b: value for b, value in theirs.items()})

    def _realign(self, b: int, tokens: list[int]) -> int | None:
        """The source position after the last ``ngram`` generated tokens, if they occur in
        the source: the only occurrence, or else the first at or after the last match."""
        if len(tokens) < self.ngram:
            return None
        positions = self.index[b].get(tuple(tokens[-self.ngram :]))
        if not positions:
            return None
        if len(positions) == 1:
            return positions[0]
        later = [p for p in positions if p > self.last_match[b]]
        return later[0] if later else None


def _ngram_index(source: list[int], n: int) -> dict[tuple[int, ...], list[int]]:
    """n-gram -> source positions right after each of its occurrences."""
    index: dict[tuple[int, ...], list[int]] = {}
    for i in range(len(source) - n + 1):
        index.setdefault(tuple(source[i : i + n]), []).append(i + n)
    return index
