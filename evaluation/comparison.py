"""Paired comparison of two leaderboard rows on the same dialogs (e.g. an SFT adapter and its reward-tuned child):
the change in a per-sample metric, with a percentile bootstrap interval over the shared dialogs, resampled the way
every leaderboard interval is (`evaluation.metrics.bootstrap`, one seeded index matrix)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np

from evaluation.metrics.bootstrap import bootstrap_indices, statistic_estimate


def paired_change(
    before: Mapping[str, Sequence], after: Mapping[str, Sequence], column: str, n_bootstrap: int = 1000, seed: int = 0
) -> dict[str, dict[str, float]]:
    """The change of `column`'s mean from `before` to `after` (details columns, each with `id`), over the dialogs
    both scored: `absolute` (after - before, in the column's unit) and `relative` (in % of before's mean), each a
    point estimate with its 95 % interval."""
    before_values = dict(zip(before["id"], before[column], strict=True))
    after_values = dict(zip(after["id"], after[column], strict=True))
    shared = [sample_id for sample_id in before["id"] if sample_id in after_values]
    if not shared:
        raise ValueError("the two rows share no scored dialog")
    old = np.asarray([before_values[sample_id] for sample_id in shared], dtype=float)
    new = np.asarray([after_values[sample_id] for sample_id in shared], dtype=float)
    indices = bootstrap_indices(len(shared), n_bootstrap, seed)

    def absolute(resample: np.ndarray) -> float:
        return float(new[resample].mean() - old[resample].mean())

    def relative(resample: np.ndarray) -> float:
        baseline = old[resample].mean()
        return float(100 * (new[resample].mean() - baseline) / baseline) if baseline else float("nan")

    return {
        "n": len(shared),
        **{
            name: vars(statistic_estimate(statistic, len(shared), indices))
            for name, statistic in (("absolute", absolute), ("relative", relative))
        },
    }
