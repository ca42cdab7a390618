"""The loop detector of `decoding.loop_stopping_criteria`, vectorised over periods, for every backend.

A row loops once its newest `span = max(period * repeats, MIN_LOOP_TOKENS)` tokens are one span of `period` tokens
repeated back to back, for some period up to MAX_LOOP_PERIOD: the last `span - period` tokens each equal the token
`period` places before. Instead of comparing those tails again on every step (one comparison per period), the
tracker keeps, per row and period, how many trailing tokens equal the token `period` places before, and updates it
with one gather and one comparison per step. It fires at exactly the step the tail comparison fires.

Engines that decode outside torch apply it after the fact (`first_loop_lengths`): the text up to the cut is the same
as if they had stopped there, since a token never depends on the ones after it.
"""

from __future__ import annotations

from collections.abc import Sequence

from dialoghub.models import decoding


class LoopTracker:
    """Per-row run lengths of "this token equals the one `period` back", for periods 1..MAX_LOOP_PERIOD."""

    def __init__(self, rows: int, repeats: int, ignored_ids: Sequence[int], device=None) -> None:
        import torch

        periods = torch.arange(1, decoding.MAX_LOOP_PERIOD + 1, device=device)
        self.periods = periods
        # Trailing equal tokens needed at each period: the span minus its first period.
        self.needed = torch.clamp(periods * repeats, min=decoding.MIN_LOOP_TOKENS) - periods
        self.runs = torch.zeros(rows, decoding.MAX_LOOP_PERIOD, dtype=torch.long, device=device)
        self.ignored = torch.tensor(list(ignored_ids), dtype=torch.long, device=device)
        self.seen = 0

    def update(self, generated) -> object:
        """Take the generated tokens so far (rows x length, one more than last time); True where a row loops."""
        import torch

        length = generated.shape[1]
        if length != self.seen + 1:
            raise ValueError(f"the tracker saw {self.seen} tokens and was given {length}: feed it every step")
        self.seen = length
        newest = generated[:, -1]
        # Column p-1 holds the token p places back; positions before the first generated token never match.
        back = torch.clamp(length - 1 - self.periods, min=0)
        equal = (generated[:, back] == newest[:, None]) & (self.periods < length)
        self.runs = (self.runs + 1) * equal
        looping = (self.runs >= self.needed).any(dim=1)
        # A row that has ended (end-of-sequence, then padding) is not looping.
        return looping & ~torch.isin(newest, self.ignored)


def loop_stopping_criteria(prompt_length: int, repeats: int, ignored_ids: list[int]):
    """A drop-in for `decoding.loop_stopping_criteria` (same `stopped_at`), at one comparison per step."""
    from transformers import StoppingCriteria

    class VectorisedLoopStop(StoppingCriteria):
        def __init__(self) -> None:
            self.stopped_at: dict[int, int] = {}
            self.tracker: LoopTracker | None = None

        def __call__(self, input_ids, scores, **kwargs):
            generated = input_ids[:, prompt_length:]
            if self.tracker is None:
                self.tracker = LoopTracker(len(input_ids), repeats, ignored_ids, device=input_ids.device)
            looping = self.tracker.update(generated)
            if looping.any():
                for row in looping.nonzero().flatten().tolist():
                    self.stopped_at.setdefault(row, generated.shape[1])
            return looping

    return VectorisedLoopStop()


def first_loop_lengths(rows: Sequence[Sequence[int]], repeats: int, ignored_ids: Sequence[int]) -> list[int | None]:
    """For each generated row, the length at which the loop detector would have stopped it (None: never)."""
    import torch

    if not rows:
        return []
    width = max(len(row) for row in rows)
    pad = next(iter(ignored_ids))
    generated = torch.tensor([list(row) + [pad] * (width - len(row)) for row in rows], dtype=torch.long)
    tracker = LoopTracker(len(rows), repeats, ignored_ids)
    stopped: list[int | None] = [None] * len(rows)
    for length in range(1, width + 1):
        looping = tracker.update(generated[:, :length])
        for row in looping.nonzero().flatten().tolist():
            if stopped[row] is None and length <= len(rows[row]):
                stopped[row] = length
    return stopped
