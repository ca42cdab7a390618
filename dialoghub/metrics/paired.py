"""The one paired comparison of two systems scored on the same samples: the leaderboard's comparison with a parent row,
the reward-tuned card's before/after changes and the synthetic card's generator-vs-baseline table all resample the
per-sample difference with the leaderboard's bootstrap indices, so each interval is that of the paired difference,
much narrower than two overlapping per-system intervals."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from dialoghub.metrics.bootstrap import (
    DEFAULT_CONFIDENCE,
    Estimate,
    bootstrap_indices,
    mean_estimate,
    statistic_estimate,
)


@dataclass(frozen=True)
class PairedDelta:
    metric: str
    delta: float
    ci_low: float
    ci_high: float
    n_pairs: int


def paired_rows(details: dict[str, list], parent_details: dict[str, list]) -> tuple[np.ndarray, np.ndarray] | None:
    """The row indices of the samples both details scored (this side's, the parent's), matched by their `id`
    column, or None if they share none."""
    parent_row = {sample_id: index for index, sample_id in enumerate(parent_details["id"])}
    pairs = [
        (index, parent_row[sample_id]) for index, sample_id in enumerate(details["id"]) if sample_id in parent_row
    ]
    if not pairs:
        return None
    ours, theirs = (np.array(side) for side in zip(*pairs, strict=True))
    return ours, theirs


def paired_estimates(
    ours: Sequence[float], theirs: Sequence[float], indices: np.ndarray, confidence: float = DEFAULT_CONFIDENCE
) -> dict[str, Estimate]:
    """Each side's mean and the mean paired difference (ours - theirs), each with its interval over `indices`."""
    ours, theirs = np.asarray(ours, dtype=float), np.asarray(theirs, dtype=float)
    return {
        "ours": mean_estimate(ours, indices, confidence),
        "theirs": mean_estimate(theirs, indices, confidence),
        "difference": mean_estimate(ours - theirs, indices, confidence),
    }


def paired_deltas(
    details: dict[str, list],
    parent_details: dict[str, list],
    metrics: list[str],
    n_resamples: int,
    seed: int,
    confidence: float = DEFAULT_CONFIDENCE,
) -> list[PairedDelta]:
    """Mean difference (this minus parent) of each metric over the samples both scored, with its interval."""
    pairs = paired_rows(details, parent_details)
    if pairs is None:
        return []
    ours, theirs = pairs
    indices = bootstrap_indices(len(ours), n_resamples, seed)
    deltas = []
    for metric in metrics:
        if metric not in details or metric not in parent_details:
            continue
        ours_values = np.asarray(details[metric], dtype=float)[ours]
        theirs_values = np.asarray(parent_details[metric], dtype=float)[theirs]
        difference = paired_estimates(ours_values, theirs_values, indices, confidence)["difference"]
        deltas.append(PairedDelta(metric, difference.value, difference.ci_low, difference.ci_high, len(ours)))
    return deltas


def paired_change(
    before: dict[str, list], after: dict[str, list], column: str, n_bootstrap: int = 1000, seed: int = 0
) -> dict[str, Any]:
    """The change of `column`'s mean from `before` to `after` (details columns, each with `id`), over the samples
    both scored: `absolute` (after - before, in the column's unit) and `relative` (in % of before's mean), each a
    point estimate with its 95 % interval, on the leaderboard's bootstrap indices."""
    pairs = paired_rows(after, before)
    if pairs is None:
        raise ValueError("the two rows share no scored dialog")
    new = np.asarray(after[column], dtype=float)[pairs[0]]
    old = np.asarray(before[column], dtype=float)[pairs[1]]
    indices = bootstrap_indices(len(new), n_bootstrap, seed)

    def absolute(resample: np.ndarray) -> float:
        return float(new[resample].mean() - old[resample].mean())

    def relative(resample: np.ndarray) -> float:
        baseline = old[resample].mean()
        return float(100 * (new[resample].mean() - baseline) / baseline) if baseline else float("nan")

    return {
        "n": len(new),
        **{
            name: vars(statistic_estimate(statistic, len(new), indices))
            for name, statistic in (("absolute", absolute), ("relative", relative))
        },
    }
